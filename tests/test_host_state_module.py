"""wsfleet.fleet.host_state, the one look at a host the roles' checks make: real ansible-playbook runs
on this machine (local connection), its answers compared with the modules and commands it replaces."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_play import run_play



def run(tmp_path: Path, options: dict, *args: str, before: str = "") -> tuple[subprocess.CompletedProcess, dict]:
    """host_state with the given options (after the tasks `before`); returns the run, its result and the play's facts."""
    tasks = before + "    - wsfleet.fleet.host_state: " + json.dumps(options) + "\n      register: out\n"
    return run_play(tmp_path, tasks, '{"out": out, "facts": ansible_facts}', *args)


def test_accounts_are_what_ansible_builtin_getent_reads(tmp_path: Path) -> None:
    before = "    - ansible.builtin.getent: {database: '{{ item }}'}\n      loop: [passwd, group]\n"
    proc, got = run(tmp_path, {"accounts": True}, before=before)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert got["out"]["passwd"] == got["facts"]["getent_passwd"] and "root" in got["out"]["passwd"]
    assert got["out"]["group"] == got["facts"]["getent_group"] and got["out"]["group"]["root"][1] == "0"
    assert got["out"]["changed"] is False


def test_paths_checksums_and_reads(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / ".hidden").write_text("h")
    (tree / "sub").mkdir()
    wheel = tree / "a-1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel bytes\n" * 1000)
    wheel.chmod(0o640)
    (tree / "link").symlink_to(wheel)
    os.chmod(tree, 0o2750)
    missing = tmp_path / "missing"
    options = {"paths": [str(tree), str(wheel), str(tree / "link"), str(missing)], "checksums": [str(tree), str(missing)],
               "read": [str(wheel), str(missing)], "globs": [f"{tmp_path}/*/*.whl", f"{missing}/*"]}
    for args in ((), ("--check",)):
        proc, got = run(tmp_path, options, *args)
        assert proc.returncode == 0, proc.stdout[-2000:]
        paths = got["out"]["paths"]
        assert paths[str(tree)]["isdir"] and paths[str(tree)]["mode"] == "2750"
        assert paths[str(tree)]["entries"] == [".hidden", "a-1.0-py3-none-any.whl", "link", "sub"]
        assert paths[str(wheel)]["isreg"] and paths[str(wheel)]["mode"] == "0640"
        assert paths[str(wheel)]["uid"] == os.getuid() and paths[str(wheel)]["pw_name"] == pwd.getpwuid(os.getuid()).pw_name
        assert paths[str(tree / "link")]["islnk"] and not paths[str(tree / "link")]["isreg"]
        assert paths[str(missing)] == {"exists": False, "isdir": False, "isreg": False, "islnk": False}
        # Regular files only: the link and the directories are not checksummed.
        assert got["out"]["checksums"][str(tree)] == {
            ".hidden": {"checksum": hashlib.sha1(b"h").hexdigest(), "mode": "%04o" % ((tree / ".hidden").stat().st_mode & 0o7777),
                        "pw_name": paths[str(wheel)]["pw_name"], "gr_name": paths[str(wheel)]["gr_name"]},
            wheel.name: {"checksum": hashlib.sha1(wheel.read_bytes()).hexdigest(), "mode": "0640",
                         "pw_name": paths[str(wheel)]["pw_name"], "gr_name": paths[str(wheel)]["gr_name"]},
        }
        assert got["out"]["checksums"][str(missing)] == {}
        assert got["out"]["read"] == {str(wheel): wheel.read_text(), str(missing): ""}
        assert got["out"]["globs"] == {f"{tmp_path}/*/*.whl": [str(wheel)], f"{missing}/*": []}


def test_python_open_files_port_services(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    taken = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free = closed.getsockname()[1]  # bound, not listening: a connection is refused
    try:
        for port, expected in ((taken, True), (free, False)):
            proc, got = run(tmp_path, {"python": sys.executable, "open_files": 256, "services": ["wsfleet-no-such-service"],
                                       "port": {"host": "127.0.0.1", "port": port}})
            assert proc.returncode == 0, proc.stdout[-2000:]
            out = got["out"]
            assert out["port_taken"] is expected
            assert out["python"]["python"] == "%d.%d" % sys.version_info[:2]
            assert out["python"]["machine"] == os.uname().machine
            assert out["open_files"]["ok"] is True and out["open_files"]["wanted"] == 256
            assert out["services"] == {"wsfleet-no-such-service": "missing"}
            assert out["enabled"] == {"wsfleet-no-such-service": False}
    finally:
        listener.close()
        closed.close()
    # Above fs.nr_open no process gets it, root or not: refused, with the hard limit named.
    nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    proc, got = run(tmp_path, {"open_files": nr_open + 1})
    assert proc.returncode == 0 and got["out"]["open_files"]["ok"] is False, proc.stdout[-2000:]
    assert str(got["out"]["open_files"]["hard"]) == subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()


def test_an_interpreter_that_does_not_run_fails_naming_it(tmp_path: Path) -> None:
    proc, _ = run(tmp_path, {"python": str(tmp_path / "no-python")})
    assert proc.returncode != 0 and "no-python" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="dpkg-query: a Debian controller")
def test_packages_are_dpkg_s_status(tmp_path: Path) -> None:
    proc, got = run(tmp_path, {"packages": ["dpkg", "wsfleet-no-such-package"]})
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert got["out"]["packages"] == {"dpkg": "installed", "wsfleet-no-such-package": "unknown"}


def test_a_file_given_as_a_directory_fails_naming_it(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("not a directory")
    proc, _ = run(tmp_path, {"checksums": [str(plain)]})
    assert proc.returncode != 0 and f"{plain} is not a directory" in proc.stdout, proc.stdout[-2000:]


def test_a_host_without_dpkg_fails_saying_what_the_roles_need(tmp_path: Path) -> None:
    # The module finds dpkg-query on PATH (and the sbin directories): a PATH without it is a host without dpkg.
    tasks = ("    - wsfleet.fleet.host_state: {packages: [dpkg]}\n      register: out\n"
             "      environment: {PATH: " + str(tmp_path) + "}\n")
    proc, _ = run_play(tmp_path, tasks, "out")
    assert proc.returncode != 0 and "dpkg-query is not on this host" in proc.stdout, proc.stdout[-2000:]


def test_supervisor_processes_are_what_supervisorctl_shows(tmp_path: Path) -> None:
    """A real supervisord (the supervisor package, in the project's virtualenv), started here as this
    user on a socket of its own: its processes' states as its own supervisorctl prints them. A config
    without a socket, or a socket nobody answers on, gives none."""
    sock, conf = tmp_path / "supervisor.sock", tmp_path / "supervisord.conf"
    conf.write_text(
        f"[unix_http_server]\nfile={sock}   ; the control socket\n"
        f"[supervisord]\nlogfile={tmp_path}/supervisord.log\npidfile={tmp_path}/supervisord.pid\nnodaemon=true\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        f"[supervisorctl]\nserverurl=unix://{sock}\n"
        "[program:sleeper]\ncommand=sleep 600\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)02d\n"
        "[program:alone]\ncommand=sleep 600\nautostart=false\n"
    )
    bin_dir = Path(sys.executable).parent
    daemon = subprocess.Popen([bin_dir / "supervisord", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ctl = [bin_dir / "supervisorctl", "-c", conf, "status"]
        for _ in range(100):
            shown = subprocess.run(ctl, capture_output=True, text=True, timeout=30).stdout.splitlines()
            if sum("RUNNING" in line for line in shown) == 2:
                break
            time.sleep(0.1)
        expected = {line.split()[0]: line.split()[1] for line in shown}
        assert expected == {"alone": "STOPPED", "sleeper:sleeper_00": "RUNNING", "sleeper:sleeper_01": "RUNNING"}, shown
        proc, got = run(tmp_path, {"supervisor": str(conf)})
        assert proc.returncode == 0, proc.stdout[-2000:]
        assert got["out"]["processes"] == expected
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    no_socket = tmp_path / "none.conf"
    no_socket.write_text("[supervisord]\n")
    for config in (no_socket, conf):  # the second: its socket is there no more, or nobody answers on it
        proc, got = run(tmp_path, {"supervisor": str(config)})
        assert proc.returncode == 0 and got["out"]["processes"] == {}, proc.stdout[-2000:]
