"""A play of the collection's own tasks, run by real ansible-playbook on this machine (local
connection): what the module tests (test_files_module.py, test_host_state_module.py) run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

# The names, paths and ports a test's run of the roles on this machine uses instead of the roles'
# defaults: this machine may hold a deployment (`make deploy`) with those defaults, whose socket
# directory, accounts and ports the checks would rightly refuse to take over. Nothing here exists
# on a machine the tests have not touched; the program runs as an account every machine has (echo_app
# would create echo_app_user, and a run that stops in its checks creates nothing).
SCRATCH = {
    "echo_app_user": "wsfleet-unit",
    "echo_app_group": "wsfleet-unit",
    "echo_app_root": "/opt/wsfleet-unit-test",
    "echo_app_config_dir": "/etc/wsfleet-unit-test",
    "echo_app_metrics_port": 19410,
    "supervisord_program_name": "echo_unit",
    "supervisord_program_user": "nobody",
    "supervisord_socket_dir": "/run/wsfleet-unit-test",
    "supervisord_socket_group": "wsfleet-unit-sock",
    "supervisord_port_base": 18000,
    "wsfleet_lb_port": 18080,
    "nginx_lb_stub_status_port": 18081,
    "nginx_lb_exporter_port": 19113,
    "haproxy_lb_stats_port": 18404,
}


def ansible_env(**more: str) -> dict[str, str]:
    """The environment of a test's ansible-playbook: the repository's ansible.cfg, no colour, and this
    Python as the interpreter on localhost (more: variables of the case, e.g. a fact cache)."""
    return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_PYTHON_INTERPRETER": os.path.abspath(sys.executable), **more}


def run_play(tmp_path: Path, tasks: str, result: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Runs `tasks` (YAML task lines, indented under the play's tasks:), then writes the Jinja
    expression `result` to a file; returns the run and that value ({} when the run failed)."""
    play, out = tmp_path / "play.yml", tmp_path / "result.json"
    play.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n" + tasks +
        "    - ansible.builtin.copy: {content: '{{ " + result + " | to_json }}', dest: " + str(out) + "}\n"
        "      check_mode: false\n"
    )
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", str(play), *args],
                          cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)
    value = json.loads(out.read_text()) if proc.returncode == 0 else {}
    out.unlink(missing_ok=True)
    return proc, value
