#!/usr/bin/env python3
"""Side-by-side measurement behind the echo app's defaults (compression off, uvloop on, metrics off).

Starts the real server (python -m wsfleet_echo) once per configuration on a Unix socket, then, with
the real websockets client (which offers permessage-deflate, like browsers):
  * memory: server RSS growth per idle connection, over N held connections;
  * throughput: echo round trips per second over C connections each sending 256-byte text messages
    back to back for S seconds (one client process on uvloop, sharing the machine's cores with the
    server: figures are ratios between configurations, not capacities).
Configurations run interleaved, R rounds, in one run, so the ratios survive a noisy machine.

    python roles/echo_app/files/app/bench/compression.py [--idle 1000] [--conns 50] [--seconds 5] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import unix_connect

CONFIGS = {
    "none+uvloop": {"WSFLEET_COMPRESSION": "none", "WSFLEET_UVLOOP": "true"},
    "deflate+uvloop": {"WSFLEET_COMPRESSION": "deflate", "WSFLEET_UVLOOP": "true"},
    "none+asyncio": {"WSFLEET_COMPRESSION": "none", "WSFLEET_UVLOOP": "false"},
    # The other configurations run without keepalive pings; this one with the app's default (20 s),
    # so the table shows what pinging costs each connection (bench/keepalive.py: in detail).
    "none+uvloop+pings": {"WSFLEET_COMPRESSION": "none", "WSFLEET_UVLOOP": "true", "WSFLEET_PING_INTERVAL": "20"},
    # Prometheus metrics on (wsfleet_echo.metrics): a multiprocess directory of its own per run.
    "none+uvloop+metrics": {"WSFLEET_COMPRESSION": "none", "WSFLEET_UVLOOP": "true", "PROMETHEUS_MULTIPROC_DIR": ""},
}
MESSAGE = "x" * 200 + "".join(chr(97 + i % 26) for i in range(56))  # 256 bytes, mildly compressible


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start(path: str, env_extra: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSFLEET_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"WSFLEET_SOCKET": path, "WSFLEET_LOG_LEVEL": "WARNING", "WSFLEET_PING_INTERVAL": "0"})
    env.update(env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "wsfleet_echo"], env=env)
    deadline = time.monotonic() + 15
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    return proc


async def idle_memory(path: str, pid: int, count: int) -> float:
    before = rss_kib(pid)
    conns = []
    try:
        for _ in range(count):
            conns.append(await unix_connect(path, "ws://localhost/", open_timeout=10))
        for ws in conns[:10]:
            await ws.send(MESSAGE)
            await ws.recv()
        await asyncio.sleep(0.5)
        return (rss_kib(pid) - before) / count
    finally:
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


async def throughput(path: str, conns: int, seconds: float) -> float:
    stop_at = time.monotonic() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        async with unix_connect(path, "ws://localhost/", open_timeout=10, max_queue=None) as ws:
            while time.monotonic() < stop_at:
                await ws.send(MESSAGE)
                await ws.recv()
                done += 1

    await asyncio.gather(*(worker() for _ in range(conns)))
    return done / seconds


def run(coro):
    """The client runs on uvloop too, so it is less of a bottleneck than the server it measures."""
    import uvloop

    return uvloop.run(coro)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results: dict[str, dict[str, list[float]]] = {name: {"kib_per_conn": [], "msgs_per_s": []} for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            for name, env in CONFIGS.items():
                path = f"{tmp}/{name}-{round_no}.sock"
                if "PROMETHEUS_MULTIPROC_DIR" in env:
                    env = {**env, "PROMETHEUS_MULTIPROC_DIR": f"{tmp}/metrics-{round_no}"}
                    os.mkdir(env["PROMETHEUS_MULTIPROC_DIR"])
                proc = start(path, env)
                try:
                    results[name]["kib_per_conn"].append(run(idle_memory(path, proc.pid, args.idle)))
                    results[name]["msgs_per_s"].append(run(throughput(path, args.conns, args.seconds)))
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
    summary = {
        name: {key: round(statistics.median(values), 1) for key, values in r.items()} for name, r in results.items()
    }
    base = summary["none+uvloop"]
    for name, s in summary.items():
        s["throughput_vs_default"] = round(s["msgs_per_s"] / base["msgs_per_s"], 2)
        s["memory_vs_default"] = round(s["kib_per_conn"] / base["kib_per_conn"], 2)
    report(
        args,
        summary,
        f"{args.idle} idle conns, {args.conns} busy conns x {args.seconds} s, {args.rounds} rounds",
        [("KiB/conn", "kib_per_conn", ".1f"), ("msg/s", "msgs_per_s", ".0f"), ("mem x", "memory_vs_default", ".2f"), ("thru x", "throughput_vs_default", ".2f")],
    )
    return 0


def report(args: argparse.Namespace, summary: dict[str, dict[str, float]], title: str, columns: list[tuple[str, str, str]]) -> None:
    """Print the run: JSON with --json, else a title line and one row per side (columns: header, key, format)."""
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"), "args": vars(args)}
    if args.json:
        print(json.dumps({"meta": meta, "results": summary}, indent=2))
        return
    width = max(map(len, summary))
    print(f"Python {meta['python']}, {meta['cpus']} CPUs, {title}")
    print(f"{'':{width}}" + "".join(f" {header:>12}" for header, _, _ in columns))
    for name, figures in summary.items():
        print(f"{name:{width}}" + "".join(f" {figures[key]:>12{fmt}}" for _, key, fmt in columns))


if __name__ == "__main__":
    sys.exit(main())
