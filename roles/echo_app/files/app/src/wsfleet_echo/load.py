"""wsfleet-load: a WebSocket load client for echo servers (the echo app, or a fleet behind a proxy).

It opens C connections (at a ramp rate) over several worker processes, spread round-robin over the
targets (URLs and/or Unix sockets), holds them for a duration while driving echo traffic, and
reports handshakes, server closes by code, messages/s, latency quantiles, connections still open,
and the spread over backend processes (the echo server's ``X-Wsfleet-Process`` handshake header).

Timeline: connection k opens at ``k / ramp_rate`` s; the measured window starts when the ramp is
scheduled to end (``connections / ramp_rate`` s) and lasts ``--duration`` s; then every connection
is closed with 1000. Messages/s and latencies count only echo round trips sent inside the window.

Exit status: 0 when the run completed cleanly; 1 when any handshake failed, a server close was not
clean (clean: 1000, 1001, 1012; anything else, 1006 included, is not), a client error happened
(echo timeout, wrong echo, close not answered), a worker was lost, or the run was interrupted;
2 for bad arguments (or more connections per worker than the open-file limit allows).

``--json`` prints one object with these keys (stable; new keys may be added):

- ``ok`` (bool), ``exit_code`` (0 or 1), ``completed`` (false when interrupted or a worker was lost)
- ``config``: ``targets`` (list of labels: the URL, or ``unix:PATH``), ``connections``, ``workers``,
  ``mode`` (``ping-pong``, ``rate`` or ``idle``), ``rate`` (messages/s per connection, null for
  ping-pong), ``size`` (bytes), ``ramp_rate`` (connections/s, 0: all at once), ``duration_s``,
  ``reconnect`` (bool), ``loop`` (``uvloop`` or ``asyncio``)
- ``elapsed_s``: wall-clock seconds from the start signal to the last worker's result
- ``window_s``: seconds of the measured window (shorter than ``duration_s`` when interrupted)
- ``handshakes``: ``ok``, ``failed`` (every attempt, reconnects included), ``failed_by_reason``
  (object: reason -> count, e.g. ``"HTTP 503"``, ``"ECONNREFUSED (Connection refused)"``,
  ``"timeout"``)
- ``closes``: connections ended by the server or the network during the run: ``by_code`` (object:
  close code as a string -> count; ``"1006"``: no close frame), ``clean`` (1000, 1001, 1012),
  ``abnormal`` (1006), ``other`` (any other code)
- ``errors``: object: client-side error -> count (``echo timeout``, ``send timeout``, ``wrong echo``,
  ``unexpected message``, ``close not answered``, ``worker deadline``)
- ``messages``: ``round_trips`` (inside the window), ``per_s`` (round_trips / window_s, null when
  the window is empty), ``total_round_trips`` (whole run, ramp included)
- ``latency_ms``: ``samples``, ``min``, ``mean``, ``p50``, ``p90``, ``p99``, ``max`` (null without
  samples; quantiles from a log-bucket histogram, within 0.5 %; min, mean and max exact)
- ``open_at_end``: connections still open when the run ended
- ``spread``: object: ``X-Wsfleet-Process`` value -> successful handshakes (``"-"``: no header)
- ``workers``: ``count``, ``reported``, ``lost`` (object: worker index as a string -> reason)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import queue as queue_module
import resource
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from . import __version__
from .load_stats import ABNORMAL_CLOSE_CODE, CLEAN_CLOSE_CODES, WorkerStats
from .load_worker import SLACK_S, STOP_SIGNALS, Plan, Target, worker_main

PROG = "wsfleet-load"
#: File descriptors a worker needs besides its connections (interpreter, event loop, pipes).
FD_RESERVE = 64
#: How long the parent waits for spawned workers to import and report ready.
READY_TIMEOUT_S = 30.0
#: How long after its deadline the parent waits for a worker's result before killing it.
KILL_GRACE_S = 5.0
#: How long a worker that exited may stay silent before it counts as lost (its result may be in flight).
EXIT_GRACE_S = 2.0
#: Delay between the start signal and the common start time, so every worker starts together.
START_DELAY_S = 0.1
#: The progress line is rewritten at most this often.
PROGRESS_EVERY_S = 0.45


class UsageError(Exception):
    """The arguments cannot work; the message names the option."""


def _number(kind: type, minimum: float, *, above: bool = False) -> Any:
    """An argparse type: a number of ``kind`` that is >= minimum (or > minimum when ``above``)."""

    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(f"{text!r} must be {'>' if above else '>='} {minimum}")
        return value

    return convert


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
WebSocket load client for echo servers. Opens --connections connections over --workers
processes, round-robin over the targets, holds them for --duration seconds after the ramp
while driving echo traffic (ping-pong, a fixed --rate, or idle), and reports handshakes,
server closes by code, messages/s, latency, connections open at the end and the spread
over backend processes (the X-Wsfleet-Process handshake header).""",
        epilog="""\
exit status:
  0  the run completed cleanly
  1  a handshake failed, a server close was not 1000/1001/1012 (1006: no close frame),
     a client error (echo timeout, wrong echo, close not answered), a lost worker,
     or the run was interrupted
  2  bad arguments, or more connections per worker than the open-file limit allows

examples:
  wsfleet-load ws://127.0.0.1:8080/ -c 1000 -d 30
  wsfleet-load --unix /run/wsfleet/echo_00.sock --unix /run/wsfleet/echo_01.sock --json
  wsfleet-load wss://lb.example:8443/ --cafile ca.pem -c 5000 --rate 0 --reconnect -d 600""",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    where = parser.add_argument_group("targets (at least one; connections go round-robin over all of them)")
    where.add_argument("urls", nargs="*", metavar="URL", help="ws:// or wss:// URL")
    where.add_argument(
        "--unix",
        action="append",
        default=[],
        metavar="PATH",
        help="Unix socket to connect to (Host: localhost); repeatable",
    )
    where.add_argument(
        "--cafile", metavar="FILE", help="PEM file of the CA(s) that signed the wss:// servers' certificates"
    )
    where.add_argument("--insecure", action="store_true", help="do not verify wss:// certificates at all")

    load = parser.add_argument_group("load")
    load.add_argument(
        "-c", "--connections", type=_number(int, 1), default=100, metavar="N", help="connections to open (100)"
    )
    load.add_argument(
        "--ramp-rate",
        type=_number(float, 0),
        default=1000.0,
        metavar="N",
        help="connections opened per second, all workers together; 0: all at once (1000)",
    )
    load.add_argument(
        "-d",
        "--duration",
        type=_number(float, 0, above=True),
        default=10.0,
        metavar="S",
        help="seconds to hold the connections after the ramp: the measured window (10)",
    )
    load.add_argument(
        "--rate",
        type=_number(float, 0),
        metavar="R",
        help="messages per second per connection; 0: idle hold (open and keep only); "
        "default: ping-pong (send, wait for the echo, repeat)",
    )
    load.add_argument(
        "--size", type=_number(int, 0), default=256, metavar="BYTES", help="message size in bytes, sent as binary (256)"
    )
    load.add_argument(
        "--reconnect",
        action="store_true",
        help="reopen a connection the server closed (or that failed to open), after a short backoff; "
        "every attempt counts as a handshake",
    )

    timeouts = parser.add_argument_group("timeouts (seconds)")
    timeouts.add_argument(
        "--open-timeout",
        type=_number(float, 0, above=True),
        default=10.0,
        metavar="S",
        help="TCP/TLS connect and WebSocket handshake (10)",
    )
    timeouts.add_argument(
        "--timeout", type=_number(float, 0, above=True), default=10.0, metavar="S", help="wait for an echo (10)"
    )
    timeouts.add_argument(
        "--close-timeout", type=_number(float, 0, above=True), default=5.0, metavar="S", help="closing handshake (5)"
    )

    run = parser.add_argument_group("run and output")
    run.add_argument(
        "--workers",
        type=_number(int, 1),
        metavar="N",
        help="worker processes, each with its own event loop "
        f"(default: the CPU count, {default_workers()} here; at most --connections)",
    )
    run.add_argument(
        "--no-uvloop",
        dest="uvloop",
        action="store_false",
        help="run the workers on asyncio's loop even when uvloop is installed",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of the summary table (keys: pydoc wsfleet_echo.load)",
    )
    run.add_argument(
        "--progress", action="store_true", help="show the progress line on stderr even when it is not a terminal"
    )
    return parser


def make_plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Plan:
    """Check the arguments together and turn them into a Plan; parser.error() (exit 2) when they cannot work."""
    if not args.urls and not args.unix:
        parser.error("no target: give at least one ws:// or wss:// URL, or --unix PATH")
    targets: list[Target] = []
    for url in args.urls:
        try:
            parse_uri(url)
        except InvalidURI as exc:
            parser.error(f"argument URL: {exc}")
        targets.append(Target(url))
    targets += [Target("ws://localhost/", path) for path in args.unix]
    if args.cafile is not None and not os.path.isfile(args.cafile):
        parser.error(f"argument --cafile: {args.cafile!r} is not a file")
    return Plan(
        targets=tuple(targets),
        connections=args.connections,
        workers=min(args.workers or default_workers(), args.connections),
        ramp_rate=args.ramp_rate,
        duration=args.duration,
        rate=args.rate,
        size=args.size,
        reconnect=args.reconnect,
        open_timeout=args.open_timeout,
        recv_timeout=args.timeout,
        close_timeout=args.close_timeout,
        cafile=args.cafile,
        insecure=args.insecure,
        uvloop=args.uvloop,
    )


def raise_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (workers inherit it); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open") as nr_open:  # the kernel's ceiling when the hard limit is unlimited
                wanted = int(nr_open.read())
        except OSError:
            wanted = 2**20
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def check_file_limit(plan: Plan, limit: int) -> None:
    """Refuse a plan whose busiest worker would run out of file descriptors."""
    if limit == resource.RLIM_INFINITY:
        return
    per_worker = math.ceil(plan.connections / plan.workers)
    if per_worker + FD_RESERVE > limit:
        needed = math.ceil(plan.connections / max(1, limit - FD_RESERVE))
        raise UsageError(
            f"--connections {plan.connections} over {plan.workers} worker(s) puts up to {per_worker} connections "
            f"in one worker process, but a process may open only {limit} files (RLIMIT_NOFILE, "
            f"{FD_RESERVE} kept for the worker itself): use --workers {needed} or more"
        )


class Run:
    """The parent side of a run: starts the workers, shows progress, collects and merges results."""

    def __init__(self, plan: Plan, progress: TextIO | None) -> None:
        self.plan = plan
        self.progress = progress
        self.context = multiprocessing.get_context("spawn")  # no inherited state, same on every OS
        self.queue = self.context.Queue()
        self.start = self.context.Event()
        self.stop = self.context.Event()
        self.start_at = self.context.Value("d", 0.0)
        self.processes = [
            self.context.Process(
                target=worker_main,
                args=(i, plan, self.start, self.start_at, self.stop, self.queue),
                name=f"{PROG}-worker-{i}",
                daemon=True,
            )
            for i in range(plan.workers)
        ]
        self.loops: dict[int, str] = {}
        self.snapshots: dict[int, tuple[int, int, int, int]] = {}
        self.results: dict[int, WorkerStats] = {}
        self.lost: dict[int, str] = {}
        self.exited_at: dict[int, float] = {}
        self.interrupted = False
        self.elapsed = 0.0
        self._last_progress: tuple[float, int] | None = None
        self._progress_shown = False

    def execute(self) -> WorkerStats:
        """Run to completion (or to the deadline, or Ctrl-C) and return the merged stats."""
        try:
            # The workers inherit the blocked signals and unblock them once their handlers are in
            # place (load_worker.StopSignals): a SIGTERM or SIGINT sent to the whole process group
            # while they start waits in each of them instead of killing it. Ours arrives right after.
            unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                for process in self.processes:
                    process.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
            self._collect(
                lambda: len(self.loops) + len(self.lost) >= len(self.processes), time.monotonic() + READY_TIMEOUT_S
            )
            self.start_at.value = time.monotonic() + START_DELAY_S
            self.start.set()
            self._collect(self._all_reported, self.start_at.value + self.plan.worker_seconds + KILL_GRACE_S)
        except KeyboardInterrupt:
            self.interrupted = True
            self.stop.set()
            if self.start.is_set():
                # Workers notice within PROGRESS_INTERVAL_S, close their connections and report.
                wind_down = self.plan.close_timeout + 2 * SLACK_S + KILL_GRACE_S
                with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C stops waiting for them
                    self._collect(self._all_reported, time.monotonic() + wind_down)
        finally:
            self.elapsed = time.monotonic() - self.start_at.value if self.start.is_set() else 0.0
            self._end_progress()
            for index, process in enumerate(self.processes):
                if index not in self.results and index not in self.lost:
                    self.lost[index] = "killed: no result in time"
                if process.pid is None:  # never started
                    continue
                if process.is_alive():
                    process.kill()
                process.join(timeout=KILL_GRACE_S)
        total = WorkerStats()
        for stats in self.results.values():
            total.merge(stats)
        return total

    def _all_reported(self) -> bool:
        return len(self.results) + len(self.lost) >= len(self.processes)

    def _collect(self, done: Any, deadline: float) -> None:
        """Handle worker messages until done() or the deadline; notice workers that died silently."""
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                kind, index, payload = self.queue.get(timeout=min(remaining, 0.25))
            except queue_module.Empty:
                pass
            else:
                if kind == "ready":
                    self.loops[index] = payload
                elif kind == "progress":
                    self.snapshots[index] = payload
                    self._show_progress()
                elif kind == "result":
                    self.results[index] = payload
                elif kind == "signalled":  # a worker got SIGTERM or SIGINT and stopped: so does the run
                    if not self.interrupted:
                        print(f"{PROG}: worker {index} got {payload}: stopping the run", file=sys.stderr)
                    self.interrupted = True
                    self.stop.set()
                elif kind == "error":
                    self.lost[index] = "crashed: " + payload.strip().splitlines()[-1]
                    print(f"{PROG}: worker {index} crashed:\n{payload}", file=sys.stderr)
            self._notice_exits()

    def _notice_exits(self) -> None:
        now = time.monotonic()
        for index, process in enumerate(self.processes):
            if process.exitcode is None or index in self.results or index in self.lost:
                continue
            first_seen = self.exited_at.setdefault(index, now)
            if now - first_seen > EXIT_GRACE_S:
                self.lost[index] = f"exited with status {process.exitcode} without a result"

    def _show_progress(self) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        opened = sum(s[0] for s in self.snapshots.values())
        ok = sum(s[1] for s in self.snapshots.values())
        failed = sum(s[2] for s in self.snapshots.values())
        round_trips = sum(s[3] for s in self.snapshots.values())
        if self._last_progress is not None and now - self._last_progress[0] < PROGRESS_EVERY_S:
            return
        rate = "-"
        if self._last_progress is not None:
            rate = f"{(round_trips - self._last_progress[1]) / (now - self._last_progress[0]):,.0f}"
        self._last_progress = (now, round_trips)
        elapsed = now - self.start_at.value
        line = f"{elapsed:6.1f} s  open {opened:,}  handshakes {ok:,} ok {failed:,} failed  msgs/s {rate}"
        self.progress.write(f"\r{line:<78}")
        self.progress.flush()
        self._progress_shown = True

    def _end_progress(self) -> None:
        if self._progress_shown and self.progress is not None:
            self.progress.write("\n")
            self.progress.flush()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def build_report(plan: Plan, run: Run, stats: WorkerStats) -> dict[str, Any]:
    """The result as a JSON-ready dict (the keys the module docstring documents)."""
    closes = {str(code): count for code, count in sorted(stats.closes.items())}
    clean = sum(n for code, n in stats.closes.items() if code in CLEAN_CLOSE_CODES)
    abnormal = stats.closes[ABNORMAL_CLOSE_CODE]
    other = stats.closes.total() - clean - abnormal
    failed = stats.handshakes_failed.total()
    completed = not run.interrupted and not run.lost
    ok = completed and failed == 0 and abnormal == 0 and other == 0 and not stats.errors
    latency = stats.latency
    window = round(stats.window_s, 3)
    return {
        "ok": ok,
        "exit_code": 0 if ok else 1,
        "completed": completed,
        "config": {
            "targets": [target.label for target in plan.targets],
            "connections": plan.connections,
            "workers": plan.workers,
            "mode": plan.mode,
            "rate": plan.rate,
            "size": plan.size,
            "ramp_rate": plan.ramp_rate,
            "duration_s": plan.duration,
            "reconnect": plan.reconnect,
            "loop": "/".join(sorted(set(run.loops.values()))) or None,
        },
        "elapsed_s": round(run.elapsed, 3),
        "window_s": window,
        "handshakes": {
            "ok": stats.handshakes_ok,
            "failed": failed,
            "failed_by_reason": dict(stats.handshakes_failed.most_common()),
        },
        "closes": {"by_code": closes, "clean": clean, "abnormal": abnormal, "other": other},
        "errors": dict(stats.errors.most_common()),
        "messages": {
            "round_trips": stats.round_trips,
            "per_s": round(stats.round_trips / window, 1) if window > 0 else None,
            "total_round_trips": stats.round_trips_total,
        },
        "latency_ms": {
            "samples": latency.count,
            "min": _ms(latency.min if latency.count else None),
            "mean": _ms(latency.mean()),
            "p50": _ms(latency.quantile(0.50)),
            "p90": _ms(latency.quantile(0.90)),
            "p99": _ms(latency.quantile(0.99)),
            "max": _ms(latency.max if latency.count else None),
        },
        "open_at_end": stats.open_at_end,
        "spread": dict(sorted(stats.spread.items())),
        "workers": {
            "count": plan.workers,
            "reported": len(run.results),
            "lost": {str(index): reason for index, reason in sorted(run.lost.items())},
        },
    }


def _counts(counts: dict[str, Any]) -> str:
    """``key value, ...``: numbers with thousands separators, any other value as text."""
    return ", ".join(f"{key} {_count(value)}" for key, value in counts.items()) or "none"


def _count(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def format_summary(report: dict[str, Any]) -> str:
    """The human summary table."""
    config = report["config"]
    mode = config["mode"] if config["mode"] != "rate" else f"{config['rate']:g} msg/s per connection"
    hs, closes, msgs, lat = report["handshakes"], report["closes"], report["messages"], report["latency_ms"]
    latency = (
        "  ".join(f"{key} {lat[key]:.2f}" for key in ("p50", "p90", "p99", "max")) if lat["samples"] else "no samples"
    )
    per_s = f"{msgs['per_s']:,.0f}" if msgs["per_s"] is not None else "-"
    lost = {f"worker {index}": reason for index, reason in report["workers"]["lost"].items()}
    rows = [
        (
            "run",
            f"{mode}, {config['size']} B, {config['connections']:,} connections, {len(config['targets'])} target(s), "
            f"{config['workers']} worker(s) on {config['loop']}, window {report['window_s']:g} s",
        ),
        ("handshakes", f"{hs['ok']:,} ok, {hs['failed']:,} failed"),
    ]
    if hs["failed"]:
        rows.append(("  failed by", _counts(hs["failed_by_reason"])))
    rows += [
        (
            "server closes",
            f"{_counts(closes['by_code'])} "
            f"(clean {closes['clean']:,}, abnormal {closes['abnormal']:,}, other {closes['other']:,})",
        ),
        ("client errors", _counts(report["errors"])),
        ("messages/s", f"{per_s}  ({msgs['round_trips']:,} round trips in the window)"),
        ("latency ms", latency),
        ("open at end", f"{report['open_at_end']:,} of {config['connections']:,}"),
        ("spread", _counts(report["spread"])),
        (
            "workers",
            f"{report['workers']['reported']} of {report['workers']['count']} reported"
            + (f"; lost: {_counts(lost)}" if lost else ""),
        ),
        ("result", "OK" if report["ok"] else "FAILED" + ("" if report["completed"] else " (incomplete run)")),
    ]
    return "\n".join(f"{name:<14} {value}" for name, value in rows)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, check, run, report; the exit status is 0 (clean run), 1 (failures) or 2 (bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    plan = make_plan(parser, args)
    try:
        check_file_limit(plan, raise_file_limit())
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    progress = sys.stderr if args.progress or sys.stderr.isatty() else None
    # Ctrl-C, or SIGTERM (how scripts stop a run in the background, where the shell leaves SIGINT
    # ignored), ends the run early; the report covers what ran. Sent to the whole process group
    # (Ctrl-C, timeout, kill -- -PGID, a CI cancel), it also reaches every worker, which then stops
    # its load and reports by itself (load_worker.StopSignals).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    run = Run(plan, progress)
    report = build_report(plan, run, run.execute())
    print(json.dumps(report, indent=2) if args.json else format_summary(report))
    return report["exit_code"]


if __name__ == "__main__":
    raise SystemExit(main())
