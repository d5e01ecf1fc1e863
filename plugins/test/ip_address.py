# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Whether a value is one IPv4 or IPv6 address (or network), as Python's ipaddress reads it."""

from __future__ import annotations

import ipaddress
from typing import Any

DOCUMENTATION = r"""
name: ip_address
short_description: Whether a value is one IPv4 or IPv6 address, or with O(network=true) an address or network
version_added: 0.1.0
description:
  - The roles' checks use it on every address they write into a configuration file (listen and bind
    addresses, the metrics' addresses, trusted sources), so a value that would end a directive and
    start another (a C(;), a newline, a space) is refused before anything is written.
  - Python's C(ipaddress) module decides, on the controller; nothing else is accepted, not even
    surrounding spaces.
options:
  _input:
    description: The value to test.
    type: raw
    required: true
  network:
    description: Also accept a network in CIDR form (C(10.0.0.0/8), C(fd00::/8)).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Refuse a bind address that is not an address
  ansible.builtin.assert:
    that: nginx_lb_bind_address is wsfleet.fleet.ip_address
"""

RETURN = r"""
_value:
  description: True when the value is one address (or network, with O(network=true)).
  type: bool
"""


def ip_address(value: Any, network: bool = False) -> bool:
    if not isinstance(value, str) or value != value.strip():
        return False
    try:
        if network:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class TestModule:
    def tests(self) -> dict[str, Any]:
        return {"ip_address": ip_address}
