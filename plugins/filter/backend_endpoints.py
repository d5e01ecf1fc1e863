# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Turn the inventory into the load balancer's server list: one endpoint per app process."""

from __future__ import annotations

DOCUMENTATION = r"""
name: backend_endpoints
short_description: Every supervised app process of a group of hosts, as load balancer endpoints
version_added: 0.1.0
description:
  - For every host of the backend group, in inventory order, one endpoint per process of its
    C(wsfleet.fleet.supervisord) program. Its settings come from the fact
    C(supervisord_endpoint_settings) that the supervisord role publishes on the host when it runs
    in the same playbook run (so play vars, extra vars and role params count); otherwise from that
    host's inventory variables (the role's defaults where the host sets none;
    C(supervisord_numprocs) then defaults to the host's vCPU count, which needs its facts).
  - A process on the load balancer host itself is reached over its Unix socket; a process on
    another host over C(address:port), which needs C(supervisord_listen=tcp) on that host and a
    bind address the load balancer can reach.
  - Both load balancer roles use it, so nobody types a server list.
  - A host with C(supervisord_numprocs=boot) (an auto-scaling image, see C(playbooks/bake.yml))
    resolves its process count at boot. Seen from itself it gives one endpoint whose C(boot) is
    true and whose names and socket path hold the placeholder C({NN}). The load balancer roles
    write it to a file that the instance expands into one server per process at boot. Seen from
    another host it gives one endpoint, the instance's own load balancer (C(address:port), the port
    of its C(wsfleet_lb) kind).
positional: hostvars, lb_host
options:
  _input:
    description: Names of the app hosts (e.g. C(groups['app'])).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) of the play.
    type: dict
    required: true
  lb_host:
    description: The load balancer host (C(inventory_hostname)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Render the upstream
  ansible.builtin.template:
    src: upstream.j2
    dest: /etc/nginx/upstream.conf
  vars:
    endpoints: "{{ groups['app'] | wsfleet.fleet.backend_endpoints(hostvars, inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: One dict per process.
  type: list
  elements: dict
  contains:
    name:
      description: Unique server name, C(<host>_<program>_NN) with non-alphanumerics replaced by C(_).
      type: str
    host:
      description: Inventory name of the app host.
      type: str
    process:
      description: Supervisord process name, C(<program>_NN).
      type: str
    unix:
      description: Unix socket path, or null for a TCP endpoint.
      type: str
    address:
      description: Host or IP to connect to, or null for a Unix socket.
      type: str
    port:
      description: TCP port, or null for a Unix socket.
      type: int
    hostport:
      description: C(address:port) (IPv6 addresses in brackets), or null for a Unix socket.
      type: str
    boot:
      description: True for the one endpoint of a boot-sized instance seen from itself (a pattern with C({NN})).
      type: bool
"""

import math
import re
from collections import ChainMap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from ansible.errors import AnsibleFilterError

# The roles' defaults are the one source of the values a host does not override.
_ROLES = Path(__file__).resolve().parents[2] / "roles"
_ROLE_DEFAULTS = _ROLES / "supervisord" / "defaults" / "main.yml"
BOOT = "boot"
# The fleet-wide sizing variable's default, as the roles' defaults have it (checked by tests/).
TARGET_CONNECTIONS_DEFAULT = 10000
PLACEHOLDER = "{NN}"
_WILDCARDS = {"0.0.0.0", "::", "", "*"}
_LOOPBACK = re.compile(r"^(127\.|::1$|localhost$)")


def _role_defaults(path: Path = _ROLE_DEFAULTS) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.safe_load(handle)


def _instance_port(host: str, host_vars: Mapping[str, Any]) -> int:
    """The port of a boot-sized instance's own load balancer (nginx_lb_port or haproxy_lb_port)."""
    kind = str(host_vars.get("wsfleet_lb") or "nginx")
    if kind not in ("nginx", "haproxy"):
        raise AnsibleFilterError(f"backend_endpoints: wsfleet_lb of {host!r} is {kind!r} (allowed: nginx, haproxy)")
    name = f"{kind}_lb_port"
    value = host_vars.get(name)
    if value is None:
        value = _role_defaults(_ROLES / f"{kind}_lb" / "defaults" / "main.yml")[name]
    return int(value)


def _setting(host_vars: Mapping[str, Any], defaults: Mapping[str, Any], name: str) -> Any:
    if name in host_vars and host_vars[name] is not None:
        return host_vars[name]
    return defaults[name]


def _int_setting(host_vars: Mapping[str, Any], name: str) -> int | None:
    value = host_vars.get(name)
    if value is None or (isinstance(value, str) and "{{" in value):
        return None
    return int(value)


def _target(host_vars: Mapping[str, Any]) -> int:
    for name in ("supervisord_target_connections", "wsfleet_target_connections"):
        value = _int_setting(host_vars, name)
        if value is not None:
            return value
    return TARGET_CONNECTIONS_DEFAULT


def _per_process(host_vars: Mapping[str, Any]) -> int:
    value = _int_setting(host_vars, "supervisord_connections_per_process")
    return value if value is not None else int(_role_defaults()["supervisord_connections_per_process"])


def _numprocs(host: str, host_vars: Mapping[str, Any]) -> int | str:
    value = host_vars.get("supervisord_numprocs") if "supervisord_numprocs" in host_vars else None
    if value == BOOT:
        return BOOT
    if value is None or (isinstance(value, str) and "{{" in value):
        # The role's default: max(vCPUs, ceil(target connections / connections per process)).
        facts = host_vars.get("ansible_facts") or {}
        vcpus = facts.get("processor_vcpus")
        value = None if vcpus is None else max(int(vcpus), math.ceil(_target(host_vars) / _per_process(host_vars)))
    if value is None:
        raise AnsibleFilterError(
            f"backend_endpoints: app host {host!r} sets no supervisord_numprocs and its facts are not "
            "gathered; set supervisord_numprocs for it or gather its facts first"
        )
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"backend_endpoints: supervisord_numprocs of {host!r} is {value!r}, not an integer or {BOOT!r}") from None
    if count < 1:
        raise AnsibleFilterError(f"backend_endpoints: supervisord_numprocs of {host!r} is {count}; it must be >= 1")
    return count


def _remote_address(host: str, host_vars: Mapping[str, Any], bind: str) -> str:
    if bind not in _WILDCARDS:
        if _LOOPBACK.match(bind):
            raise AnsibleFilterError(
                f"backend_endpoints: app host {host!r} binds its processes to {bind}, which the load balancer "
                "on another host cannot reach; set supervisord_bind_address to 0.0.0.0 or an address of the host"
            )
        return bind
    for candidate in (
        host_vars.get("wsfleet_backend_address"),
        host_vars.get("ansible_host"),
        ((host_vars.get("ansible_facts") or {}).get("default_ipv4") or {}).get("address"),
    ):
        if candidate:
            return str(candidate)
    return host


def _endpoint(name: str, host: str, process: str | None, unix: str | None, address: str | None, port: int | None) -> dict[str, Any]:
    hostport = None
    if address is not None:
        hostport = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return {
        "name": re.sub(r"[^A-Za-z0-9_]", "_", name),
        "host": host,
        "process": process,
        "unix": unix,
        "address": address,
        "port": port,
        "hostport": hostport,
        "boot": False,
    }


def backend_endpoints(hosts: Sequence[str], hostvars: Mapping[str, Any], lb_host: str) -> list[dict[str, Any]]:
    if isinstance(hosts, str) or not isinstance(hosts, Sequence):
        raise AnsibleFilterError(f"backend_endpoints: expects a list of host names, got {type(hosts).__name__}")
    defaults = _role_defaults()
    endpoints: list[dict[str, Any]] = []
    for host in hosts:
        if host not in hostvars:
            raise AnsibleFilterError(f"backend_endpoints: {host!r} is not in the inventory")
        host_vars = hostvars[host]
        published = host_vars.get("supervisord_endpoint_settings") if "supervisord_endpoint_settings" in host_vars else None
        if isinstance(published, Mapping):
            # What the supervisord role resolved on that host (play vars, -e and role params included).
            host_vars = ChainMap(dict(published), host_vars)
        program = str(_setting(host_vars, defaults, "supervisord_program_name"))
        listen = str(_setting(host_vars, defaults, "supervisord_listen"))
        count = _numprocs(host, host_vars)
        local = host == lb_host
        if count == BOOT and not local:
            # A boot-sized instance balances over its own processes: reach its load balancer.
            address = _remote_address(host, host_vars, "0.0.0.0")
            port = _instance_port(host, host_vars)
            endpoints.append(_endpoint(host, host, None, None, address, port))
            continue
        if listen == "unix":
            if not local:
                raise AnsibleFilterError(
                    f"backend_endpoints: app host {host!r} listens on Unix sockets, which the load balancer "
                    f"{lb_host!r} cannot reach from another host; set supervisord_listen=tcp for it"
                )
            socket_dir = str(_setting(host_vars, defaults, "supervisord_socket_dir")).rstrip("/")
        elif listen == "tcp":
            if count == BOOT:
                raise AnsibleFilterError(
                    f"backend_endpoints: app host {host!r} sizes itself at boot (supervisord_numprocs=boot), "
                    "which needs supervisord_listen=unix"
                )
            port_base = int(_setting(host_vars, defaults, "supervisord_port_base"))
            bind = str(_setting(host_vars, defaults, "supervisord_bind_address"))
            address = ("127.0.0.1" if bind in _WILDCARDS else bind) if local else _remote_address(host, host_vars, bind)
        else:
            raise AnsibleFilterError(f"backend_endpoints: supervisord_listen of {host!r} is {listen!r} (allowed: unix, tcp)")
        if count == BOOT:
            process = f"{program}_{PLACEHOLDER}"
            endpoint = _endpoint(f"{program}_", host, process, f"{socket_dir}/{process}.sock", None, None)
            endpoint["name"] += PLACEHOLDER  # no host name: the image must not carry the build host's
            endpoint["boot"] = True
            endpoints.append(endpoint)
            continue
        for number in range(count):
            process = f"{program}_{number:02d}"
            if listen == "unix":
                endpoints.append(_endpoint(f"{host}_{process}", host, process, f"{socket_dir}/{process}.sock", None, None))
            else:
                endpoints.append(_endpoint(f"{host}_{process}", host, process, None, address, port_base + number))
    if any(e["boot"] for e in endpoints) and len(endpoints) > 1:
        raise AnsibleFilterError(
            f"backend_endpoints: {lb_host!r} sizes its processes at boot (supervisord_numprocs=boot) and balances "
            "only over them; it cannot also have other backend hosts"
        )
    if not endpoints:
        raise AnsibleFilterError("backend_endpoints: the backend group has no hosts; the load balancer would have no servers")
    return endpoints


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"backend_endpoints": backend_endpoints}
