#!/usr/bin/env python3
"""Blocks of task lines that two roles share: what `duplicates` cannot see, since it reads Python.

Reads every roles/*/tasks/*.yml and roles/*/handlers/*.yml, drops comments and blank lines, writes
each role's own name as ROLE (nginx_lb_port and haproxy_lb_port are the same line), and reports
every run of N or more lines (default 6) found in two roles. A task that only calls other tasks
(import_role, include_role, import_tasks, include_tasks: a call of the fleet role's shared tasks,
with the caller's own variables as parameters) is a call, not a copy, and is left out.

    python scripts/role-twins.py [--lines N]     exit 1 when any is found

tests/test_role_twins.py runs it.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = "wsfleet"  # the fleet role: the owner of what the roles share, not one of them
CALLS = re.compile(r"^  ansible\.builtin\.(import_role|include_role|import_tasks|include_tasks):")


def task_lines(path: Path, role_names: re.Pattern[str]) -> list[tuple[int, str]]:
    """The file's lines that count: (line number, text with role names as ROLE)."""
    out: list[tuple[int, str]] = []
    task: list[tuple[int, str]] = []

    def flush() -> None:
        if not any(CALLS.match(text) for _, text in task):
            out.extend(task)
        task.clear()

    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split(" #", 1)[0].rstrip()
        if not text.strip() or text.lstrip().startswith("#") or text == "---":
            continue
        if text.startswith("- "):
            flush()
        task.append((number, role_names.sub("ROLE", text)))
    flush()
    return out


def twins(root: Path, n: int) -> dict[str, list[tuple[str, int]]]:
    """Each shared run of n lines (as text) and where it starts, in two roles or more."""
    roles = sorted(p.name for p in (root / "roles").iterdir() if p.is_dir() and p.name != SHARED)
    role_names = re.compile("|".join(map(re.escape, sorted(roles, key=len, reverse=True))))
    where: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for path in sorted((root / "roles").glob("*/*/*.yml")):
        role, kind = path.parts[-3], path.parts[-2]
        if role == SHARED or kind not in ("tasks", "handlers"):
            continue
        lines = task_lines(path, role_names)
        for i in range(len(lines) - n + 1):
            where["\n".join(t for _, t in lines[i:i + n])].append((str(path.relative_to(root)), lines[i][0]))
    return {block: places for block, places in where.items() if len({p.split("/")[1] for p, _ in places}) > 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=6, help="shortest run reported (default 6)")
    args = parser.parse_args()
    found = twins(ROOT, args.lines)
    for block, places in sorted(found.items(), key=lambda item: item[1]):
        print(", ".join(f"{p}:{line}" for p, line in places))
        print("    " + block.replace("\n", "\n    "))
    print(f"{len(found)} runs of {args.lines} lines in two roles or more")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
