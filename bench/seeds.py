"""The seeds' reference setup, taken from the seeds' own text at bench time.

The two guides (rendered text of websockets' "Deploy behind nginx" and "Deploy behind HAProxy")
hold the files the reference setup runs: ``app.py``, ``supervisord.conf``, ``nginx.conf`` and
``haproxy.cfg``. This module cuts those blocks out of the text between fixed anchors, checks each
block against the SHA-256 it had when the bench was written (any change to the text fails loudly,
naming the block), then applies the few changes that running them side by side needs. Every change
is an exact substitution that must match exactly once, and carries its reason; the list is written
into the results and into docs/benchmarks.md.

The HAProxy guide's text is lossy (the rendering dropped some lines: the ``defaults`` header,
``[supervisord]``/``[program:...]``, the ``echo,``/``host=...``/``):`` lines of the serve call).
Those files are rebuilt from the nginx guide's complete ones and checked against the lossy text:
every non-blank line of the lossy block must appear, in order, as the start of a line of the
rebuilt file.

Run it alone to print the files and the changes: ``python bench/seeds.py [--write DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

SEEDS_DIR = Path("/work/shared/seeds")
NGINX_GUIDE = "001_53a665ec9d0493c4.txt"
HAPROXY_GUIDE = "004_e8399ae1037463fa.txt"

#: One process count for every path of the bench (ours: supervisord_numprocs).
NUMPROCS = 2
#: Ports in the seeds' container: the nginx guide keeps 8080, the HAProxy guide moves to 8090.
SEEDS_NGINX_PORT = 8080
SEEDS_HAPROXY_PORT = 8090


class SeedTextChanged(Exception):
    """The seeds' text no longer holds what the bench was written against."""


@dataclass(frozen=True)
class Block:
    """A code block of a guide: the text between two anchors, and its expected SHA-256."""

    guide: str
    name: str
    start: str
    end: str
    sha256: str


@dataclass(frozen=True)
class Change:
    """One exact substitution applied to an extracted file, and why."""

    setup: str  # "nginx" or "haproxy": which guide's directory the file lands in
    file: str
    old: str
    new: str
    reason: str


BLOCKS: tuple[Block, ...] = (
    Block(NGINX_GUIDE, "app.py", "Save this app to app.py:\n\n", "\n\nWe\u2019d like to nginx",
          "175373e671c61145700b2933e4a1b1553aebf1c575533b4841e7d97fce39a6b7"),
    Block(NGINX_GUIDE, "supervisord.conf", "Save this configuration to supervisord.conf:\n\n",
          "\n\nThis configuration runs four instances",
          "87bdb9714a1d2fb01c134e8f230641720ec13dba21184173dd8335b2f2733ae7"),
    Block(NGINX_GUIDE, "nginx.conf",
          "Here\u2019s a simple nginx configuration to load balance connections across four processes:\n\n",
          "\n\nWe set daemon off",
          "6fe17bda435d45ee02a909891ac98dfd2cc706592125e0902ee2c72817afed1c"),
    Block(HAPROXY_GUIDE, "app.py (lossy)", "Save this app to\n\n", "\n\nEach server process listens",
          "2c10a86578744778df478d2b2f6e2caf20637bb1ed797c8edf5696680b33d8da"),
    Block(HAPROXY_GUIDE, "supervisord.conf (lossy)", "Save this configuration to supervisord.conf:\n\n",
          "\n\nThis configuration runs four instances",
          "51f9b4e71c1d55018e12153421b7dfb4c039a6bdda97377b07bfaaaed9efc0f0"),
    Block(HAPROXY_GUIDE, "haproxy.cfg (lossy)",
          "Here\u2019s a simple HAProxy configuration to load balance connections across four processes:\n\n",
          "\n\nIn the backend configuration",
          "c83f0f3acfdb3205c6b0ea44cfc481bcf64e135e57bae7fd63b827fa96158ff9"),
)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def extract(block: Block, seeds_dir: Path = SEEDS_DIR) -> str:
    """The block's text (with a final newline); SeedTextChanged when an anchor or the hash moved."""
    path = seeds_dir / block.guide
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedTextChanged(f"{path}: cannot read the seed ({exc})") from exc
    if text.count(block.start) != 1:
        raise SeedTextChanged(
            f"{path}: the anchor before {block.name} ({block.start.strip()!r}) appears "
            f"{text.count(block.start)} times, expected once: the seed text changed"
        )
    body = text.split(block.start, 1)[1]
    if block.end not in body:
        raise SeedTextChanged(f"{path}: the anchor after {block.name} ({block.end.strip()!r}) is gone: the seed text changed")
    body = body.split(block.end, 1)[0].strip("\n") + "\n"
    digest = _sha256(body)
    if digest != block.sha256:
        raise SeedTextChanged(
            f"{path}: {block.name} changed (sha256 {digest}, expected {block.sha256}); "
            f"the bench was written against the old text: review bench/seeds.py.\n--- block now ---\n{body}"
        )
    return body


def _check_lossy(lossy: str, full: str, what: str) -> None:
    """Every non-blank line of the lossy rendering starts a line of the full file, in order."""
    full_lines = [line.rstrip() for line in full.splitlines() if line.strip()]
    i = 0
    for line in (line.rstrip() for line in lossy.splitlines() if line.strip()):
        while i < len(full_lines) and not full_lines[i].startswith(line):
            i += 1
        if i == len(full_lines):
            raise SeedTextChanged(f"{what}: the guide's line {line!r} has no counterpart in the rebuilt file")
        i += 1


def _apply(files: dict[tuple[str, str], str], change: Change) -> None:
    key = (change.setup, change.file)
    text = files[key]
    count = text.count(change.old)
    if count != 1:
        raise SeedTextChanged(f"{change.setup}/{change.file}: {change.old!r} occurs {count} times, expected once")
    files[key] = text.replace(change.old, change.new)


# The HAProxy guide's app: the nginx guide's app with the serve call of websockets' HAProxy example
# (TCP on localhost, port 8000 + the process number). The lossy text keeps `websockets.serve(` and
# the `port=` line; _check_lossy verifies the rest of it against the result.
_UNIX_SERVE = """    async with websockets.unix_serve(
        echo,
        path=f"{os.environ['SUPERVISOR_PROCESS_NAME']}.sock",
    ):
"""
_TCP_SERVE = """    async with websockets.serve(
        echo,
        host="localhost",
        port=8000 + int(os.environ["SUPERVISOR_PROCESS_NAME"][-2:]),
    ):
"""


def changes() -> list[Change]:
    """Every change made to the seeds' files, in the order applied."""
    out: list[Change] = []
    for setup in ("nginx", "haproxy"):
        out.append(Change(setup, "supervisord.conf", "numprocs = 4", f"numprocs = {NUMPROCS}",
                          f"one process count for every path of the bench ({NUMPROCS}, = supervisord_numprocs of ours)"))
    for n in range(NUMPROCS, 4):
        out.append(Change("nginx", "nginx.conf", f"        server unix:websockets-test_{n:02d}.sock;\n", "",
                          f"{NUMPROCS} processes: no server for process {n:02d}"))
    out += [
        Change("haproxy", "app.py", _UNIX_SERVE, _TCP_SERVE,
               "the HAProxy guide's app listens on TCP localhost:8000+N; its rendered text lost the lines "
               "`echo,`, `host=\"localhost\",`, `):` and `asyncio.run(main())`, so it is rebuilt from the nginx "
               "guide's complete app.py with the serve call of websockets' HAProxy example (checked against "
               "every line the text kept)"),
        Change("haproxy", "haproxy.cfg", "    mode http\n", "defaults\n    mode http\n",
               "the rendered text lost the `defaults` section header (HAProxy rejects `mode` outside a section)"),
        Change("haproxy", "haproxy.cfg", "    bind localhost:8080\n", f"    bind localhost:{SEEDS_HAPROXY_PORT}\n",
               f"the nginx guide's nginx holds localhost:8080 in the same container; HAProxy moves to "
               f"{SEEDS_HAPROXY_PORT} (as ours does)"),
    ]
    for n in range(NUMPROCS, 4):
        out.append(Change("haproxy", "haproxy.cfg", f"    server websockets-test_{n:02d} localhost:{8000 + n}\n", "",
                          f"{NUMPROCS} processes: no server for process {n:02d}"))
    return out


def build(seeds_dir: Path = SEEDS_DIR) -> tuple[dict[str, dict[str, str]], list[Change]]:
    """The files of each setup ({"nginx": {name: text}, "haproxy": {...}}) and the changes made."""
    got = {b.name: extract(b, seeds_dir) for b in BLOCKS}
    nginx_conf = got["nginx.conf"]
    if "events {\n}" not in nginx_conf or "daemon off;" not in nginx_conf:
        raise SeedTextChanged("nginx.conf: expected `daemon off;` and an empty `events {}` block")
    files: dict[tuple[str, str], str] = {
        ("nginx", "app.py"): got["app.py"],
        ("nginx", "supervisord.conf"): got["supervisord.conf"],
        ("nginx", "nginx.conf"): nginx_conf,
        # Rebuilt from the nginx guide's complete files; checked against the lossy text below.
        ("haproxy", "app.py"): got["app.py"],
        ("haproxy", "supervisord.conf"): got["supervisord.conf"],
        ("haproxy", "haproxy.cfg"): got["haproxy.cfg (lossy)"],
    }
    applied = changes()
    for change in applied:
        _apply(files, change)
    # The HAProxy guide's files, before our numprocs/port changes, must agree with its lossy text.
    _check_lossy(got["supervisord.conf (lossy)"], got["supervisord.conf"], "HAProxy guide supervisord.conf")
    rebuilt_app = got["app.py"].replace(_UNIX_SERVE, _TCP_SERVE)
    _check_lossy(got["app.py (lossy)"], rebuilt_app, "HAProxy guide app.py")
    out: dict[str, dict[str, str]] = {"nginx": {}, "haproxy": {}}
    for (setup, name), text in files.items():
        out[setup][name] = text
    return out, applied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds-dir", type=Path, default=SEEDS_DIR)
    parser.add_argument("--write", type=Path, help="write <DIR>/nginx/* and <DIR>/haproxy/*")
    parser.add_argument("--hashes", action="store_true", help="print each block's current SHA-256 (to review a changed seed)")
    args = parser.parse_args(argv)
    if args.hashes:
        for b in BLOCKS:
            text = (args.seeds_dir / b.guide).read_text(encoding="utf-8")
            body = text.split(b.start, 1)[1].split(b.end, 1)[0].strip("\n") + "\n"
            print(f"{_sha256(body)}  {b.guide} {b.name}")
        return 0
    try:
        files, applied = build(args.seeds_dir)
    except SeedTextChanged as exc:
        print(f"seeds: {exc}", file=sys.stderr)
        return 1
    if args.write:
        for setup, named in files.items():
            (args.write / setup).mkdir(parents=True, exist_ok=True)
            for name, text in named.items():
                (args.write / setup / name).write_text(text)
    for setup, named in files.items():
        for name, text in named.items():
            print(f"==> {setup}/{name}\n{text}")
    print(json.dumps([asdict(c) for c in applied], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
