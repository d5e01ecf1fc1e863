#!/usr/bin/env python3
"""What one task costs Ansible here, whatever the role: the floor under an idempotent re-run.

Starts one systemd container (wsfleet-prov-floor) from wsfleet/debian-systemd:12, the way run.py
starts its fleet, and runs, over
community.docker.docker with this repository's ansible.cfg (pipelining on), three playbooks of
TASKS tasks each, interleaved, ROUNDS times:

  debug  ansible.builtin.debug         no remote work at all (the controller's own cost per task)
  raw    ansible.builtin.raw: 'true'   one docker exec, no Python on the target
  stat   ansible.builtin.stat          one module run: docker exec + Python + AnsiballZ (what nearly
                                       every task of a re-run is: stat, file, template's two, ...)

and prints the median seconds per task of each (wall time minus that of a 1-task playbook of the
same kind, divided by TASKS - 1), then removes the container.

    python bench/provision/floor.py [--tasks 20] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run as provision  # bench/provision/run.py: its docker helpers and container settings

ROOT = provision.ROOT
NAME = "wsfleet-prov-floor"
KINDS = {
    "debug": "ansible.builtin.debug: {msg: x}",
    "raw": "ansible.builtin.raw: 'true'",
    "stat": "ansible.builtin.stat: {path: /etc/passwd}",
}


def playbook(directory: Path, kind: str, tasks: int) -> Path:
    path = directory / f"{kind}-{tasks}.yml"
    body = "".join(f"    - {KINDS[kind]}\n" for _ in range(tasks))
    path.write_text(f"- hosts: all\n  gather_facts: false\n  tasks:\n{body}")
    return path


def run(book: Path, inventory: Path) -> float:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    started = time.monotonic()
    done = subprocess.run([str(Path(os.path.abspath(sys.executable)).parent / "ansible-playbook"), "-i", str(inventory),
                           str(book)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"floor: {book.name} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 2 <= args.tasks <= 200 or not 1 <= args.rounds <= 20:
        sys.exit("floor: --tasks must be 2-200 and --rounds 1-20")
    provision.require_image()
    provision.docker("rm", "-f", NAME, check=False)
    provision.start_systemd(NAME)
    try:
        provision.wait_booted([NAME])
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            inventory = directory / "hosts.yml"
            inventory.write_text(f"all:\n  hosts:\n    {NAME}:\n      ansible_connection: community.docker.docker\n")
            per_task: dict[str, list[float]] = {kind: [] for kind in KINDS}
            loads = []
            run(playbook(directory, "stat", 1), inventory)  # interpreter discovery, caches warm
            for number in range(args.rounds):
                order = list(KINDS)[number % 3:] + list(KINDS)[:number % 3]
                for kind in order:
                    loads.append(os.getloadavg()[0])
                    one = run(playbook(directory, kind, 1), inventory)
                    many = run(playbook(directory, kind, args.tasks), inventory)
                    per_task[kind].append((many - one) / (args.tasks - 1))
    finally:
        provision.docker("rm", "-f", NAME, check=False)
    result = {"tasks": args.tasks, "rounds": args.rounds, "load_1min": [min(loads), max(loads)],
              "seconds_per_task": {kind: round(statistics.median(v), 3) for kind, v in per_task.items()},
              "runs": {kind: [round(x, 3) for x in v] for kind, v in per_task.items()}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"seconds per task, median of {args.rounds} rounds of {args.tasks} tasks (load {min(loads):.1f}-{max(loads):.1f}):")
    for kind, seconds in result["seconds_per_task"].items():
        print(f"  {kind:6} {seconds:.3f}   {KINDS[kind]}")


if __name__ == "__main__":
    main()
