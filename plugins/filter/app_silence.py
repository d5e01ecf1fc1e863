# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""How long a WebSocket that the app of a group of hosts keeps open can stay silent."""

from __future__ import annotations

DOCUMENTATION = r"""
name: app_silence
short_description: The longest a WebSocket the app of a group of hosts keeps open stays silent
version_added: 0.1.0
description:
  - The bundled echo app pings each connection every C(echo_app_ping_interval) seconds, the first
    ping one to two intervals after the connection opened, and closes it when the pong takes longer
    than C(echo_app_ping_timeout). So a connection it keeps carries a byte at least every
    2 x interval + timeout seconds. This filter gives that bound, in whole seconds, the largest over
    the hosts, from the fact C(echo_app_keepalive) the C(wsfleet.fleet.echo_app) role publishes on
    each host.
  - 0 when it is not bounded - a host runs an app of its own (whose pings the roles do not know), has
    its pings off, or published nothing (no C(echo_app) role in the run, and no fact cache).
  - Both load balancer roles use it - HAProxy's C(timeout tunnel) is derived from it, nginx's
    C(proxy_read_timeout) and HAProxy's tunnel must exceed it.
positional: hostvars
extends_documentation_fragment:
  - wsfleet.fleet.app_hosts  # _input (the app hosts) and hostvars
"""

EXAMPLES = r"""
- name: Derive the tunnel timeout
  ansible.builtin.set_fact:
    tunnel: "{{ (silence | int + 10) if silence | int > 0 else 3600 }}"
  vars:
    silence: "{{ groups['app'] | wsfleet.fleet.app_silence(hostvars) }}"
"""

RETURN = r"""
_value:
  description: Seconds, rounded up; 0 when not bounded.
  type: int
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wsfleet.fleet.plugins.module_utils.published import published_fact

PUBLISHED = "echo_app_keepalive"


def app_silence(hosts: Sequence[str], hostvars: Mapping[str, Any]) -> int:
    if isinstance(hosts, str) or not isinstance(hosts, Sequence):
        raise AnsibleFilterError(f"app_silence: expects a list of host names, got {type(hosts).__name__}")
    most = 0.0
    for host in hosts:
        host_vars = hostvars[host] if host in hostvars else {}
        app = published_fact(host_vars, PUBLISHED)
        if not isinstance(app, Mapping) or str(app.get("package") or ""):
            return 0
        try:
            interval, timeout = float(app["ping_interval"]), float(app["ping_timeout"])
        except (KeyError, TypeError, ValueError):
            raise AnsibleFilterError(f"app_silence: {PUBLISHED} of {host!r} is {dict(app)!r}, without numeric ping_interval and ping_timeout") from None
        if interval <= 0 or timeout <= 0:
            return 0
        most = max(most, 2 * interval + timeout)
    return math.ceil(most)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"app_silence": app_silence}
