"""A real Prometheus (Debian's package, on the monitoring host) scrapes the fleet; the tests ask its HTTP API.

Targets: the app host's metrics exporter (every echo process's figures), HAProxy's own exporter
(behind basic auth) and prometheus-nginx-exporter, all on the hosts' fleet addresses. Clients are
wsfleet-load runs on the app host, through each load balancer's public port.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

from conftest import RESOURCES, Load, converge_again

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)


def get_host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def lb_url(kind: str) -> str:
    for name in RUNNER.get_hosts("lb"):
        variables = RUNNER.get_variables(name)
        if variables["wsfleet_lb"] == kind:
            return f"ws://{variables['wsfleet_backend_address']}:8080/"
    raise AssertionError(kind)


@pytest.fixture(scope="module")
def prometheus():
    return get_host(RUNNER.get_hosts("monitoring")[0])


@pytest.fixture(scope="module")
def app():
    return get_host(RUNNER.get_hosts("app")[0])


def query(prometheus, expr: str) -> list[tuple[dict, float]]:
    """An instant query: [(labels, value)]."""
    cmd = prometheus.run("curl -sfG --data-urlencode %s http://127.0.0.1:9090/api/v1/query", f"query={expr}")  # run() quotes it
    assert cmd.rc == 0, cmd.stderr
    data = json.loads(cmd.stdout)
    assert data["status"] == "success", data
    return [(r["metric"], float(r["value"][1])) for r in data["data"]["result"]]


def poll(fetch, check, what: str, timeout: float = 60):
    """Ask again until check(fetch()) holds (Prometheus scrapes every second here)."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if check(result) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert check(result), f"{what}: {result}"
    return result


def wait_for(prometheus, expr: str, check, timeout: float = 60) -> list[tuple[dict, float]]:
    return poll(lambda: query(prometheus, expr), check, expr, timeout)


def total(result: list[tuple[dict, float]]) -> float | None:
    return result[0][1] if result else None


def active_targets(prometheus) -> list[tuple[str, str, str]]:
    """What the loaded config scrapes: [(job, instance, health)], from the targets API."""
    cmd = prometheus.run("curl -sf 'http://127.0.0.1:9090/api/v1/targets?state=active'")
    assert cmd.rc == 0, cmd.stderr
    data = json.loads(cmd.stdout)
    assert data["status"] == "success", data
    return sorted((t["labels"]["job"], t["labels"]["instance"], t["health"]) for t in data["data"]["activeTargets"])


def test_every_metrics_listener_is_scraped(prometheus):
    # The targets API, not `up`: Debian's package starts Prometheus with its own config (it scrapes
    # itself) before prepare replaces it, and that old series stays in `up` for the 5-minute lookback
    # after the restart (the CI's monitoring-d13 saw it). The targets API lists what is scraped now.
    targets = poll(lambda: active_targets(prometheus), lambda t: len(t) == 3 and all(h == "up" for _, _, h in t), "active targets")
    assert [(job, health) for job, _, health in targets] == [("haproxy", "up"), ("nginx", "up"), ("wsfleet_echo", "up")], targets
    up = query(prometheus, 'up{job=~"haproxy|nginx|wsfleet_echo"}')
    assert sorted((labels["job"], labels["instance"], v) for labels, v in up) == [(j, i, 1.0) for j, i, _ in targets]
    # Real figures from each: every echo process has a start time, HAProxy its backend, nginx its counts.
    assert len(query(prometheus, "wsfleet_echo_process_start_time_seconds")) == 3
    assert query(prometheus, 'haproxy_backend_active_servers{proxy="wsfleet"}')[0][1] == 3
    assert query(prometheus, "nginx_up")[0][1] == 1


def test_the_open_connections_of_every_process_add_up_to_the_clients(prometheus, app):
    """30 clients through HAProxy and 20 through nginx: the processes' gauges sum to 50, and each LB sees its own."""
    loads = {"haproxy": Load(app, lb_url("haproxy"), "--connections 30 --ramp-rate 200 --rate 1 --duration 300 --progress"),
             "nginx": Load(app, lb_url("nginx"), "--connections 20 --ramp-rate 200 --rate 1 --duration 300 --progress")}
    try:
        loads["haproxy"].wait_open(30)
        loads["nginx"].wait_open(20)
        wait_for(prometheus, "sum(wsfleet_echo_connections_open)", lambda r: total(r) == 50)
        per_process = query(prometheus, "wsfleet_echo_connections_open")
        assert len(per_process) == 3 and all(v > 0 for _, v in per_process), per_process  # least connections: each has some
        wait_for(prometheus, 'haproxy_backend_current_sessions{proxy="wsfleet"}', lambda r: total(r) == 30)
        wait_for(prometheus, "nginx_connections_active", lambda r: total(r) is not None and total(r) >= 20)  # + the exporter's own
        assert total(query(prometheus, "sum(wsfleet_echo_connections_opened_total)")) >= 50
    finally:
        reports = {kind: load.stop() for kind, load in loads.items()}
    for kind, report in reports.items():
        assert report["handshakes"]["failed"] == 0 and not report["errors"], (kind, report)
    wait_for(prometheus, "sum(wsfleet_echo_connections_open)", lambda r: total(r) == 0)
    # The clients' closes (1000 from wsfleet-load's end) are counted by code.
    assert total(query(prometheus, 'sum(wsfleet_echo_connections_closed_total{code="1000"})')) >= 50


def test_a_killed_process_goes_down_its_clients_see_1006_and_its_restart_shows(prometheus, app):
    """kill -9 of echo_01 under load; supervisord is told to leave it stopped until HAProxy's DOWN is scraped."""
    started = {labels["process"]: v for labels, v in query(prometheus, "wsfleet_echo_process_start_time_seconds")}
    load = Load(app, lb_url("haproxy"), "--connections 30 --ramp-rate 200 --rate 1 --duration 300 --progress")
    try:
        load.wait_open(30)
        wait_for(prometheus, 'wsfleet_echo_connections_open{process="echo_01"}', lambda r: total(r) is not None and total(r) > 0)
        pid = app.run("supervisorctl pid echo:echo_01").stdout.strip()
        assert re.fullmatch(r"\d+", pid), pid
        # The kill is the crash; the stop (of the process supervisord restarts, or is restarting) keeps it down.
        assert app.run(f"kill -9 {pid}; supervisorctl stop echo:echo_01").rc == 0
        down = 'haproxy_server_status{proxy="wsfleet",server=~".*01",state="DOWN"}'
        wait_for(prometheus, down, lambda r: total(r) == 1)
        # The gauges of the dead process are gone from the sum: only the live processes' clients.
        wait_for(prometheus, 'wsfleet_echo_connections_open{process="echo_01"}', lambda r: not r or total(r) == 0)
        assert app.run("supervisorctl start echo:echo_01").rc == 0
        wait_for(prometheus, down.replace("DOWN", "UP"), lambda r: total(r) == 1)
        wait_for(prometheus, 'wsfleet_echo_process_start_time_seconds{process="echo_01"}', lambda r: total(r) is not None and total(r) > started["echo_01"])
    finally:
        report = load.stop()
        app.run("supervisorctl start echo:echo_01")
    closes = {int(code): count for code, count in report["closes"]["by_code"].items()}
    assert closes.get(1006, 0) >= 1, report  # the killed process's clients: no close frame
    assert started.keys() == {"echo_00", "echo_01", "echo_02"}, started


def test_the_nginx_exporter_turned_off_stops_and_on_again_serves(prometheus):
    """nginx_lb_exporter false on a host where the role set the exporter up: stopped and disabled, so
    nothing listens on its port any more (Prometheus sees the target down); true again: it serves."""
    name = next(n for n in RUNNER.get_hosts("lb") if RUNNER.get_variables(n)["wsfleet_lb"] == "nginx")
    nginx = get_host(name)
    address = f"{RUNNER.get_variables(name)['nginx_lb_exporter_address']}:9113"
    site = RESOURCES.parent.parent.parent / "playbooks" / "site.yml"
    try:
        off = converge_again(nginx, site, "nginx_lb_exporter=false")
        assert off.returncode == 0, off.stdout[-3000:]
        assert re.search(r"Stop and disable the exporter this role set up.*\n.*changed:", off.stdout), off.stdout[-3000:]
        assert nginx.run(f"curl -sf http://{address}/metrics").rc != 0
        assert not nginx.service("prometheus-nginx-exporter").is_enabled
        wait_for(prometheus, 'up{job="nginx"}', lambda r: total(r) == 0)
    finally:
        on = converge_again(nginx, site)
    assert on.returncode == 0, on.stdout[-3000:]
    assert nginx.service("prometheus-nginx-exporter").is_enabled
    wait_for(prometheus, 'up{job="nginx"}', lambda r: total(r) == 1)
