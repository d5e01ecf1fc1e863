"""wsfleet.fleet.preload: the plugins a task's worker uses are loaded in ansible-playbook's own
process, so the worker forked for each task starts with them; nothing else changes.

Real ansible-playbook runs on this machine (local connection), each with a configuration of its own,
the callback enabled or not. A test action plugin reports which plugin modules its worker holds
before it templates anything itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

WORKER_STATE = '''
import sys
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        prefixes = ("ansible.plugins.filter.", "ansible.plugins.test.", "ansible.plugins.lookup.",
                    "ansible_collections.wsfleet.fleet.plugins.")
        return {"changed": False, "modules": sorted(m for m in sys.modules if m.startswith(prefixes))}
'''

BROKEN_FILTER = '''
class FilterModule:
    def filters(self):
        raise RuntimeError("this filter plugin is broken")
'''


def run(tmp_path: Path, preload: bool, tasks: str) -> subprocess.CompletedProcess:
    """ansible-playbook of `tasks` on localhost, with only the callback (or none) enabled."""
    (tmp_path / "action_plugins").mkdir(exist_ok=True)
    (tmp_path / "action_plugins" / "worker_state.py").write_text(WORKER_STATE)
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n" + ("callbacks_enabled = wsfleet.fleet.preload\n" if preload else ""))
    play = tmp_path / "play.yml"
    play.write_text("- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n" + tasks)
    env = {**os.environ, "ANSIBLE_CONFIG": str(config), "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
           "ANSIBLE_ACTION_PLUGINS": str(tmp_path / "action_plugins"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_PYTHON_INTERPRETER": os.path.abspath(sys.executable)}
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", str(play)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def worker_modules(tmp_path: Path, preload: bool) -> list[str]:
    out = tmp_path / "state.json"
    proc = run(tmp_path, preload, "    - worker_state:\n      register: state\n"
               "    - ansible.builtin.copy: {content: '{{ state.modules | to_json }}', dest: " + str(out) + "}\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def test_a_worker_starts_with_the_plugins_loaded_only_with_the_callback(tmp_path) -> None:
    without, with_preload = worker_modules(tmp_path, False), worker_modules(tmp_path, True)
    assert not [m for m in without if m.startswith(("ansible.plugins.filter.core", "ansible_collections.wsfleet.fleet.plugins.filter"))]
    own = [f"ansible_collections.wsfleet.fleet.plugins.{kind}.{path.stem}"
           for kind in ("filter", "lookup") for path in sorted((ROOT / "plugins" / kind).glob("[!_]*.py"))]
    assert set(own) <= set(with_preload), sorted(set(own) - set(with_preload))
    for builtin in ("ansible.plugins.filter.core", "ansible.plugins.filter.mathstuff", "ansible.plugins.test.core",
                    "ansible.plugins.lookup.template", "ansible.plugins.lookup.file"):
        assert any(m == builtin or m.startswith(builtin + "_") for m in with_preload), (builtin, with_preload)


@pytest.mark.parametrize("preload", [False, True])
def test_results_and_output_are_those_of_a_run_without_it(tmp_path, preload) -> None:
    """The same templates give the same values (a built-in filter, a test, a lookup, a filter of the
    collection); the callback prints nothing and warns of nothing."""
    out = tmp_path / "values.json"
    proc = run(tmp_path, preload, "    - ansible.builtin.copy:\n        dest: " + str(out) + "\n        content: >-\n"
               "          {{ {'joined': ['a', 'b'] | join(','), 'tested': '1.2' is version('1.10', '<'),"
               " 'looked_up': lookup('ansible.builtin.env', 'HOME'),"
               " 'own': '/opt/wsfleet-echo' | wsfleet.fleet.dedicated_path('echo_app_root')} | to_json }}\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(out.read_text()) == {"joined": "a,b", "tested": True, "looked_up": os.environ["HOME"], "own": ""}
    assert "WARNING" not in proc.stdout + proc.stderr and "preload" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("preload", [False, True])
def test_a_broken_filter_plugin_is_reported_by_the_task_that_uses_it(tmp_path, preload) -> None:
    """A filter plugin that fails to load does not stop the run at the play's start: the task that
    uses it fails, as without the callback, and the task before it ran."""
    (tmp_path / "filter_plugins").mkdir()
    (tmp_path / "filter_plugins" / "broken.py").write_text(BROKEN_FILTER)
    marker = tmp_path / "before"
    proc = run(tmp_path, preload, "    - ansible.builtin.file: {path: " + str(marker) + ", state: touch}\n"
               "    - ansible.builtin.debug: {msg: \"{{ 'x' | broken_filter }}\"}\n")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert marker.exists()
    assert "broken_filter" in proc.stdout + proc.stderr
