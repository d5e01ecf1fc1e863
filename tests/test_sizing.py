"""Sizing: every limit follows from wsfleet_target_connections (connections one host holds).

The roles' own templates and variable files are rendered by Ansible for 1k, 10k and 100k target
connections on a host with 4 vCPUs; the test reads the numbers back from the rendered files and
checks them against the documented arithmetic (README "Sizing"), and that the backend_endpoints
filter gives the load balancer as many servers as supervisord runs processes.
"""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pytest
from local_play import ANSIBLE_PLAYBOOK, ansible_env

ROOT = Path(__file__).resolve().parent.parent
TARGETS = (1000, 10000, 100000)
VCPUS = 4
PER_PROCESS = 10000  # supervisord_connections_per_process, the measured capacity of one process
NR_OPEN = 1048576  # Linux's default fs.nr_open: the most files one process may ever open


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[int, dict[str, str]]:
    out = tmp_path_factory.mktemp("sizing")
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", str(ROOT / "tests" / "render_limits.yml"),
         "-e", f"out={out}", "-e", f"vcpus={VCPUS}", "-e", "{\"targets\": [" + ", ".join(map(str, TARGETS)) + "]}"],
        cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return {t: {name: (out / str(t) / name).read_text() for name in ("nginx.conf", "haproxy.cfg", "supervisord.txt")} for t in TARGETS}


def number(text: str, pattern: str) -> int:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, pattern
    return int(match.group(1))


@pytest.mark.parametrize("target", TARGETS)
def test_nginx_limits(rendered, target: int) -> None:
    conf = rendered[target]["nginx.conf"]
    assert re.search(r"^worker_processes auto;$", conf, re.MULTILINE)  # nginx_lb_worker_processes: per-worker limits below
    worker_connections = number(conf, r"^\s*worker_connections (\d+);")
    assert worker_connections == 2 * target + 512  # a proxied WebSocket is two connections
    assert number(conf, r"^worker_rlimit_nofile (\d+);") == worker_connections + 512
    assert number(conf, r"^worker_rlimit_nofile (\d+);") < NR_OPEN


@pytest.mark.parametrize("target", TARGETS)
def test_haproxy_limits(rendered, target: int) -> None:
    maxconn = number(rendered[target]["haproxy.cfg"], r"^\s*maxconn (\d+)$")
    assert maxconn == target + 512
    files = number(rendered[target]["supervisord.txt"], r"^haproxy_files=(\d+)$")
    assert files == 2 * maxconn + 64 < NR_OPEN


@pytest.mark.parametrize(("target", "processes"), [(1000, VCPUS), (10000, VCPUS), (100000, 10)])
def test_supervisord_processes_and_minfds(rendered, target: int, processes: int) -> None:
    text = rendered[target]["supervisord.txt"]
    assert number(text, r"^numprocs=(\d+)$") == processes == max(VCPUS, math.ceil(target / PER_PROCESS))
    assert number(text, r"^minfds=(\d+)$") == PER_PROCESS + 1024
    assert processes * PER_PROCESS >= target  # the processes together hold the target


@pytest.mark.parametrize(("target", "processes"), [(1000, VCPUS), (10000, VCPUS), (100000, 10)])
def test_the_load_balancer_gets_as_many_servers_as_supervisord_runs(rendered, target: int, processes: int) -> None:
    """Through the fact supervisord publishes (tasks/publish.yml) and the backend_endpoints filter."""
    assert number(rendered[target]["supervisord.txt"], r"^servers=(\d+)$") == processes


def test_the_roles_sizing_defaults_are_the_fleets() -> None:
    """wsfleet_target_connections is defined once (roles/wsfleet); the roles' targets default to it."""
    for role, name in (("supervisord", "supervisord_target_connections"), ("nginx_lb", "nginx_lb_target_connections"),
                       ("haproxy_lb", "haproxy_lb_target_connections")):
        text = (ROOT / "roles" / role / "defaults" / "main.yml").read_text()
        assert f"{name}: \"{{{{ wsfleet_target_connections }}}}\"" in text, role
    defined = [path for path in (ROOT / "roles").glob("*/defaults/main.yml")
               if re.search(r"^wsfleet_target_connections:", path.read_text(), re.MULTILINE)]
    assert [path.parent.parent.name for path in defined] == ["wsfleet"]
