#!/usr/bin/env python3
"""What keepalive pings cost the echo app: memory per idle connection and CPU per ping, side by side.

Starts the real server (python -m wsfleet_echo) on a Unix socket once per side, opens N idle
connections with the real websockets client (which answers pings by itself and sends none here),
waits until every connection has been pinged, then holds them H seconds with pings every I seconds:
  * KiB per connection: server RSS growth over the N connections;
  * CPU: the server's user+system CPU time during the hold, as a share of one core, and over the
    pings sent (N x H / I) in microseconds per ping; the no-pings side shows the idle floor;
  * open at the end: connections still open (a ping timeout would close some).
Sides: this checkout with pings off, this checkout with pings on, and with --baseline REV the app
of a git revision with pings on (a throw-away worktree). Sides run interleaved, R rounds, in one run.

    python roles/echo_app/files/app/bench/keepalive.py [--conns 3000] [--interval 1] [--hold 20] [--rounds 2] [--baseline REV] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from compression import report, rss_kib, run, start
from websockets.asyncio.client import unix_connect
from websockets.protocol import State

REPO = Path(__file__).resolve().parents[2]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def measure(path: str, pid: int, conns: int, interval: float | None, hold: float) -> dict[str, float]:
    before = rss_kib(pid)
    clients = []
    try:
        for _ in range(conns):
            clients.append(await unix_connect(path, "ws://localhost/", open_timeout=10, ping_interval=None))
        await asyncio.sleep(1.5 * (interval or 1))  # every connection pinged at least once
        kib = (rss_kib(pid) - before) / conns
        cpu = cpu_seconds(pid)
        await asyncio.sleep(hold)
        cpu = cpu_seconds(pid) - cpu
        return {
            "kib_per_conn": kib,
            "cpu_pct_of_core": cpu / hold * 100,
            "cpu_us_per_ping": cpu / (conns * hold / interval) * 1e6 if interval else 0.0,
            "open_at_end": sum(ws.state is State.OPEN for ws in clients),
        }
    finally:
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=3000)
    parser.add_argument("--interval", type=float, default=1.0, help="WSFLEET_PING_INTERVAL and _TIMEOUT of the pinging sides")
    parser.add_argument("--hold", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", metavar="REV", help="also run the app of this git revision, pings on")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    pings = {"WSFLEET_PING_INTERVAL": str(args.interval), "WSFLEET_PING_TIMEOUT": str(args.interval)}
    sides: dict[str, dict[str, str]] = {"no pings": {}, "pings": dict(pings)}  # start() turns pings off by default
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline:
            worktree = f"{tmp}/baseline"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", worktree, args.baseline], check=True, capture_output=True)
            sides[f"pings at {args.baseline}"] = {**pings, "PYTHONPATH": f"{worktree}/roles/echo_app/files/app/src"}
        try:
            results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
            for round_no in range(args.rounds):
                for number, (name, env) in enumerate(sides.items()):
                    path = f"{tmp}/side{number}-{round_no}.sock"
                    proc = start(path, {"WSFLEET_LOG_LEVEL": "WARNING", **env})
                    try:
                        interval = args.interval if env else None
                        results[name].append(run(measure(path, proc.pid, args.conns, interval, args.hold)))
                    finally:
                        proc.terminate()
                        proc.wait(timeout=60)
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", worktree], check=False)
    summary = {
        name: {key: round(statistics.median(r[key] for r in rounds), 2) for key in rounds[0]}
        for name, rounds in results.items()
    }
    report(
        args,
        summary,
        f"{args.conns} idle conns, pings every {args.interval:g} s, {args.hold:g} s hold, {args.rounds} rounds",
        [("KiB/conn", "kib_per_conn", ".2f"), ("CPU % core", "cpu_pct_of_core", ".1f"), ("CPU us/ping", "cpu_us_per_ping", ".1f"), ("open at end", "open_at_end", ".0f")],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
