"""The filter that turns what each app host published into both load balancers' server lists."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "filter"))
from backend_endpoints import FilterModule, backend_endpoints  # noqa: E402


def published(**settings) -> dict:
    """An app host's vars with the fact the supervisord role publishes (tasks/publish.yml), values as
    Ansible templates them (strings)."""
    fact = {"supervisord_program_name": "echo", "supervisord_numprocs": "2", "supervisord_listen": "unix",
            "supervisord_socket_dir": "/run/wsfleet", "supervisord_bind_address": "127.0.0.1", "supervisord_port_base": "8000"}
    fact.update({f"supervisord_{name}": str(value) for name, value in settings.items()})
    return {"supervisord_endpoint_settings": fact}


def tcp(**settings) -> dict:
    return published(**{"listen": "tcp", "bind_address": "0.0.0.0", **settings})


def test_local_host_gets_its_unix_sockets() -> None:
    hostvars = {"lb1": published(numprocs=3)}
    endpoints = backend_endpoints(["lb1"], hostvars, "lb1")
    assert [e["unix"] for e in endpoints] == [f"/run/wsfleet/echo_{i:02d}.sock" for i in range(3)]
    assert [e["name"] for e in endpoints] == ["lb1_echo_00", "lb1_echo_01", "lb1_echo_02"]
    assert all(e["address"] is None and e["port"] is None for e in endpoints)


def test_the_published_settings_win_over_inventory_variables() -> None:
    """Play vars never reach hostvars: the role publishes what it resolved, and the filter reads only that."""
    hostvars = {"lb1": {**published(program_name="chat", socket_dir="/run/chat/", numprocs=2),
                        "supervisord_numprocs": 4, "supervisord_program_name": "echo"}}
    endpoints = backend_endpoints(["lb1"], hostvars, "lb1")
    assert [e["unix"] for e in endpoints] == ["/run/chat/chat_00.sock", "/run/chat/chat_01.sock"]
    assert [e["name"] for e in endpoints] == ["lb1_chat_00", "lb1_chat_01"]


def test_hosts_with_different_numprocs_get_different_server_counts() -> None:
    hostvars = {
        "app-1": {**tcp(numprocs=3), "ansible_host": "10.1.0.11"},
        "app-2": {**tcp(numprocs=2, port_base=9000), "ansible_facts": {"default_ipv4": {"address": "10.1.0.12"}}},
    }
    endpoints = backend_endpoints(["app-1", "app-2"], hostvars, "lb")
    assert [(e["address"], e["port"]) for e in endpoints] == [
        ("10.1.0.11", 8000), ("10.1.0.11", 8001), ("10.1.0.11", 8002), ("10.1.0.12", 9000), ("10.1.0.12", 9001)
    ]
    assert endpoints[0]["name"] == "app_1_echo_00"
    assert endpoints[0]["hostport"] == "10.1.0.11:8000"
    assert len({e["name"] for e in endpoints}) == 5


def test_explicit_backend_address_wins_and_specific_bind_is_used() -> None:
    hostvars = {
        "a": {**tcp(numprocs=1), "wsfleet_backend_address": "192.0.2.7", "ansible_host": "203.0.113.1"},
        "b": tcp(numprocs=1, bind_address="192.0.2.8"),
    }
    assert [e["address"] for e in backend_endpoints(["a", "b"], hostvars, "lb")] == ["192.0.2.7", "192.0.2.8"]
    v6 = {"c": tcp(numprocs=1, bind_address="2001:db8::5")}
    assert backend_endpoints(["c"], v6, "lb")[0]["hostport"] == "[2001:db8::5]:8000"


def test_local_tcp_uses_loopback_for_wildcard_bind() -> None:
    hostvars = {"lb1": tcp(numprocs=2)}
    assert {e["address"] for e in backend_endpoints(["lb1"], hostvars, "lb1")} == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("hostvars", "message"),
    [
        ({"app": published()}, "cannot reach from another host"),
        ({"app": tcp(bind_address="127.0.0.1")}, "binds its processes to 127.0.0.1"),
        ({"app": published(listen="udp")}, "allowed: unix, tcp"),
        ({"app": tcp(numprocs="many")}, "not an integer"),
        ({"app": tcp(numprocs=0)}, "must be >= 1"),
        ({"app": {"supervisord_endpoint_settings": {"supervisord_numprocs": "2"}}}, "lacks supervisord_program_name"),
        ({}, "not in the inventory"),
        # What goes into the load balancer's server line: one address or host name, nothing after it.
        ({"app": {**tcp(), "wsfleet_backend_address": "10.0.0.5; return 200"}}, r"wsfleet_backend_address of 'app' is '10.0.0.5; return 200'"),
        ({"app": {**tcp(), "wsfleet_backend_address": "10.0.0.5\n    server evil:80"}}, "must be one IPv4 or IPv6 address or a host name"),
        ({"app": {**tcp(), "ansible_host": "app1 #"}}, "ansible_host of 'app' is 'app1 #'"),
        ({"app": tcp(bind_address="10.0.0.5 backup")}, "supervisord_bind_address of 'app' is '10.0.0.5 backup'"),
        ({"app": {**tcp(), "wsfleet_backend_address": '"10.0.0.5"'}}, "must be one IPv4 or IPv6 address"),
        ({"app": {**tcp(), "wsfleet_backend_address": "{10.0.0.5}"}}, "must be one IPv4 or IPv6 address"),
    ],
)
def test_bad_settings_fail_with_a_message_naming_the_host(hostvars, message) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        backend_endpoints(["app"], hostvars, "lb")


@pytest.mark.parametrize("host_vars", [{}, {"supervisord_numprocs": 4, "supervisord_listen": "tcp"}])
def test_a_host_that_published_nothing_is_named_with_the_way_out(host_vars) -> None:
    """Inventory variables alone are not a contract: play vars, -e and role params would be missed."""
    with pytest.raises(AnsibleFilterError, match=r"'app' has not published its processes .* --limit that leaves them out .* fact cache"):
        backend_endpoints(["app"], {"app": host_vars}, "lb", 8080)


def test_boot_sized_instance_seen_from_itself_is_one_pattern_without_its_host_name() -> None:
    hostvars = {"builder-7": published(numprocs="boot")}
    (endpoint,) = backend_endpoints(["builder-7"], hostvars, "builder-7", placeholder="{NN}")
    assert endpoint["boot"] is True
    assert endpoint["unix"] == "/run/wsfleet/echo_{NN}.sock"
    assert endpoint["name"] == "echo_{NN}" and endpoint["process"] == "echo_{NN}"
    assert "builder" not in endpoint["name"] + endpoint["unix"]


def test_the_placeholder_is_the_one_passed_and_needed_for_a_boot_sized_instance() -> None:
    """The fleet role owns the placeholder (its boot-time sizing expands it): the filter has none of its own."""
    hostvars = {"builder-7": published(numprocs="boot")}
    (endpoint,) = backend_endpoints(["builder-7"], hostvars, "builder-7", placeholder="@N@")
    assert endpoint["unix"] == "/run/wsfleet/echo_@N@.sock" and endpoint["name"] == "echo_@N@"
    with pytest.raises(AnsibleFilterError, match="pass placeholder"):
        backend_endpoints(["builder-7"], hostvars, "builder-7")


def test_boot_sized_instances_seen_from_a_front_lb_are_their_own_load_balancers() -> None:
    """Instances of a baked image are not reached by Ansible: their inventory says what they are."""
    hostvars = {
        "i-1": {"supervisord_numprocs": "boot", "wsfleet_backend_address": "10.0.0.21"},
        "i-2": {"supervisord_numprocs": "boot", "wsfleet_backend_address": "10.0.0.22", "wsfleet_lb": "haproxy", "haproxy_lb_port": 9000},
        "i-3": {"supervisord_numprocs": "boot", "ansible_host": "10.0.0.23", "wsfleet_lb": "nginx", "wsfleet_lb_port": "8443"},
    }
    endpoints = backend_endpoints(["i-1", "i-2", "i-3"], hostvars, "front", 8080)
    assert [(e["name"], e["hostport"], e["boot"]) for e in endpoints] == [
        ("i_1", "10.0.0.21:8080", False), ("i_2", "10.0.0.22:9000", False), ("i_3", "10.0.0.23:8443", False)]


@pytest.mark.parametrize(
    ("hostvars", "hosts", "lb_port", "message"),
    [
        ({"b": published(numprocs="boot", listen="tcp")}, ["b"], 8080, "needs supervisord_listen=unix"),
        ({"b": published(numprocs="boot"), "a": tcp(numprocs=1, bind_address="10.0.0.5")}, ["b", "a"], 8080,
         "cannot also have other backend hosts"),
        ({"i": {"supervisord_numprocs": "boot"}}, ["i"], None, "set wsfleet_lb_port for it"),
        ({"b": {"supervisord_numprocs": "boot"}}, ["b"], 8080, "'b' has not published its processes"),
    ],
)
def test_boot_sizing_misuse_fails_with_a_message(hostvars, hosts, lb_port, message) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        backend_endpoints(hosts, hostvars, "b", lb_port, placeholder="{NN}")


def test_empty_group_is_an_error() -> None:
    with pytest.raises(AnsibleFilterError, match="no hosts"):
        backend_endpoints([], {}, "lb")


def test_registered_under_its_name() -> None:
    assert FilterModule().filters()["backend_endpoints"] is backend_endpoints
