"""plugins/test/ip_address.py: one IPv4 or IPv6 address (or network), nothing around it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("ip_address", ROOT / "plugins" / "test" / "ip_address.py")
module = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(module)


@pytest.mark.parametrize("value", ["127.0.0.1", "10.0.1.11", "::1", "fd00::5", "::"])
def test_addresses_pass(value: str) -> None:
    assert module.ip_address(value)


@pytest.mark.parametrize("value", ["", " 10.0.0.1", "10.0.0.1 ", "10.0.0.1;", "10.0.0.1\n", "999.1.1.1", "10.0.0.0/8", "localhost",
                                   "10.0.0.1 # x", 1, None])
def test_anything_else_fails(value: object) -> None:
    assert not module.ip_address(value)


def test_networks_only_when_asked() -> None:
    assert module.ip_address("10.0.0.0/8", network=True) and module.ip_address("fd00::/8", network=True)
    assert module.ip_address("10.1.2.3", network=True)
    assert not module.ip_address("10.0.0.0/33", network=True) and not module.ip_address("10.0.0.0/8;", network=True)
