"""echo_app + supervisord: N supervised processes, one Unix socket or TCP port each.

Shared by the app scenarios; what to expect (process count, listen scheme, reply prefix) comes from
the scenario's inventory. Also runs as
`pytest --hosts=ansible://all --ansible-inventory=INVENTORY extensions/molecule/resources/tests`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
from conftest import RESOURCES, converge_again, service_log

if "MOLECULE_INVENTORY_FILE" in os.environ:  # under molecule; otherwise pytest's --hosts decides
    testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
LOGS = "/var/log/supervisor"


@pytest.fixture(scope="module")
def cfg(host, variables):
    v = variables
    numprocs = int(v.get("supervisord_numprocs", 0)) or int(host.ansible("setup", "filter=ansible_processor_vcpus")["ansible_facts"]["ansible_processor_vcpus"])
    return {
        "name": v.get("supervisord_program_name", "echo"),
        "numprocs": numprocs,
        "listen": v.get("supervisord_listen", "unix"),
        "socket_dir": v.get("supervisord_socket_dir", "/run/wsfleet"),
        "port_base": int(v.get("supervisord_port_base", 8000)),
        "user": v.get("echo_app_user", "wsfleet"),
        "reply_prefix": v.get("test_reply_prefix", ""),
    }


def targets(cfg, numprocs=None):
    n = cfg["numprocs"] if numprocs is None else numprocs
    if cfg["listen"] == "unix":
        return [f"{cfg['socket_dir']}/{cfg['name']}_{i:02d}.sock" for i in range(n)]
    return [f"127.0.0.1:{cfg['port_base'] + i}" for i in range(n)]


def statuses(host, cfg):
    out = host.run(f"supervisorctl status '{cfg['name']}:*'").stdout
    return {line.split()[0].split(":")[-1]: line.split()[1] for line in out.splitlines() if line.strip()}


def wait_running(host, cfg, name, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if statuses(host, cfg).get(name) == "RUNNING":
            return time.monotonic()
        time.sleep(0.25)
    raise AssertionError(f"{name} not RUNNING within {timeout} s\n{service_log(host)}")


def test_the_controller_ran_the_ansible_core_release_of_this_run():
    """scripts/molecule-matrix.py names each run's ansible-core release (WSFLEET_ANSIBLE_CORE: the controller
    venv's, or 2.19 in the run named ...-core2.19): the converge ran that release, from this pytest's venv."""
    want = os.environ.get("WSFLEET_ANSIBLE_CORE")
    if not want:
        pytest.skip("run outside scripts/molecule-matrix.py, which names the release")
    version = importlib.metadata.version("ansible-core")
    assert version.split(".")[:2] == want.split("."), (version, want)
    assert Path(shutil.which("ansible-playbook")).parent == Path(sys.executable).parent, (shutil.which("ansible-playbook"), sys.executable)


def test_supervisor_service_enabled_and_running(host):
    service = host.service("supervisor")
    assert service.is_running, service_log(host)
    assert service.is_enabled


def test_exactly_numprocs_processes_running_as_the_app_user(host, cfg):
    st = statuses(host, cfg)
    assert sorted(st) == [f"{cfg['name']}_{i:02d}" for i in range(cfg["numprocs"])], service_log(host)
    assert set(st.values()) == {"RUNNING"}, service_log(host)
    for name in st:
        pid = host.run(f"supervisorctl pid '{cfg['name']}:{name}'").stdout.strip()
        assert host.run(f"ps -o user= -p {pid}").stdout.strip() == cfg["user"]


def test_sockets_or_ports_with_intended_owner_group_mode(host, cfg):
    if cfg["listen"] == "unix":
        d = host.file(cfg["socket_dir"])
        assert (d.user, d.group, d.mode) == (cfg["user"], "wsfleet-sock", 0o2750)
        listed = sorted(host.run(f"ls {cfg['socket_dir']}").stdout.split())
        assert listed == sorted(Path(t).name for t in targets(cfg))
        for path in targets(cfg):
            sock = host.file(path)
            assert sock.is_socket
            assert (sock.user, sock.group, sock.mode) == (cfg["user"], "wsfleet-sock", 0o660)
        tmpfiles = host.file(f"/etc/tmpfiles.d/wsfleet-{cfg['name']}.conf").content_string
        assert f"d {cfg['socket_dir']} 2750 {cfg['user']} wsfleet-sock" in tmpfiles
    else:
        for target in targets(cfg):
            assert host.socket(f"tcp://{target}").is_listening
        # Nothing beyond the last process listens.
        assert not host.socket(f"tcp://127.0.0.1:{cfg['port_base'] + cfg['numprocs']}").is_listening


def test_each_process_echoes_and_answers_healthz(host, cfg, probe):
    for target in targets(cfg):
        out = probe("echo", target, "Hello!", "héllo ✓")
        p = cfg["reply_prefix"]
        assert out["replies"] == [f"{p}Hello!", f"{p}Hello! (binary)", f"{p}héllo ✓", f"{p}héllo ✓ (binary)"]
        assert probe("health", target)["status"] == 200


def test_what_the_host_publishes_is_plain_data_in_the_fact_cache(host, cfg):
    """supervisord_endpoint_settings and echo_app_keepalive, as the converge left them in the fact cache
    (jsonfile, as the README advises), carry no per-value tags. ansible-core decodes a cached host's
    facts again each time it reads the host's variables (187 times in a re-run of one host); with the
    origin and trust tags of each templated value kept, a decode took 1.83 ms instead of 0.39."""
    cache = Path(os.environ.get("ANSIBLE_CACHE_PLUGIN_CONNECTION")
                 or Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "facts")
    files = sorted(cache.glob(f"*_{host.backend.host}"))
    assert files, f"no cached facts for {host.backend.host} in {cache}"
    facts = json.loads(json.loads(files[-1].read_text())["__payload__"])
    # The fact itself may keep set_fact's origin tag (one per fact): what is inside it may not.
    published = {name: facts[name]["value"] if "__ansible_type" in facts[name] else facts[name]
                 for name in ("supervisord_endpoint_settings", "echo_app_keepalive")}
    assert published["supervisord_endpoint_settings"]["supervisord_numprocs"] == cfg["numprocs"], published
    for name, value in published.items():
        assert "__ansible_type" not in json.dumps(value), f"{name} is cached with tags: {value}"


def test_control_socket_is_root_only_and_no_tcp_control(host):
    assert host.file("/var/run/supervisor.sock").mode == 0o700
    assert "inet_http_server" not in host.file("/etc/supervisor/supervisord.conf").content_string


def test_minfds_is_inherited_by_the_processes(host, cfg):
    pid = host.run(f"supervisorctl pid '{cfg['name']}:{cfg['name']}_00'").stdout.strip()
    limits = host.file(f"/proc/{pid}/limits").content_string
    soft = int(next(line for line in limits.splitlines() if line.startswith("Max open files")).split()[3])
    assert soft >= 10000 + 1024


def test_kill_9_is_restarted_and_serves_again(host, cfg, probe):
    name = f"{cfg['name']}_01"
    old = host.run(f"supervisorctl pid '{cfg['name']}:{name}'").stdout.strip()
    killed = time.monotonic()
    host.run(f"kill -9 {old}")
    deadline = killed + 30
    while time.monotonic() < deadline:
        new = host.run(f"supervisorctl pid '{cfg['name']}:{name}'").stdout.strip()
        if new not in ("", "0", old) and statuses(host, cfg).get(name) == "RUNNING":
            break
        time.sleep(0.25)
    else:
        raise AssertionError(f"{name} was not restarted within 30 s\n{service_log(host)}")
    target = targets(cfg)[1]
    while time.monotonic() < deadline:
        if probe.ok("health", target):
            break
        time.sleep(0.25)
    assert probe("echo", target, "back")["replies"][0] == f"{cfg['reply_prefix']}back"
    assert time.monotonic() - killed < 30


def test_supervisorctl_stop_gives_clients_1001(host, cfg, probe):
    name = f"{cfg['name']}_00"
    out = probe("close-code", targets(cfg)[0], "--", "supervisorctl", "stop", f"{cfg['name']}:{name}")
    try:
        assert out["code"] == 1001, out
        assert out["command_rc"] == 0, out
    finally:
        host.run(f"supervisorctl start '{cfg['name']}:{name}'")
    wait_running(host, cfg, name)
    log = host.file(f"{LOGS}/{name}.log").content_string
    assert "Traceback" not in log


def changed_count(result) -> int:
    """Tasks changed, summed over the PLAY RECAP lines (colour codes removed)."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    return sum(int(n) for n in re.findall(r"\bchanged=(\d+)", plain))


def task_outcome(result, task: str) -> str:
    """The first outcome (ok, changed, skipping, failed, ...) printed after a task's header in a run's output."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    header = plain.find(f"TASK [{task}]")
    if header < 0:
        return "not run"
    body = plain[header:].split("\nTASK [", 1)[0]  # up to the next task (the profile callback's time line between)
    found = re.search(r"^(ok|changed|skipping|failed|fatal)\b", body, re.MULTILINE)
    return found.group(1) if found else "no outcome"


@pytest.mark.once("app_code")
def test_changed_app_code_reaches_every_process_and_only_once(host, cfg, probe, variables, tmp_path):
    """A user's package directory whose code changes (same version) is rebuilt, reinstalled and restarted.

    echo_app caches the built wheel by the directory's content: a change must land on the next run,
    and the run after it must change nothing.
    """
    source = variables.get("echo_app_package", "")
    if not source or source.endswith(".whl"):
        pytest.skip("the scenario deploys the bundled echo app; app_custom deploys a package directory")
    changed = tmp_path / "app"
    shutil.copytree(source, changed, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    code = next(changed.rglob("__init__.py"))
    text = code.read_text()
    assert text.count('f"{greeting}:{text}"') == 2, "the test edits tinyapp's reply format"
    code.write_text(text.replace('f"{greeting}:{text}"', 'f"{greeting}+:{text}"'))
    before = {name: host.run(f"supervisorctl pid '{cfg['name']}:{name}'").stdout.strip() for name in statuses(host, cfg)}
    try:
        for run, expect_changes in (("new code", True), ("same code again", False)):
            result = converge_again(host, RESOURCES / "converge_app.yml", f"echo_app_package={changed}")
            assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
            assert (changed_count(result) > 0) == expect_changes, (run, result.stdout[-4000:])
        after = {name: host.run(f"supervisorctl pid '{cfg['name']}:{name}'").stdout.strip() for name in statuses(host, cfg)}
        assert set(after) == set(before) and not set(after.values()) & set(before.values()), (before, after)
        for target in targets(cfg):
            assert probe("echo", target, "new")["replies"][0] == cfg["reply_prefix"].replace(":", "+:") + "new"
    finally:
        result = converge_again(host, RESOURCES / "converge_app.yml")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for target in targets(cfg):
        assert probe("echo", target, "old")["replies"][0] == f"{cfg['reply_prefix']}old"


@pytest.mark.once("foreign_wheels")
def test_another_apps_wheels_in_the_shared_cache_change_nothing(host, cfg, variables):
    """The wheel cache is shared by every app and checkout on the controller: a run for another app
    (here in check mode: it fills the cache, not the host) must not make this app's next run change
    anything. Before each download had a directory of its own, the other app's wheel sat in the
    platform directory, was copied to this host and force-reinstalled, and every process restarted."""
    source = variables.get("echo_app_package", "")
    if not source or source.endswith(".whl"):
        pytest.skip("app_custom deploys a package directory and plays the other app with the bundled echo app")
    pids = {name: host.run(f"supervisorctl pid '{cfg['name']}:{name}'").stdout.strip() for name in statuses(host, cfg)}
    other = converge_again(host, RESOURCES / "converge_app.yml", "echo_app_package=", check=True)
    assert other.returncode == 0, other.stdout[-4000:] + other.stderr[-2000:]
    again = converge_again(host, RESOURCES / "converge_app.yml")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]
    assert changed_count(again) == 0, again.stdout[-4000:]
    assert {name: host.run(f"supervisorctl pid '{cfg['name']}:{name}'").stdout.strip() for name in pids} == pids


@pytest.mark.once("drift")
def test_a_hand_edit_a_setting_and_a_mode_are_repaired_by_the_next_run_and_the_run_after_changes_nothing(host, cfg, probe, variables):
    """On the converged host: a rendered file edited by hand (the app settings), a setting of a file the
    role only edits (supervisord's minfds, and a TCP control listener added), a rendered file's mode and
    owner (the launcher, the program file), the mode of supervisord's own config, the app user's shell,
    the socket group deleted, and supervisor stopped and disabled at boot. The next run repairs each of
    them (changed); then a process and the metrics exporter stopped by hand are started by the next
    run; the run after reports changed=0, and asks supervisord to start nothing. The checks' one look
    at the host (wsfleet.fleet.host_state) is what tells the tasks after it what differs: none of these
    may go unseen."""
    root, config_dir = variables.get("echo_app_root", "/opt/wsfleet-echo"), variables.get("echo_app_config_dir", "/etc/wsfleet-echo")
    user = variables.get("echo_app_user", "wsfleet")
    socket_group = variables.get("supervisord_socket_group", "wsfleet-sock")
    env, launcher, program = f"{config_dir}/app.env", f"{root}/bin/wsfleet-run", f"/etc/supervisor/conf.d/{cfg['name']}.conf"
    conf = "/etc/supervisor/supervisord.conf"
    files = (env, launcher, program)

    def state():
        return {path: (host.file(path).sha256sum, host.file(path).mode, host.file(path).user) for path in files}

    def daemon():
        """supervisord's settings the role keeps, its config's mode, the app user's shell, the socket group,
        supervisor at boot and now."""
        return {
            "minfds": host.run(f"grep -E '^minfds' {conf}").stdout.strip(),
            "inet_http_server": host.run(f"grep -c '^\\[inet_http_server\\]' {conf}").stdout.strip(),
            "mode": oct(host.file(conf).mode),
            "shell": host.run(f"getent passwd {user}").stdout.strip().split(":")[-1],
            "socket_group": host.run(f"getent group {socket_group}").rc == 0,
            "enabled": host.run("systemctl is-enabled supervisor").stdout.strip(),
            "active": host.run("systemctl is-active supervisor").stdout.strip(),
        }

    before, before_daemon = state(), daemon()
    assert before_daemon["minfds"] and before_daemon["minfds"] != "minfds=1024", before_daemon
    assert before_daemon == {**before_daemon, "inet_http_server": "0", "mode": "0o644", "shell": "/usr/sbin/nologin",
                             "socket_group": True, "enabled": "enabled", "active": "active"}, before_daemon
    edit = host.run(f"echo 'WSFLEET_LOG_LEVEL=DEBUG' >> {env} && chmod 0777 {launcher} && chown nobody {program}"
                    f" && sed -i 's/^minfds.*/minfds=1024/' {conf} && printf '[inet_http_server]\\nport=127.0.0.1:9001\\n' >> {conf}"
                    f" && chmod 0600 {conf} && usermod -s /bin/bash {user} && groupdel {socket_group}"
                    " && systemctl disable --now supervisor")
    assert edit.rc == 0, edit.stderr
    drifted, drifted_daemon = state(), daemon()
    assert all(drifted[path] != before[path] for path in files), drifted
    assert drifted_daemon == {"minfds": "minfds=1024", "inet_http_server": "1", "mode": "0o600", "shell": "/bin/bash",
                              "socket_group": False, "enabled": "disabled", "active": "inactive"}, drifted_daemon
    repaired = converge_again(host, RESOURCES / "converge_app.yml")
    assert repaired.returncode == 0, repaired.stdout[-4000:] + repaired.stderr[-2000:]
    assert state() == before and daemon() == before_daemon, (state(), daemon())
    assert changed_count(repaired) >= 7, repaired.stdout[-4000:]
    # A process of the program and the metrics exporter stopped by hand, supervisord running: the
    # look finds them stopped, and the next run starts them (it asks supervisord only then).
    metrics, process = "wsfleet-echo-metrics", f"{cfg['name']}:{cfg['name']}_{cfg['numprocs'] - 1:02d}"
    assert host.run(f"supervisorctl status {metrics}").stdout.split()[1:2] == ["RUNNING"], "the scenario must run the metrics exporter"
    stop = host.run(f"supervisorctl stop {process} {metrics}")
    assert stop.rc == 0 and statuses(host, cfg)[process.split(":")[1]] == "STOPPED", stop.stdout + stop.stderr
    started = converge_again(host, RESOURCES / "converge_app.yml")
    assert started.returncode == 0 and changed_count(started) >= 2, started.stdout[-4000:] + started.stderr[-2000:]
    assert host.run(f"supervisorctl status {metrics}").stdout.split()[1:2] == ["RUNNING"], service_log(host)
    again = converge_again(host, RESOURCES / "converge_app.yml")
    assert again.returncode == 0 and changed_count(again) == 0, again.stdout[-4000:]
    # With everything running, the look says so, and supervisord is not asked to start anything: the
    # include of the starts and waits (supervisord's tasks/start.yml) is skipped whole.
    include = "Start what is not running, remove what no longer runs, wait until it listens"
    assert task_outcome(again, f"wsfleet.fleet.supervisord : {include}") == "skipping", again.stdout[-4000:]
    for task in ("Start every process of the program", "Start the metrics exporter"):
        assert task_outcome(again, f"wsfleet.fleet.supervisord : {task}") == "not run", again.stdout[-4000:]
    assert set(statuses(host, cfg).values()) == {"RUNNING"}, service_log(host)
    for target in targets(cfg):
        assert probe("echo", target, "repaired")["replies"][0] == f"{cfg['reply_prefix']}repaired"


@pytest.mark.once("scale_down")
def test_zz_lowering_numprocs_leaves_exactly_that_many(host, cfg, probe):
    """Converge again with one process fewer (the real playbook), then count processes and sockets (a
    socket left by a process killed long ago is removed too)."""
    if cfg["numprocs"] < 2:
        pytest.fail("the scenario must run at least 2 processes to test scale-down")
    fewer = cfg["numprocs"] - 1
    if cfg["listen"] == "unix":
        # A socket no process of the program serves: left by a process killed long ago (nothing
        # removes a socket file then). The run must remove it with the one it scales down.
        stale = f"{cfg['socket_dir']}/{cfg['name']}_{cfg['numprocs'] + 3:02d}.sock"
        plant = host.run(f"python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"{stale}\")' && test -S {stale}")
        assert plant.rc == 0, plant.stderr
    result = converge_again(host, RESOURCES / "converge_app.yml", f"supervisord_numprocs={fewer}")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    st = statuses(host, cfg)
    assert sorted(st) == [f"{cfg['name']}_{i:02d}" for i in range(fewer)], service_log(host)
    assert set(st.values()) == {"RUNNING"}
    if cfg["listen"] == "unix":
        assert sorted(host.run(f"ls {cfg['socket_dir']}").stdout.split()) == sorted(Path(t).name for t in targets(cfg, fewer))
    else:
        assert not host.socket(f"tcp://{targets(cfg)[-1]}").is_listening
    for target in targets(cfg, fewer):
        assert probe("echo", target, "after")["replies"][0] == f"{cfg['reply_prefix']}after"
