"""A run limited to the load balancers finds what the app hosts published in an earlier run, in a
fact cache; without one it stops naming the app host. Real ansible-playbook runs, local connection
(two inventory names for this machine), nothing written outside the test's directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

from local_play import ANSIBLE_PLAYBOOK, ansible_env

ROOT = Path(__file__).resolve().parent.parent

PUBLISH = """
- name: The app hosts publish, as site.yml's checks do
  hosts: app
  gather_facts: false
  tasks:
    - ansible.builtin.include_role: {name: wsfleet.fleet.echo_app, tasks_from: publish.yml}
    - ansible.builtin.include_role: {name: wsfleet.fleet.supervisord, tasks_from: publish.yml}
"""

SERVERS = """
- name: The load balancer's servers and idle bound, from what the app hosts published
  hosts: lb
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: >-
          servers={{ groups['app'] | wsfleet.fleet.backend_endpoints(hostvars, inventory_hostname)
                     | map(attribute='hostport') | join(',') }}
          silence={{ groups['app'] | wsfleet.fleet.app_silence(hostvars) }}
"""


def playbook(tmp_path: Path, name: str, text: str, *args: str, cache: bool = True) -> subprocess.CompletedProcess:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  vars: {ansible_connection: local}\n  children:\n"
        "    lb: {hosts: {lb1: }}\n"
        "    app: {hosts: {app1: {ansible_host: 192.0.2.11}}, vars: {supervisord_listen: tcp, supervisord_bind_address: 0.0.0.0}}\n")
    (tmp_path / name).write_text(text)
    env = ansible_env()
    if cache:
        env.update(ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "hosts.yml"), str(tmp_path / name), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_limited_run_reads_the_published_processes_from_the_fact_cache(tmp_path: Path) -> None:
    first = playbook(tmp_path, "publish.yml", PUBLISH, "-e", "supervisord_numprocs=3", "-e", "echo_app_ping_interval=5")
    assert first.returncode == 0, first.stdout[-3000:]
    limited = playbook(tmp_path, "servers.yml", SERVERS, "--limit", "lb1")
    assert limited.returncode == 0, limited.stdout[-3000:]
    assert "servers=192.0.2.11:8000,192.0.2.11:8001,192.0.2.11:8002" in limited.stdout, limited.stdout[-3000:]
    assert "silence=30" in limited.stdout  # 2 x 5 + 20: the app host's settings of the first run


def test_without_a_fact_cache_the_limited_run_names_the_app_host(tmp_path: Path) -> None:
    result = playbook(tmp_path, "servers.yml", SERVERS, "--limit", "lb1", cache=False)
    assert result.returncode != 0
    assert "'app1' has not published its processes" in " ".join((result.stdout + result.stderr).split())
