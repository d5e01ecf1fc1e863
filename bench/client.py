"""The load client, the app's ``wsfleet-load``, as the bench runs it: its command line, its start
time read from its --progress lines, the fields of its JSON report that the bench keeps, and the
one-line description of a run in the bench's log."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

from lab import LOAD, BenchPath

#: Client worker processes for every run (one per core here; fewer when there are fewer connections).
CLIENT_WORKERS = 2
MESSAGE_SIZE = 256


def load_argv(path: BenchPath, conns: int, duration: float, ramp_rate: int, *, idle: bool,
              open_timeout: float | None = None, progress: bool = False) -> list[str]:
    argv = ["docker", "exec", path.container, LOAD, *path.targets, "-c", str(conns), "-d", f"{duration:g}",
            "--workers", str(CLIENT_WORKERS), "--ramp-rate", str(ramp_rate), "--size", str(MESSAGE_SIZE), "--json"]
    if idle:
        argv += ["--rate", "0"]
    if open_timeout is not None:
        argv += ["--open-timeout", f"{open_timeout:g}"]
    if progress:
        argv += ["--progress"]
    return argv


class ProgressClock(threading.Thread):
    """Reads wsfleet-load's --progress lines ("  12.3 s  open ...") to learn its start time."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.start_at: float | None = None  # time.monotonic() of the client's common start
        self.known = threading.Event()
        self.tail = b""

    def run(self) -> None:
        buf = b""
        while True:
            chunk = self.stream.read1(4096) if hasattr(self.stream, "read1") else self.stream.read(4096)
            if not chunk:
                break
            buf += chunk
            *lines, buf = re.split(rb"[\r\n]", buf)
            for line in lines:
                m = re.match(rb"\s*(\d+(?:\.\d+)?) s  open", line)
                if m and not self.known.is_set():
                    self.start_at = time.monotonic() - float(m.group(1))
                    self.known.set()
                elif line.strip() and not m:
                    self.tail = (self.tail + line + b"\n")[-2000:]


def parse_report(proc_stdout: str, returncode: int, stderr: str) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(proc_stdout)
    except json.JSONDecodeError:
        return {"ok": False, "exit_code": returncode, "error": (proc_stdout + stderr)[-2000:]}
    return report


def summary_of(report: dict[str, Any]) -> dict[str, Any]:
    """The fields of a wsfleet-load report that the bench keeps."""
    if "error" in report:
        return {"ok": False, "error": report["error"]}
    lat = report.get("latency_ms") or {}
    return {
        "ok": report["ok"],
        "exit_code": report["exit_code"],
        "msg_per_s": report["messages"]["per_s"],
        "round_trips": report["messages"]["round_trips"],
        "p50_ms": lat.get("p50"),
        "p99_ms": lat.get("p99"),
        "handshakes_ok": report["handshakes"]["ok"],
        "handshakes_failed": report["handshakes"]["failed"],
        "failed_by_reason": report["handshakes"]["failed_by_reason"],
        "closes": report["closes"]["by_code"],
        "errors": report["errors"],
        "open_at_end": report["open_at_end"],
        "window_s": report["window_s"],
        "spread": report["spread"],
        "workers_lost": report["workers"]["lost"],
    }


def describe(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"ERROR {r['error'][-200:]}"
    bits = [f"{r['msg_per_s'] or 0:.0f} msg/s" if "hold_s" not in r
            else f"open {r['open_at_end']}" + (f", {r['in_flight_at_end']} still handshaking" if r.get("in_flight_at_end") else ""),
            f"hs ok {r['handshakes_ok']} failed {r['handshakes_failed']}"]
    if "hold_s" not in r and r.get("p99_ms") is not None:
        bits.insert(1, f"p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} ms")
    if r["failed_by_reason"]:
        bits.append(f"reasons {r['failed_by_reason']}")
    if r["closes"]:
        bits.append(f"closes {r['closes']}")
    if r["errors"]:
        bits.append(f"errors {r['errors']}")
    if r.get("workers_lost"):
        bits.append(f"workers lost {r['workers_lost']}")
    if r.get("cpu_us_per_msg") is not None:
        bits.append(f"cpu {r['cpu_cores_busy']:.2f} cores = {r['cpu_us_per_msg']:.0f} us/msg")
        if r.get("cpu_split_us_per_msg"):
            bits.append("(app/lb/client " + "/".join(f"{v:.0f}" for v in r["cpu_split_us_per_msg"].values()) + ")")
    bits.append(f"load {r['loadavg_1m']:.1f}")
    return ", ".join(bits)
