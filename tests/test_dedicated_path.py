"""The filter behind the roles' refusal to take over a system directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "filter"))
from dedicated_path import FilterModule, dedicated_path  # noqa: E402


@pytest.mark.parametrize("path", ["/run/wsfleet", "/opt/wsfleet-echo", "/etc/wsfleet-echo", "/run/chat", "/srv/app/sockets", "/var/lib/wsfleet"])
def test_a_dedicated_directory_passes(path: str) -> None:
    assert dedicated_path(path, "x") == ""


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/", "top-level"), ("/tmp", "top-level"), ("/run", "top-level"), ("/opt", "top-level"), ("/wsfleet", "top-level"),
        ("/var/run", "system directory"), ("/run/user", "system directory"), ("/usr/local", "system directory"),
        ("/etc/nginx", "system directory"), ("/var/lib", "system directory"), ("/dev/shm", "system directory"),
        ("/proc/self/fd", "system directory"), ("/sys/fs", "system directory"),
        ("run/wsfleet", "absolute"), ("/run/wsfleet/", "trailing"), ("/run//wsfleet", "trailing"), ("//run/wsfleet", "trailing"),
        ("/run/wsfleet/../lock", "trailing"), ("/run/./wsfleet", "trailing"),
        ("/run/ws fleet", "letters, digits"), ("/run/ws\nfleet", "letters, digits"), ("/run/$HOME", "letters, digits"), ("", "absolute"),
    ],
)
def test_a_system_or_malformed_path_is_refused_naming_the_variable(path: str, why: str) -> None:
    message = dedicated_path(path, "supervisord_socket_dir")
    assert message.startswith(f"supervisord_socket_dir={path!r}") and why in message, message


def test_the_filter_is_registered() -> None:
    assert FilterModule().filters()["dedicated_path"] is dedicated_path
