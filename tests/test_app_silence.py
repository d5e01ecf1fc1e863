"""The filter both load balancer roles bound their idle timeouts with: the app's longest silence."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "filter"))
from app_silence import FilterModule, app_silence  # noqa: E402


def keepalive(interval="20.0", timeout="20.0", package="") -> dict:
    """An app host's vars with the fact the echo_app role publishes (tasks/publish.yml)."""
    return {"echo_app_keepalive": {"package": package, "ping_interval": interval, "ping_timeout": timeout}}


def test_the_bundled_app_with_its_defaults_is_silent_at_most_60_s() -> None:
    assert app_silence(["a"], {"a": keepalive()}) == 60


def test_the_largest_over_the_hosts_rounded_up() -> None:
    hostvars = {"a": keepalive("3", "3"), "b": keepalive("10.2", "5"), "c": keepalive()}
    assert app_silence(["a", "b"], hostvars) == 26  # 2 x 10.2 + 5 = 25.4
    assert app_silence(["a", "b", "c"], hostvars) == 60


@pytest.mark.parametrize("host_vars", [
    keepalive(package="/srv/wheels/chat-1.0-py3-none-any.whl"),  # an app of the user's: its pings are unknown
    keepalive(interval="0"),                                       # pings off
    keepalive(timeout="0"),
    {},                                                            # published nothing: no echo_app role in the run
    {"echo_app_ping_interval": 5},                                 # inventory variables are not what the app runs with
])
def test_not_bounded_is_0_whatever_the_other_hosts(host_vars) -> None:
    assert app_silence(["a", "b"], {"a": keepalive("3", "3"), "b": host_vars}) == 0


def test_no_hosts_is_not_bounded() -> None:
    assert app_silence([], {}) == 0


def test_a_fact_without_numbers_is_an_error_naming_the_host() -> None:
    with pytest.raises(AnsibleFilterError, match="'a'"):
        app_silence(["a"], {"a": keepalive(interval="often")})


def test_registered_under_its_name() -> None:
    assert FilterModule().filters()["app_silence"] is app_silence
