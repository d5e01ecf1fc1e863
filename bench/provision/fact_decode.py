#!/usr/bin/env python3
"""What a fact cache costs the controller for the facts an app host publishes, as they were and as they are.

With a persistent fact cache (jsonfile, as the README advises), ansible-core 2.19 decodes a host's
cached facts again each time it reads the host's variables: about once or twice per task per host,
on the controller's main process (187 reads in a re-run of the one-host lb_nginx scenario). What a
value costs to decode depends on the tags Ansible keeps with it (its origin in a file, whether it is
trusted as a template), which a fact set from templated values keeps per value.

Runs, on localhost (connection local, no container), a play that publishes the two facts the way
roles/*/tasks/publish.yml did before (a mapping of templated values: every value keeps its tags) and
as they do now (`to_json | from_json`: plain data, one tag on the fact itself), each into a jsonfile
cache of its own, then decodes each cache file as ansible-core does, interleaved, and prints the
median milliseconds per decode and their ratio.

    python bench/provision/fact_decode.py [--rounds 5] [--number 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

from ansible._internal._json._profiles import _cache_persistence

ROOT = Path(__file__).resolve().parents[2]
# The published settings with values of the same kinds as the roles' defaults (strings, numbers).
PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    program: echo
    numprocs: 4
    listen: unix
    socket_dir: /run/wsfleet
    bind_address: 127.0.0.1
    port_base: 8000
    package: ""
    ping_interval: 20
    ping_timeout: 20
    settings:
      supervisord_program_name: "{{ program }}"
      supervisord_numprocs: "{{ numprocs }}"
      supervisord_listen: "{{ listen }}"
      supervisord_socket_dir: "{{ socket_dir }}"
      supervisord_bind_address: "{{ bind_address }}"
      supervisord_port_base: "{{ port_base }}"
    keepalive:
      package: "{{ package }}"
      ping_interval: "{{ ping_interval | float }}"
      ping_timeout: "{{ ping_timeout | float }}"
  tasks:
    - name: Publish
      ansible.builtin.set_fact:
        supervisord_endpoint_settings: %s
        echo_app_keepalive: %s
        cacheable: true
"""
FORMS = {
    "tagged (before)": ("{{ settings }}", "{{ keepalive }}"),
    "plain (now)": ("{{ settings | to_json | from_json }}", "{{ keepalive | to_json | from_json }}"),
}


def cache_text(directory: Path, settings: str, keepalive: str) -> str:
    """Run the play with a jsonfile cache in directory; return the cached payload (JSON text)."""
    playbook = directory / "publish.yml"
    playbook.write_text(PLAY % (json.dumps(settings), json.dumps(keepalive)))
    env = dict(os.environ, ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(directory / "facts"),
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_LOCALHOST_WARNING="false")
    subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook)], cwd=directory, env=env,
                   check=True, capture_output=True)
    (cached,) = (directory / "facts").iterdir()
    return json.loads(cached.read_text())["__payload__"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=300, help="decodes per round and form")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wsfleet-fact-decode-") as tmp:
        texts = {}
        for index, (name, (settings, keepalive)) in enumerate(FORMS.items()):
            directory = Path(tmp) / str(index)
            directory.mkdir()
            texts[name] = cache_text(directory, settings, keepalive)
    times: dict[str, list[float]] = {name: [] for name in texts}
    for _ in range(args.rounds):
        for name, text in texts.items():
            seconds = timeit.timeit(lambda text=text: json.loads(text, cls=_cache_persistence.Decoder), number=args.number)
            times[name].append(seconds / args.number * 1000)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, text in texts.items():
        print(f"{name:16} {len(text):5} bytes cached, {text.count('__ansible_type'):2} tags, "
              f"{medians[name]:.3f} ms per decode (median of {args.rounds} x {args.number})")
    before, now = medians.values()
    print(f"now / before: {now / before:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
