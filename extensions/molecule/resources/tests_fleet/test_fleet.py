"""N servers behind two load balancers of different kinds: spread, health, rolling restart, scale out/in, a host down.

One nginx and one HAProxy host balance over the same app hosts, and every test drives both at once.
Every check runs from the load balancer hosts with the real websockets client (wsprobe and
wsfleet-load, from the app package installed there by prepare_fleet.yml). The tests run in file
order and each leaves the fleet as it found it (app1 with 3 processes, app2 with 2; app3 spare).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

from conftest import RESOURCES, Load, Probe, Watch, service_log

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)
PLAYBOOKS = RESOURCES.parent.parent.parent / "playbooks"
LB_URL = "127.0.0.1:8080"
CONFIG = {"nginx": "/etc/nginx/nginx.conf", "haproxy": "/etc/haproxy/haproxy.cfg"}


def get_host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module")
def lbs() -> dict[str, tuple]:
    """Each load balancer kind: (its host, a probe on it). The scenario has one host of each kind."""
    found = {}
    for name in RUNNER.get_hosts("lb"):
        host = get_host(name)
        found[RUNNER.get_variables(name)["wsfleet_lb"]] = (host, Probe(host))
    assert sorted(found) == ["haproxy", "nginx"], found
    return found


def app_host(name: str):
    return get_host(name)


def app_names() -> list[str]:
    return RUNNER.get_hosts("app")


def pids(name: str) -> list[str]:
    """PIDs of the program's RUNNING processes on an app host."""
    return re.findall(r"RUNNING +pid (\d+)", app_host(name).run("supervisorctl status echo:").stdout)


def spare_name() -> str:
    return RUNNER.get_hosts("spare")[0]


def expected_processes(hosts: list[str]) -> list[str]:
    out = []
    for name in hosts:
        count = int(RUNNER.get_variables(name)["supervisord_numprocs"])
        out += [f"{name}/echo_{i:02d}" for i in range(count)]
    return sorted(out)


def playbook(name: str, tmp_path: Path, groups: dict[str, list[str]] | None = None, *extra: str) -> subprocess.CompletedProcess:
    """Run one of the collection's playbooks on the whole fleet, with hosts added to groups."""
    args = ["ansible-playbook", "-i", INVENTORY]
    if groups:
        extra_inventory = tmp_path / "extra_inventory.yml"
        children = {group: {"hosts": {host: {} for host in hosts}} for group, hosts in groups.items()}
        extra_inventory.write_text(json.dumps({"all": {"children": children}}))
        args += ["-i", str(extra_inventory)]
    for value in extra:
        args += ["-e", value]
    result = subprocess.run([*args, str(PLAYBOOKS / name)], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    return result


OWNED = "/etc/wsfleet-echo /etc/supervisor /etc/nginx /etc/haproxy /opt/wsfleet-echo/bin /etc/tmpfiles.d"


def fleet_state() -> dict[str, tuple[str, list[str] | None]]:
    """Checksums of every file the roles own on every host, and the PIDs of every app process."""
    state = {}
    for name in app_names() + RUNNER.get_hosts("lb"):
        sums = get_host(name).run(f"find {OWNED} -type f -exec md5sum {{}} + 2>/dev/null | sort").stdout
        state[name] = (sums, pids(name) if name in app_names() else None)
    return state


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        # Before: app.env rewritten and every process restarted on both app hosts, then the refusal.
        ({"wsfleet_lb": "apache", "echo_app_log_level": "WARNING"}, "wsfleet_lb must be one of nginx, haproxy (got 'apache')"),
        # Before: both app hosts reconfigured (changed=4) and out of the load balancers, then the error.
        ({"supervisord_listen": "unix", "echo_app_log_level": "WARNING"}, "listens on Unix sockets, which the load balancer"),
        # Before: app.env changed, then supervisord refused, and the restart handler was lost.
        ({"supervisord_numprocs": 0, "echo_app_log_level": "INFO"}, "supervisord_numprocs 1..100"),
        # Before: types and choices were checked by Ansible when the load balancer role started,
        # after the app play had rewritten app.env and restarted every process on both app hosts.
        ({"nginx_lb_balance": "fastest", "echo_app_log_level": "WARNING"}, "nginx_lb_balance must be one of"),
        ({"haproxy_lb_port": "eighty", "echo_app_log_level": "WARNING"}, "haproxy_lb_port"),
    ],
    ids=["lb-kind", "topology", "numprocs", "nginx-choice", "haproxy-type"],
)
def test_a_run_that_fails_a_check_changes_no_host(lbs, extra, needle):
    """Every check of every role runs on every host before any role changes any host
    (playbooks/preflight.yml, which site.yml runs first): a failed run leaves every host's files
    byte-identical and every process with the PID it had."""
    before = fleet_state()
    args = ["ansible-playbook", "-i", INVENTORY, "-e", json.dumps(extra), str(PLAYBOOKS / "site.yml")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and needle in " ".join(output.split()), output[-4000:]
    recap = dict(re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", result.stdout, re.MULTILINE))
    assert set(recap) == set(before) and set(recap.values()) == {"0"}, recap
    assert fleet_state() == before


def test_each_load_balancer_has_every_process_of_every_app_host(lbs):
    wanted = len(expected_processes(app_names()))
    for kind, (host, _) in lbs.items():
        lines = host.file(CONFIG[kind]).content_string.splitlines()
        prefix = "server " if kind == "haproxy" else "server 172."
        servers = [line for line in lines if line.strip().startswith(prefix)]
        assert len(servers) == wanted == 5, (kind, servers)


def test_healthz_of_every_backend_from_each_lb_host(lbs):
    for kind, (_, probe) in lbs.items():
        for name in app_names():
            vars_ = RUNNER.get_variables(name)
            for i in range(int(vars_["supervisord_numprocs"])):
                assert probe("health", f"{vars_['wsfleet_backend_address']}:{8000 + i}") == {"status": 200}, (kind, name, i)
        assert probe("health", LB_URL) == {"status": 200}, kind


def test_echo_and_least_connections_over_all_five_processes_through_each_lb(lbs):
    processes = expected_processes(app_names())
    for kind, (_, probe) in lbs.items():
        assert probe("echo", LB_URL, "Hello!")["replies"] == ["Hello!", "Hello! (binary)"], kind
        out = probe("spread", LB_URL, 10 * len(processes))
        spread = out["processes"]
        assert out["echoed"] == 10 * len(processes), kind
        assert sorted(spread) == processes, (kind, spread)  # every process of every host, and nothing else
        assert min(spread.values()) >= 5 and max(spread.values()) <= 20, (kind, spread)  # none starved, none above 2x


def test_rolling_restart_closes_with_1012_and_reconnecting_clients_never_fail(lbs, tmp_path):
    """A reconnecting client population on each load balancer runs through the whole rolling restart."""
    before = {name: pids(name) for name in app_names()}
    loads = {kind: Load(host, f"ws://{LB_URL}/", "--connections 40 --ramp-rate 200 --rate 2 --duration 900 --reconnect --progress")
             for kind, (host, _) in lbs.items()}
    for load in loads.values():
        load.wait_open(40)
    playbook("rolling_restart.yml", tmp_path)
    time.sleep(3)  # the last restarted process's clients reconnect
    reports = {kind: load.stop() for kind, load in loads.items()}
    after = {name: pids(name) for name in app_names()}
    for name in app_names():  # every process restarted: all PIDs are new
        assert not set(before[name]) & set(after[name]), (name, before[name], after[name])
        assert len(after[name]) == len(before[name]) == int(RUNNER.get_variables(name)["supervisord_numprocs"])
    for kind, report in reports.items():
        closes = {int(code): count for code, count in report["closes"]["by_code"].items()}
        text = f"{kind}: {json.dumps(report)}"
        assert closes.get(1012, 0) >= 1, text  # clients of restarted processes were told "service restart"
        assert set(closes) <= {1001, 1012}, text  # never 1006 (abnormal) or anything else
        assert report["closes"]["abnormal"] == 0 and report["closes"]["other"] == 0, text
        assert report["handshakes"]["failed"] == 0, text  # no failed handshake while reconnecting
        assert report["handshakes"]["ok"] >= 40 + closes[1012], text  # and every reconnect succeeded
        assert not report["errors"], text


@pytest.mark.once("scale_out")
def test_scale_out_keeps_open_connections_and_reaches_the_new_host(lbs, tmp_path):
    spare = spare_name()
    loads = {kind: Load(host, f"ws://{LB_URL}/", "--connections 20 --ramp-rate 200 --rate 1 --duration 900 --progress")
             for kind, (host, _) in lbs.items()}
    for load in loads.values():
        load.wait_open(20)
    try:
        playbook("scale.yml", tmp_path, {"app": [spare]})
        time.sleep(2)
        processes = expected_processes([*app_names(), spare])
        reports = {kind: load.stop() for kind, load in loads.items()}
        for kind, report in reports.items():
            text = f"{kind}: {json.dumps(report)}"
            assert (report["handshakes"]["ok"], report["handshakes"]["failed"]) == (20, 0), text
            assert report["open_at_end"] == 20 and not report["closes"]["by_code"], text  # opened before, still open
            assert report["messages"]["round_trips"] > 0 and not report["errors"], text  # and still echoing
            spread = lbs[kind][1]("spread", LB_URL, 10 * len(processes))["processes"]
            assert sorted(spread) == processes, (kind, spread)  # new connections reach the new host
    finally:
        # Scale in again (and test it): the spare host's processes stop with 1001, clients move.
        loads = {kind: Load(host, f"ws://{LB_URL}/", "--connections 35 --ramp-rate 200 --rate 1 --duration 900 --progress")
                 for kind, (host, _) in lbs.items()}
        for load in loads.values():
            load.wait_open(35)
        playbook("scale.yml", tmp_path, {"retired": [spare]})
        time.sleep(2)
        reports = {kind: load.stop() for kind, load in loads.items()}
    for kind, report in reports.items():
        text = f"{kind}: {json.dumps(report)}"
        on_spare = sum(count for name, count in report["spread"].items() if name.startswith(f"{spare}/"))
        assert on_spare >= 1, text  # least-connections sent some of the 35 to the then-new host
        assert report["closes"]["by_code"] == {"1001": on_spare}, text  # only those were closed, with 1001
        assert report["open_at_end"] == 35 - on_spare, text  # connections to the other hosts untouched
        assert report["handshakes"]["failed"] == 0 and not report["errors"], text
        spread = lbs[kind][1]("spread", LB_URL, 50)["processes"]
        assert sorted(spread) == expected_processes(app_names()), (kind, spread)
    assert app_host(spare).run("supervisorctl status echo:").stdout.count("STOPPED") == 2


def test_an_app_host_crash_fails_no_handshake_and_its_servers_go_down_at_once(lbs):
    """SIGKILL of a whole app host (docker kill: every process at once, then its address vanishes)
    under 100 reconnecting clients through each load balancer.

    Its clients see 1006 and reconnect at once, to servers of which two are now dead and, under
    least-connections, the emptiest. Before on-error mark-down, HAProxy answered 28-36 of those
    reconnects with 503 (every retry went to the dead servers) and took 4-6 s to mark them down
    (two failed checks). Now: no failed handshake through either load balancer; HAProxy marks the
    dead host's servers DOWN from the clients' own failed connections (their `hanafail` counter),
    so within one connect timeout of the crash; /healthz answers 200 on both throughout (each
    request given 5 s, a cloud load balancer's usual check timeout). Then the host starts again and
    gets connections again.

    Measured: DOWN 0.2-1.0 s after `docker kill` on a quiet machine (the container still refused
    connections while it was torn down), 2.3 s with four scenarios running at once (its address
    already gone, so the connection timed out: timeout connect is 2 s).
    """
    down = app_names()[-1]  # molecule names each container after its platform
    address = RUNNER.get_variables(down)["wsfleet_backend_address"]
    loads = {kind: Load(host, f"ws://{LB_URL}/", "--connections 100 --ramp-rate 200 --rate 1 --duration 900 --reconnect --progress")
             for kind, (host, _) in lbs.items()}
    for load in loads.values():
        load.wait_open(100)
    health = {kind: Watch(host, probe, "watch-health", LB_URL, 20) for kind, (host, probe) in lbs.items()}
    states = Watch(lbs["haproxy"][0], lbs["haproxy"][1], "watch-haproxy", 20)
    analysed = {name: int(row["hanafail"] or 0) for name, row in lbs["haproxy"][1]("haproxy-stat", "wsfleet").items()}
    connect_timeout = float(re.search(r"timeout connect (\d+)s", lbs["haproxy"][0].file("/etc/haproxy/haproxy.cfg").content_string)[1])
    time.sleep(3)
    crashed_at = time.time()
    subprocess.run(["docker", "kill", down], check=True, capture_output=True)
    try:
        time.sleep(12)
        reports = {kind: load.stop() for kind, load in loads.items()}
        for kind, report in reports.items():
            text = f"{kind}: {json.dumps(report)}"
            on_down = sum(count for name, count in report["spread"].items() if name.startswith(f"{down}/"))
            assert report["handshakes"]["failed"] == 0, text  # no reconnect failed, not one 502 or 503
            assert report["closes"]["by_code"].get("1006", 0) >= 1, text  # the crashed host's clients were cut...
            assert report["handshakes"]["ok"] >= 100 + report["closes"]["by_code"]["1006"], text  # ...and all came back
            assert on_down >= 1 and report["open_at_end"] == 100, text
            assert not report["errors"], text
        for kind, watch in health.items():
            samples = watch.result()
            bad = [s for s in samples if s[1] != 200]
            assert len(samples) >= 20 and not bad, (kind, bad, len(samples), service_log(lbs[kind][0]))
        timeline = states.result()
        dead = [name for name in timeline[0][1] if name.startswith(f"{address}:")]
        assert len(dead) == int(RUNNER.get_variables(down)["supervisord_numprocs"]), timeline[0]
        assert all(timeline[0][1][name] == 2 for name in dead), timeline[0]  # up before the crash
        marked = next((t for t, st in timeline if t >= crashed_at and all(st[name] == 0 for name in dead)), None)
        # Marked down by the real connections that failed, not by two failed checks (4-6 s)...
        stat = lbs["haproxy"][1]("haproxy-stat", "wsfleet")
        failed = {name: int(stat[name]["hanafail"] or 0) - analysed[name] for name in dead}
        assert sum(failed.values()) >= 1, (failed, {name: stat[name]["check_status"] for name in dead})
        # ...so at most one connect timeout after the crash (plus a second for a busy machine).
        assert marked is not None and marked - crashed_at <= connect_timeout + 1.0, (marked and marked - crashed_at, failed, timeline[-1])
    finally:
        subprocess.run(["docker", "start", down], check=True, capture_output=True)
    wanted = expected_processes(app_names())
    for kind, (host, probe) in lbs.items():
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            spread = probe("spread", LB_URL, 30)["processes"]
            if sorted(spread) == wanted:
                break
            time.sleep(3)
        assert sorted(spread) == wanted, (kind, spread, service_log(host))
