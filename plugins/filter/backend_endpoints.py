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
    C(wsfleet.fleet.supervisord) program, from the fact C(supervisord_endpoint_settings) that the
    role publishes on the host in its checks, where every place a variable can be set counts
    (inventory, group_vars, play vars, extra vars, role params). C(site.yml) runs those checks on every host
    first; the fact is cacheable, so a run that leaves app hosts out (C(--limit)) finds it in a fact
    cache when one is configured, and otherwise fails naming the host.
  - A process on the load balancer host itself is reached over its Unix socket; a process on
    another host over C(address:port), which needs C(supervisord_listen=tcp) on that host and a
    bind address the load balancer can reach. The address is the host's C(wsfleet_backend_address),
    else its C(ansible_host), else the address of its default IPv4 route, else its inventory name.
  - Both load balancer roles use it, so nobody types a server list.
  - A host with C(supervisord_numprocs=boot) (an auto-scaling image, see C(playbooks/bake.yml))
    resolves its process count at boot. Seen from itself it gives one endpoint whose C(boot) is
    true and whose names and socket path hold O(placeholder). The load balancer roles write it to a
    file that the instance's boot-time sizing expands into one server per process at boot. Seen from
    another host it gives one endpoint, the instance's own load balancer (C(address:port)). Such
    instances are not reached by Ansible, so their inventory says it - C(supervisord_numprocs=boot),
    and the port when it is not O(lb_port) (C(nginx_lb_port) or C(haproxy_lb_port) by its
    C(wsfleet_lb), or C(wsfleet_lb_port)).
positional: hostvars, lb_host, lb_port
extends_documentation_fragment:
  - wsfleet.fleet.app_hosts  # _input (the app hosts) and hostvars
options:
  lb_host:
    description: The load balancer host (C(inventory_hostname)).
    type: str
    required: true
  lb_port:
    description:
      - The port of a boot-sized instance's load balancer when the instance's inventory gives none
        (the load balancer roles pass C(wsfleet_lb_port)). Needed only when there are such instances.
    type: int
  placeholder:
    description:
      - The text that the boot-time sizing repeats, one line per process, numbered C(00) to C(N-1). The
        fleet role owns it (its C(__wsfleet_instance.placeholder), C({NN})) and passes it. Needed only
        when O(lb_host) sizes its processes at boot; without it that fails.
    type: str
"""

EXAMPLES = r"""
- name: Render the upstream
  ansible.builtin.template:
    src: upstream.j2
    dest: /etc/nginx/upstream.conf
  vars:
    endpoints: "{{ groups['app'] | wsfleet.fleet.backend_endpoints(hostvars, inventory_hostname, wsfleet_lb_port) }}"
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
      description: True for the one endpoint of a boot-sized instance seen from itself (a pattern with O(placeholder)).
      type: bool
"""

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wsfleet.fleet.plugins.module_utils.published import published_fact

BOOT = "boot"
# The fact the wsfleet.fleet.supervisord role publishes on each app host (its tasks/preflight.yml).
PUBLISHED = "supervisord_endpoint_settings"
_SETTINGS = ("supervisord_program_name", "supervisord_numprocs", "supervisord_listen", "supervisord_socket_dir",
             "supervisord_bind_address", "supervisord_port_base")
_WILDCARDS = {"0.0.0.0", "::", "", "*"}
_LOOPBACK = re.compile(r"^(127\.|::1$|localhost$)")
# A host name as resolvers accept it (underscores too: /etc/hosts and docker names have them).
_HOST_NAME = re.compile(r"^(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?\Z")


def _published(host: str, host_vars: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """What the supervisord role resolved on the host, or None when it has not run there."""
    settings = published_fact(host_vars, PUBLISHED)
    if settings is None:
        return None
    missing = [name for name in _SETTINGS if not isinstance(settings, Mapping) or settings.get(name) is None]
    if missing:
        raise AnsibleFilterError(f"backend_endpoints: {PUBLISHED} of {host!r} lacks {', '.join(missing)} (set by an older wsfleet.fleet?)")
    return settings


def _unpublished(host: str) -> AnsibleFilterError:
    return AnsibleFilterError(
        f"backend_endpoints: app host {host!r} has not published its processes ({PUBLISHED}, which the "
        "wsfleet.fleet.supervisord role sets in its checks; site.yml runs them on every host first). Run the "
        "supervisord role on the app hosts in the same run (a --limit that leaves them out hides them), or "
        "configure a fact cache, which keeps the fact between runs"
    )


def _instance_port(host: str, host_vars: Mapping[str, Any], lb_port: Any) -> int:
    """The port of a boot-sized instance's own load balancer, as its inventory gives it, else lb_port."""
    kind = host_vars.get("wsfleet_lb")
    for name in ([f"{kind}_lb_port"] if kind in ("nginx", "haproxy") else []) + ["wsfleet_lb_port"]:
        value = host_vars.get(name)
        if value is not None and not (isinstance(value, str) and "{{" in value):
            return int(value)
    if lb_port is None:
        raise AnsibleFilterError(
            f"backend_endpoints: {host!r} is an instance of a baked image (supervisord_numprocs=boot) and its "
            "inventory gives no port of its load balancer; set wsfleet_lb_port for it"
        )
    return int(lb_port)


def _numprocs(host: str, value: Any) -> int | str:
    if value == BOOT:
        return BOOT
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"backend_endpoints: supervisord_numprocs of {host!r} is {value!r}, not an integer or {BOOT!r}") from None
    if count < 1:
        raise AnsibleFilterError(f"backend_endpoints: supervisord_numprocs of {host!r} is {count}; it must be >= 1")
    return count


def _checked(host: str, variable: str, value: str) -> str:
    """The address as it goes into the load balancer's server line: one IP address or host name, or
    a ';', a space or a newline in it would end the directive and start another."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOST_NAME.match(value):
            raise AnsibleFilterError(
                f"backend_endpoints: {variable} of {host!r} is {value!r}: it must be one IPv4 or IPv6 address or a host name "
                "(letters, digits, '-', '_' and '.'), as it goes into the load balancer's server list"
            ) from None
    return value


def _remote_address(host: str, host_vars: Mapping[str, Any], bind: str) -> str:
    if bind not in _WILDCARDS:
        if _LOOPBACK.match(bind):
            raise AnsibleFilterError(
                f"backend_endpoints: app host {host!r} binds its processes to {bind}, which the load balancer "
                "on another host cannot reach; set supervisord_bind_address to 0.0.0.0 or an address of the host"
            )
        return _checked(host, "supervisord_bind_address", bind)
    for variable, candidate in (
        ("wsfleet_backend_address", host_vars.get("wsfleet_backend_address")),
        ("ansible_host", host_vars.get("ansible_host")),
        ("the default IPv4 address", ((host_vars.get("ansible_facts") or {}).get("default_ipv4") or {}).get("address")),
    ):
        if candidate:
            return _checked(host, variable, str(candidate))
    return _checked(host, "the inventory name", host)


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


def backend_endpoints(hosts: Sequence[str], hostvars: Mapping[str, Any], lb_host: str, lb_port: Any = None,
                      placeholder: str | None = None) -> list[dict[str, Any]]:
    if isinstance(hosts, str) or not isinstance(hosts, Sequence):
        raise AnsibleFilterError(f"backend_endpoints: expects a list of host names, got {type(hosts).__name__}")
    endpoints: list[dict[str, Any]] = []
    for host in hosts:
        if host not in hostvars:
            raise AnsibleFilterError(f"backend_endpoints: {host!r} is not in the inventory")
        host_vars = hostvars[host]
        settings = _published(host, host_vars)
        local = host == lb_host
        if settings is None:
            if local or host_vars.get("supervisord_numprocs") != BOOT:
                raise _unpublished(host)
            # An instance of a baked image, which Ansible does not reach: its inventory says what it is.
            settings = {"supervisord_numprocs": BOOT}
        count = _numprocs(host, settings["supervisord_numprocs"])
        if count == BOOT and not local:
            # A boot-sized instance balances over its own processes: reach its load balancer.
            address = _remote_address(host, host_vars, "0.0.0.0")
            endpoints.append(_endpoint(host, host, None, None, address, _instance_port(host, host_vars, lb_port)))
            continue
        program = str(settings["supervisord_program_name"])
        listen = str(settings["supervisord_listen"])
        if listen == "unix":
            if not local:
                raise AnsibleFilterError(
                    f"backend_endpoints: app host {host!r} listens on Unix sockets, which the load balancer "
                    f"{lb_host!r} cannot reach from another host; set supervisord_listen=tcp for it"
                )
            socket_dir = str(settings["supervisord_socket_dir"]).rstrip("/")
        elif listen == "tcp":
            if count == BOOT:
                raise AnsibleFilterError(
                    f"backend_endpoints: app host {host!r} sizes itself at boot (supervisord_numprocs=boot), "
                    "which needs supervisord_listen=unix"
                )
            port_base = int(settings["supervisord_port_base"])
            bind = str(settings["supervisord_bind_address"])
            address = ("127.0.0.1" if bind in _WILDCARDS else bind) if local else _remote_address(host, host_vars, bind)
        else:
            raise AnsibleFilterError(f"backend_endpoints: supervisord_listen of {host!r} is {listen!r} (allowed: unix, tcp)")
        if count == BOOT:
            if not placeholder:
                raise AnsibleFilterError(
                    f"backend_endpoints: {host!r} sizes its processes at boot (supervisord_numprocs=boot): pass "
                    "placeholder, the text its boot-time sizing repeats per process (the fleet role's __wsfleet_instance.placeholder)"
                )
            process = f"{program}_{placeholder}"
            endpoint = _endpoint(f"{program}_", host, process, f"{socket_dir}/{process}.sock", None, None)
            endpoint["name"] += placeholder  # no host name: the image must not carry the build host's
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
