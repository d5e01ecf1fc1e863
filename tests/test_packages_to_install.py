"""wsfleet.fleet.packages_to_install: which of a role's OS packages the look at the host found not installed."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.wsfleet.fleet.plugins.filter.packages_to_install import packages_to_install

PACKAGES = ["python3-venv", "python3-packaging"]


def test_none_when_every_package_is_installed() -> None:
    assert packages_to_install(PACKAGES, {"python3-venv": "installed", "python3-packaging": "installed"}) == []


@pytest.mark.parametrize("status", ["not-installed", "config-files", "half-installed", "unpacked", "unknown", ""])
def test_a_package_in_any_other_status_is_installed(status) -> None:
    found = {"python3-venv": "installed", "python3-packaging": status}
    assert packages_to_install(PACKAGES, found) == ["python3-packaging"]


def test_a_package_the_look_did_not_include_is_installed_and_the_order_is_kept() -> None:
    assert packages_to_install(PACKAGES, {}) == PACKAGES
    assert packages_to_install(PACKAGES, {"python3-packaging": "installed", "nginx": "not-installed"}) == ["python3-venv"]


@pytest.mark.parametrize(("packages", "found"), [("python3-venv", {}), ({"a": 1}, {}), (PACKAGES, ["installed"])])
def test_other_input_is_refused(packages, found) -> None:
    with pytest.raises(AnsibleFilterError, match="packages_to_install"):
        packages_to_install(packages, found)
