"""Fixtures shared by the testinfra tests of every scenario (pytest loads it for tests/ and tests_lb/)."""

from __future__ import annotations

import functools
import json
import os
import resource
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from testinfra.utils.ansible_runner import AnsibleRunner

RESOURCES = Path(__file__).resolve().parent
PROBE = "/usr/local/bin/wsprobe"
PYTHON = "/opt/wsfleet-echo/venv/bin/python"  # the app's virtualenv has the websockets client
LOAD = "/opt/wsfleet-echo/venv/bin/wsfleet-load"  # and the app's load client
CAFILE = "/usr/local/share/wsprobe-ca.pem"  # the TLS scenarios' self-signed certificate, trusted by wsprobe


# Tests that run site.yml again, whole, cost one or two converges of CPU each, and converges are what
# bounds the molecule phase on these 2 cores. What they test does not depend on the release, so
# each runs in the runs named here (scenario-dRELEASE), which together cover each load balancer kind,
# Unix sockets and TCP ports, TLS and both releases; in every other run it is deselected (pytest's
# summary counts it as "deselected", never as passed). WSFLEET_TEST_EVERY_RUN=1 runs them everywhere
# (but what only one load balancer kind has: where the scenario has that kind).
# README.md ("Which run covers what") has the same table; tests/test_molecule_matrix.py checks that
# every run named here exists and that each test keeps both kinds, Unix sockets and TCP ports, and
# both releases (but for ONE_RELEASE).
ONCE_IN = {
    # site.yml with a changed app setting under load: a rolling restart through the load balancer.
    "app_change": ("lb_nginx-d12", "lb_haproxy_tcp-d13"),
    # TLS turned off and on again: only the scenarios that terminate TLS.
    "tls_off": ("lb_nginx-d13", "lb_haproxy_tcp-d12"),
    # wsfleet_lb changed on a host and back: each run tests both directions.
    "lb_switch": ("lb_nginx-d13", "lb_haproxy-d12"),
    # a reload that left the old config serving fails the run, and the next run reloads.
    "reload_retry": ("lb_nginx-d12", "lb_haproxy-d13"),
    # a client that never reads, cut by the load balancer: each kind on each release, TLS and not.
    "never_reads": ("lb_nginx-d12", "lb_nginx-d13", "lb_haproxy-d12", "lb_haproxy_tcp-d13"),
    # a client that fills HAProxy's buffers both ways, ended by timeout tunnel as the app's pings set it.
    "stuck_tunnel": ("lb_haproxy-d13", "lb_haproxy_tcp-d12"),
    # scale.yml adds the spare app host under load and retires it again.
    "scale_out": ("fleet-d12",),
    # site.yml with the program's name and socket directory as play vars (lb_haproxy's variable).
    "play_vars": ("lb_haproxy-d13",),
    # a user's package directory changed: rebuilt, reinstalled, restarted once (app_custom only).
    "app_code": ("app_custom-d12",),
    # another app's wheels in the shared controller cache change nothing (app_custom only).
    "foreign_wheels": ("app_custom-d13",),
    # a hand-edited file, setting, mode and owner, an account's shell, a deleted group, a stopped service, processes
    # stopped by hand, repaired by the next run, nothing changed by the one after: the files module's compare-and-repair and the checks'
    # one look at the host, which do not depend on the release.
    "drift": ("app_tcp-d12",),
    # numprocs lowered by one: on Unix sockets and on TCP ports.
    "scale_down": ("app_unix-d12", "app_tcp-d13"),
}
# The groups above that run once, on one release: what they test happens on the controller
# (Ansible's variable precedence, the controller's wheel cache and collection path, the package
# build), and the host's part of it (a converge) is what every run of every scenario does; drift's
# repair is wsfleet.fleet.files comparing content, owner and mode (Python's os calls), whatever the release.
ONE_RELEASE = {"play_vars", "app_code", "foreign_wheels", "drift"}
# The groups above that test what only one load balancer kind has (HAProxy's timeout tunnel).
ONE_KIND = {"stuck_tunnel": "haproxy"}


def this_run() -> str:
    """The matrix's name of the run being verified: the scenario and the release."""
    return f"{os.environ.get('MOLECULE_SCENARIO_NAME', '')}-d{os.environ.get('WSFLEET_DEBIAN', '12')}"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "once(group): runs only in the runs ONCE_IN[group] names (conftest.py)")


def runs_here(group: str) -> bool:
    """Whether this run runs the tests of a ONCE_IN group: a run it names; with WSFLEET_TEST_EVERY_RUN=1,
    every run, but for a ONE_KIND group, only the runs of the scenarios it names (those with that kind)."""
    if os.environ.get("WSFLEET_TEST_EVERY_RUN") == "1":
        return group not in ONE_KIND or os.environ.get("MOLECULE_SCENARIO_NAME", "") in {
            name.rsplit("-d", 1)[0] for name in ONCE_IN[group]}
    return this_run() in ONCE_IN[group]


def pytest_collection_modifyitems(config, items) -> None:
    keep, elsewhere = [], []
    for item in items:
        marker = item.get_closest_marker("once")
        (keep if marker is None or runs_here(marker.args[0]) else elsewhere).append(item)
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = keep


@functools.cache
def _instances() -> tuple[str, ...]:
    """The hosts of the run's inventory, which are its containers: from testinfra's runner for molecule's
    inventory, the one the host fixtures already loaded."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    return tuple(AnsibleRunner.get_runner(inventory).get_hosts("all")) if inventory else ()


@functools.cache
def _container_ids(names: tuple[str, ...]) -> tuple[str, ...]:
    """The containers' ids (kept when a test stops and starts one), asked once per verify stage."""
    if not names:
        return ()
    return tuple(subprocess.run(["docker", "inspect", "-f", "{{.Id}}", *names], capture_output=True, text=True).stdout.split())


def _containers_cpu(names: tuple[str, ...]) -> dict[str, float]:
    """CPU-seconds each of the run's running containers has used (its cgroup, v1 or v2), by id."""
    usage = {}
    for container in _container_ids(names):
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{container}.scope/cpu.stat")
        if v1.exists():
            usage[container] = int(v1.read_text()) / 1e9
        elif v2.exists():
            usage[container] = int(v2.read_text().split("usage_usec ")[1].split()[0]) / 1e6
    return usage


def _containers_delta(before: dict[str, float], after: dict[str, float]) -> float:
    """CPU-seconds used between two readings; a container restarted in between (a new cgroup,
    counting from 0) counts what it used since."""
    return sum(used - before.get(c, 0.0) if used >= before.get(c, 0.0) else used for c, used in after.items())


def _controller_cpu() -> float:
    """CPU-seconds of pytest and of every process it waited for (ansible-playbook, docker exec, ...)."""
    return sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for field in ("ru_utime", "ru_stime"))


CPU_PER_TEST: list[tuple[float, float, float, str]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Where the verify stage's CPU goes (CPU, not waiting, bounds the molecule phase on 2 cores): each
    test's CPU-seconds on the controller and in the run's containers; the costliest are printed at the end."""
    names = _instances()
    start, controller, hosts = time.monotonic(), _controller_cpu(), _containers_cpu(names)
    yield
    CPU_PER_TEST.append((time.monotonic() - start, _controller_cpu() - controller, _containers_delta(hosts, _containers_cpu(names)),
                         item.nodeid.split("::")[-1]))


def pytest_terminal_summary(terminalreporter) -> None:
    if not CPU_PER_TEST:
        return
    controller = sum(c for _, c, _, _ in CPU_PER_TEST)
    hosts = sum(h for _, _, h, _ in CPU_PER_TEST)
    terminalreporter.write_sep("=", f"CPU-seconds of the tests: controller {controller:.0f}, hosts {hosts:.0f}; the 8 costliest")
    for wall, c, h, name in sorted(CPU_PER_TEST, key=lambda t: -(t[1] + t[2]))[:8]:
        terminalreporter.write_line(f"{c:6.1f} controller {h:6.1f} hosts {wall:6.1f} s wall  {name}")


def service_log(host) -> str:
    """What supervisord, the processes and the load balancer said: printed when a check fails."""
    return host.run(
        "supervisorctl status; tail -n 15 /var/log/supervisor/supervisord.log /var/log/supervisor/*_0*.log "
        "/var/log/nginx/error.log 2>/dev/null; journalctl -u haproxy -n 15 --no-pager 2>/dev/null"
    ).stdout


class Probe:
    """wsprobe.py run inside the test host with the real websockets client."""

    def __init__(self, host):
        self.host = host
        variables = host.ansible.get_variables()
        become = bool(variables.get("ansible_become"))  # hosts reached over SSH as an unprivileged user
        host.ansible("copy", f"src={RESOURCES / 'wsprobe.py'} dest={PROBE} mode=0755", check=False, become=become)
        tls_dir = variables.get("test_tls_dir")
        if tls_dir:
            host.ansible("copy", f"src={tls_dir}/cert.pem dest={CAFILE} mode=0644", check=False, become=become)

    def command(self, *args: object) -> str:
        return f"env WSPROBE_CAFILE={CAFILE} {PYTHON} {PROBE} " + " ".join(shlex.quote(str(a)) for a in args)

    def __call__(self, *args: object, timeout: int = 120) -> dict:
        cmd = self.host.run(f"timeout {timeout} {self.command(*args)}")
        assert cmd.rc == 0, f"wsprobe {args} failed: {cmd.stderr}\n{service_log(self.host)}"
        return json.loads(cmd.stdout)

    def ok(self, *args: object) -> bool:
        return self.host.run(self.command(*args)).rc == 0


class Load:
    """wsfleet-load in the background on the load balancer host; stop() ends it and returns its JSON."""

    def __init__(self, host, *args: object) -> None:
        self.host = host
        self.out = f"/tmp/wsfleet-load-{time.monotonic_ns()}"
        argv = " ".join(str(a) for a in args)
        cmd = host.run(f"nohup {LOAD} --json --workers 2 {argv} >{self.out}.json 2>{self.out}.err & echo $! >{self.out}.pid")
        assert cmd.rc == 0, cmd.stderr

    def wait_open(self, count: int, timeout: float = 60) -> None:
        """Wait until the client reports count open connections (its progress line on stderr)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            progress = self.host.run(f"tail -c 400 {self.out}.err").stdout
            if f"open {count:,} " in progress.rsplit("\r", 1)[-1]:
                return
            time.sleep(0.5)
        pytest.fail(f"wsfleet-load did not open {count} connections: {progress}")

    def stop(self) -> dict:
        self.host.run(f"kill -TERM $(cat {self.out}.pid)")  # ends the run early, with its report
        for _ in range(60):
            if self.host.run(f"kill -0 $(cat {self.out}.pid)").rc != 0:
                break
            time.sleep(0.5)
        text = self.host.file(f"{self.out}.json").content_string
        assert text.strip(), self.host.file(f"{self.out}.err").content_string
        return json.loads(text)


class Watch:
    """A wsprobe watch-* command in the background on a host; result() waits for its JSON."""

    def __init__(self, host, probe: Probe, *args: object) -> None:
        self.host = host
        self.out = f"/tmp/wsprobe-watch-{time.monotonic_ns()}.json"
        cmd = host.run(f"nohup {probe.command(*args)} >{self.out} 2>{self.out}.err &")
        assert cmd.rc == 0, cmd.stderr

    def result(self, timeout: float = 60) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.host.file(self.out).content_string
            if text.strip():
                return json.loads(text)
            time.sleep(0.5)
        pytest.fail(f"watch gave nothing: {self.host.file(self.out + '.err').content_string}")


@pytest.fixture(scope="module")
def probe(host) -> Probe:
    return Probe(host)


@pytest.fixture(scope="module")
def variables(host) -> dict:
    return host.ansible.get_variables()


def converge_again(host, playbook: Path, *extra_vars: str, tags: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the scenario's real playbook again from the controller, with extra variables (and tags)."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or host.backend.ansible_inventory
    args = ["ansible-playbook", "-i", inventory, "--limit", host.backend.host, str(playbook)]
    if check:
        args.append("--check")
    for extra in extra_vars:
        args += ["-e", extra]
    if tags:
        args += ["--tags", tags]
    return subprocess.run(args, capture_output=True, text=True, timeout=900)
