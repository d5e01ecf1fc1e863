"""Bad input fails with a message naming the variable, before anything on the host changes.

Each case runs the real role with ansible-playbook against this machine (local connection) and
expects the play to stop in its checks: a failed play whose recap shows no change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_role(tmp_path: Path, role: str, *extra: str) -> subprocess.CompletedProcess:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        f"- hosts: all\n  connection: local\n  gather_facts: true\n  gather_subset: [min, hardware]\n"
        f"  roles:\n    - role: wsfleet.fleet.{role}\n"
    )
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    lb: {hosts: {localhost: }}\n    app: {hosts: {localhost: }}\n")
    args = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    for value in extra:
        args += ["-e", value]
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_PYTHON_INTERPRETER": os.path.abspath(sys.executable)}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def fake_python(tmp_path: Path, python: str, machine: str) -> str:
    """A stand-in for the target's /usr/bin/python3 that reports another version or architecture."""
    script = tmp_path / "python3"
    script.write_text(f"#!/bin/sh\necho '{{\"python\": \"{python}\", \"machine\": \"{machine}\", \"glibc\": \"2.36\"}}'\n")
    script.chmod(0o755)
    return str(script)


def assert_stopped_without_change(result: subprocess.CompletedProcess, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output[-3000:]}"
    assert "changed=0" in output, output[-3000:]


def test_a_value_outside_the_choices_names_the_variable(tmp_path: Path) -> None:
    result = run_role(tmp_path, "echo_app", "echo_app_compression=gzip")
    assert_stopped_without_change(result, "echo_app_compression", "gzip", "deflate")


def test_a_python_too_old_for_the_pinned_websockets_is_refused(tmp_path: Path) -> None:
    result = run_role(tmp_path, "echo_app", f"__echo_app_python={fake_python(tmp_path, '3.9', 'x86_64')}")
    assert_stopped_without_change(result, "runs Python 3.9", "need CPython >= 3.11", "websockets==")


def test_a_platform_without_obtainable_wheels_fails_early(tmp_path: Path) -> None:
    cache = tmp_path / "wheels"
    result = run_role(
        tmp_path, "echo_app", f"__echo_app_python={fake_python(tmp_path, '3.11', 'riscv64')}", f"echo_app_wheel_cache={cache}"
    )
    assert_stopped_without_change(result, "could not obtain wheels for 3.11 on riscv64", "echo_app_pip_download_args")


@pytest.mark.parametrize(
    ("role", "extra", "needles"),
    [
        ("supervisord", "supervisord_numprocs=0", ["supervisord_numprocs 1..100"]),
        ("supervisord", "supervisord_listen=udp", ["supervisord_listen", "udp"]),
        ("supervisord", "supervisord_stopwaitsecs=5", ["supervisord_stopwaitsecs (5) must be greater than"]),
        ("nginx_lb", "nginx_lb_balance=fastest", ["nginx_lb_balance", "fastest"]),
        ("haproxy_lb", "haproxy_lb_timeout_tunnel=30", ["haproxy_lb_timeout_tunnel (30 s) above the app's ping interval"]),
        # Beyond Linux's default fs.nr_open (1048576 files per process): no host allows it unraised.
        ("nginx_lb", "wsfleet_target_connections=600000", ["nginx_lb_target_connections (600000", "needs 1201024 open files"]),
        ("haproxy_lb", "wsfleet_target_connections=600000", ["haproxy_lb_target_connections (600000", "needs 1201088 open files"]),
        ("supervisord", "supervisord_restart_mode=serial", ["supervisord_restart_mode", "serial", "rolling"]),
        ("supervisord", "supervisord_restart_pause=-1", ["supervisord_restart_pause >= 0 (got -1)"]),
        ("nginx_lb", "nginx_lb_client_header_timeout=0", ["nginx_lb_client_header_timeout", ">= 1"]),
        ("haproxy_lb", "haproxy_lb_timeout_http_request=0", ["haproxy_lb_timeout_http_request >= 1"]),
        # A value that ends up in the config file: no spaces or newlines (a newline would add a directive).
        ("nginx_lb", '{"nginx_lb_tls_ciphers": ["HIGH;\\n    include /etc/passwd"]}', ["nginx_lb_tls_ciphers must be a list of OpenSSL cipher names"]),
        ("haproxy_lb", '{"haproxy_lb_tls_ciphers": ["HIGH ALL"]}', ["haproxy_lb_tls_ciphers must be a list of OpenSSL cipher names"]),
        ("nginx_lb", '{"nginx_lb_default_site": true, "nginx_lb_port": 80}', ["nginx_lb_default_site only with nginx_lb_port other than 80"]),
        ("haproxy_lb", '{"haproxy_lb_stats_password": "two words"}', ["haproxy_lb_stats_password printable characters without spaces"]),
        ("supervisord", "supervisord_restart_signal=KILL", ["supervisord_restart_signal", "KILL", "USR1"]),
        ("haproxy_lb", '{"haproxy_lb_stats_user": "admin user"}', ["haproxy_lb_stats_user must be letters, digits"]),
        ("supervisord", "supervisord_connections_per_process=1100000", ["supervisord_connections_per_process (1100000)", "needs 1101024"]),
    ],
)
def test_bad_role_settings_fail_before_any_change(tmp_path: Path, role: str, extra: str, needles: list[str]) -> None:
    # supervisord's program user must exist (echo_app creates it): name one every machine has, so the
    # case reaches the check it is about wherever it runs.
    args = [extra, "echo_app_close_timeout=10", "supervisord_program_user=nobody"] if role == "supervisord" else [extra]
    if role in ("nginx_lb", "haproxy_lb"):
        args.append("supervisord_numprocs=2")
    result = run_role(tmp_path, role, *args)
    assert_stopped_without_change(result, *needles)
