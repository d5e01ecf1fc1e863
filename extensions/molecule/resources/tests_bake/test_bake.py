"""bake.yml: an image that serves on every instance booted from it, sized by that instance.

The build host is committed as an image; two instances boot from it on the scenario's network (one
limited to one CPU, one with a configured count of 3), with no Ansible run. Then a front load
balancer (the other kind) is put over both with the inventory-driven server list.
Clients run on the controller with the real websockets client (wsprobe), against containers this
scenario created.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from testinfra.utils.ansible_runner import AnsibleRunner

import systemd_container
from conftest import RESOURCES, converge_again

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)
testinfra_hosts = RUNNER.get_hosts("bake")
FRONT = RUNNER.get_hosts("front")[0]
CONFIGURED = 3  # WSFLEET_NUMPROCS written into the second instance before its first boot


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300)


def wsprobe(*args: object) -> dict:
    result = subprocess.run([sys.executable, str(RESOURCES / "wsprobe.py"), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def healthz(address: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=2) as response:
            return response.status
    except OSError:
        return 0


def test_nothing_of_the_build_host_is_baked_in(host):
    facts = host.ansible("setup", "gather_subset=min,network")["ansible_facts"]
    identities = {facts["ansible_hostname"], facts["ansible_nodename"]}
    identities |= {ip for ip in facts["ansible_all_ipv4_addresses"] if not ip.startswith("127.")}
    places = "/etc/supervisor /etc/nginx /etc/haproxy /etc/wsfleet-instance /etc/default/wsfleet-instance /etc/wsfleet-echo /etc/systemd/system /etc/tmpfiles.d /opt/wsfleet-echo/bin"
    for identity in identities:
        found = host.run(f"grep -rIl -F {identity} {places} 2>/dev/null")
        assert found.stdout == "", f"{identity!r} of the build host is in {found.stdout}"
    program = host.file("/etc/supervisor/conf.d/echo.conf").content_string
    assert "numprocs=%(ENV_WSFLEET_NUMPROCS)s" in program  # no CPU count: resolved at boot
    assert host.file("/etc/machine-id").content_string == ""
    for unit in ("wsfleet-instance", "supervisor", "nginx" if host.ansible.get_variables()["wsfleet_lb"] == "nginx" else "haproxy"):
        assert host.service(unit).is_enabled, unit


@pytest.fixture(scope="module")
def instances(host):
    """Commit the build host, boot two instances from it; measure boot-to-serving."""
    variables = host.ansible.get_variables()
    image = f"wsfleet/bake-test:{host.backend.host}"
    docker("commit", host.backend.host, image)
    booted = {}
    try:
        for number, (name, ip) in enumerate(sorted(variables["test_instances"].items())):
            docker("rm", "-f", name, check=False)
            limits = ["--cpuset-cpus", "0"] if number == 0 else []
            docker("create", "--name", name, "--hostname", name, "--network", variables["test_network"], "--ip", ip,
                   *systemd_container.docker_run_options(), *limits, image, systemd_container.COMMAND)
            if number == 1:  # what cloud-init user data would write before the first boot
                settings = Path(f"/tmp/{name}.wsfleet-instance")
                settings.write_text(f"WSFLEET_NUMPROCS={CONFIGURED}\n")
                docker("cp", str(settings), f"{name}:/etc/default/wsfleet-instance")
            started = time.monotonic()
            docker("start", name)
            while healthz(f"{ip}:8080") != 200 and time.monotonic() - started < 60:
                time.sleep(0.05)
            booted[name] = {"ip": ip, "boot_seconds": round(time.monotonic() - started, 2),
                            "expected": 1 if number == 0 else CONFIGURED}
            # /healthz through the instance's LB is proxied to an app process: 200 means one answers.
            print(f"{name}: /healthz 200 through its load balancer {booted[name]['boot_seconds']} s after docker start")
        yield booted
    finally:
        for name in variables["test_instances"]:
            docker("rm", "-f", name, check=False)
        docker("rmi", image, check=False)


def test_instances_serve_within_seconds_of_boot(instances):
    for name, instance in instances.items():
        assert instance["boot_seconds"] < 30, (name, instance, docker("logs", "--tail", "30", name, check=False).stdout)


def test_supervisord_was_woken_at_boot(instances):
    """The unit's ExecStartPost connected to supervisord's control socket (it exits 1 if it never did),
    and supervisord spawned the processes (how much sooner: docs/benchmarks.md, boot-to-serving)."""
    for name in instances:
        shown = docker("exec", name, "systemctl", "show", "supervisor.service", "--property=ExecStartPost").stdout
        assert "code=exited ; status=0" in shown, (name, shown)
        log = docker("exec", name, "journalctl", "-b", "-u", "supervisor.service", "-o", "cat", "--no-pager").stdout
        assert "supervisord started" in log and "spawned: 'echo_00'" in log, (name, log[-2000:])


def test_each_instance_runs_its_own_process_count(instances):
    for name, instance in instances.items():
        # Serving means one process answers; the others may still be within supervisord's startsecs.
        deadline = time.monotonic() + 30
        while True:
            status = docker("exec", name, "supervisorctl", "status", "echo:", check=False).stdout
            if status.count("RUNNING") == instance["expected"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status.count("RUNNING") == instance["expected"], (name, status)
        env = docker("exec", name, "cat", "/run/wsfleet-instance/env").stdout
        assert env == f"WSFLEET_NUMPROCS={instance['expected']}\n"
        machine_id = docker("exec", name, "cat", "/etc/machine-id").stdout.strip()
        assert len(machine_id) == 32, machine_id  # a fresh id per instance


def test_echo_through_each_instance_reaches_all_its_processes(instances):
    for name, instance in instances.items():
        target = f"{instance['ip']}:8080"
        assert wsprobe("echo", target, "Hello!")["replies"] == ["Hello!", "Hello! (binary)"]
        wanted = [f"{name}/echo_{i:02d}" for i in range(instance["expected"])]
        # /healthz answers as soon as one process does; the others follow within seconds (and nginx
        # skips a socket that refused a connect for fail_timeout).
        deadline = time.monotonic() + 30
        while True:
            try:
                spread = wsprobe("spread", target, 4 * instance["expected"])["processes"]
            except AssertionError as exc:  # a 502 while a process is still starting
                spread = {"error": str(exc)[-300:]}
            if sorted(spread) == wanted or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert sorted(spread) == wanted, spread


def test_front_load_balancer_over_both_instances(instances, tmp_path):
    hosts = {name: {"wsfleet_backend_address": i["ip"], "supervisord_numprocs": "boot"} for name, i in instances.items()}
    extra = tmp_path / "instances.yml"
    extra.write_text(json.dumps({"all": {"children": {"instances": {"hosts": hosts}}}}))
    result = subprocess.run(["ansible-playbook", "-i", INVENTORY, "-i", str(extra), str(RESOURCES / "front_lb.yml")],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-5000:]
    target = RUNNER.get_variables(FRONT)["test_front"]
    deadline = time.monotonic() + 30
    while healthz(target) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert wsprobe("echo", target, "Hello!")["replies"] == ["Hello!", "Hello! (binary)"]
    spread = wsprobe("spread", target, 16)["processes"]
    assert {name.split("/")[0] for name in spread} == set(instances), spread  # both instances serve


def test_zz_a_bad_load_balancer_value_stops_the_bake_before_the_first_change(host):
    """Every role's checks run before the first role changes the build host. Before, each role
    checked as it started: the app's settings were rewritten and its processes restarted, then the
    load balancer's value was refused."""
    kind = host.ansible.get_variables()["wsfleet_lb"]
    bad, needle = ({"nginx_lb_balance": "fastest"}, "nginx_lb_balance must be one of") if kind == "nginx" \
        else ({"haproxy_lb_timeout_tunnel": 30}, "haproxy_lb_timeout_tunnel (30 s) above the app's ping interval")
    owned = "/etc/wsfleet-echo /opt/wsfleet-echo/bin /etc/supervisor /etc/nginx /etc/haproxy"
    before = host.run(f"find {owned} -type f -exec md5sum {{}} + 2>/dev/null | sort; supervisorctl pid all").stdout
    result = converge_again(host, RESOURCES.parent.parent.parent / "playbooks" / "bake.yml",
                            json.dumps({**bad, "echo_app_log_level": "WARNING"}))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0 and needle in output, output[-3000:]
    assert re.search(r"changed=0\s", result.stdout) and not re.search(r"changed=[1-9]", result.stdout), result.stdout[-3000:]
    assert host.run(f"find {owned} -type f -exec md5sum {{}} + 2>/dev/null | sort; supervisorctl pid all").stdout == before
