#!/usr/bin/env python3
"""`make bench`: direct, ours (nginx_lb, haproxy_lb) and the seeds' reference setup, side by side.

One run on one machine, interleaved, so that the figures to read are ratios:

- **direct**: wsfleet-load to our app processes' Unix sockets;
- **ours-nginx**, **ours-haproxy**: through nginx (8080) and HAProxy (8090) exactly as the roles
  render them, converged by bench/playbook.yml into the container ``wsfleet-bench-ours``;
- **seeds-direct**, **seeds-nginx**, **seeds-haproxy**: the seeds' files (bench/seeds.py cuts them
  out of the guides' text and lists every change) run by Debian's supervisor, nginx and HAProxy in
  the container ``wsfleet-bench-seeds``.

Every path runs the same load client (the app's ``wsfleet-load``, from the same wheels) inside the
container that serves it, over loopback or Unix sockets, with the same options.

1. Throughput and latency: ping-pong echo of 256-byte messages at 1, 100 and 1000 connections for
   every path, 3 interleaved rounds (the path order rotates each round); medians, ratios paired
   within a round, and the CPU each echo costs: the container's cgroup CPU time over the measured
   window (client, proxy and app together) over the messages, split by process from the host.
2. Connection capacity: idle connections (``--rate 0``) through each load balancer, stepped up a
   ladder with short holds until a step fails (a failed handshake, a close, a client error, or a
   connection missing at the end), then the highest passing step held for 60 s; the RSS of the app
   processes and of the load balancer before and during that hold gives the memory per connection.

Results: JSON and a PNG plot (docs/benchmarks-lb.* for a full run, bench/results/quick.* for
BENCH_QUICK=1), and the tables for docs/benchmarks.md on stdout (``--report FILE`` prints them again
from a saved JSON). The containers are removed at the end, whatever happens (``--keep`` to keep them,
``--reuse`` to run against kept ones without converging again).

Beside it: lab.py (the containers' paths, docker exec, the converge, the seeds' processes,
readiness), sampling.py (load average, RSS and descriptors, CPU from the cgroup and /proc),
client.py (wsfleet-load's command line and report) and report.py (medians, paired ratios, the
tables, the machine and versions recorded). This file: the containers' lifetime, one run of each
benchmark and their loops, and the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: the modules beside this file
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "extensions" / "molecule" / "resources"))

import seeds  # noqa: E402  (bench/seeds.py, beside this file)
import systemd_container  # noqa: E402  (the containers' recipe, shared with the tests)
from client import CLIENT_WORKERS, MESSAGE_SIZE, ProgressClock, describe, load_argv, parse_report, summary_of  # noqa: E402
from lab import (  # noqa: E402
    BENCH_DIR, LB_PATHS, OURS, PATH_BY_NAME, PATHS, ROOT, SEEDS, SEEDS_ENVIRONMENT, BenchPath, converge, dexec,
    install_seeds, lb_log_tail, log, restart_path, run, wait_ready,
)
from report import compute, machine, rendered_limits, report_text, versions  # noqa: E402
from sampling import GroupSample, container_cpu_s, loadavg, path_cpu_split, sample  # noqa: E402

IMAGE = "wsfleet/debian-systemd:12"
CONTAINERS = (OURS, SEEDS)
#: This machine's hard limit on open files per process (design.md §2); it cannot be raised here.
NOFILE_HARD = 20000


@dataclass(frozen=True)
class Settings:
    quick: bool
    connections: tuple[int, ...]
    rounds: int
    window_s: float
    ramp_rate: int  # connections/s while opening the throughput runs
    ladder: tuple[int, ...]  # capacity steps
    probe_hold_s: float
    confirm_hold_s: float
    capacity_ramp_rate: int
    capacity_open_timeout_s: float

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            return cls(True, (1, 100, 1000), 1, 3.0, 2000, (200, 250, 1000), 2.0, 5.0, 500, 30.0)
        return cls(False, (1, 100, 1000), 3, 5.0, 2000, (200, 250, 1000, 5000, 9000, 10000, 15000, 18000), 10.0, 60.0, 500, 30.0)


# --------------------------------------------------------------------------------------------------
# The containers' lifetime (tests/test_container_recipe.py checks that this file takes the recipe
# from systemd_container)


def start_containers() -> None:
    """Both containers, started like the molecule platform (the recipe: systemd_container.py).

    One addition: IPv6 on loopback (docker disables it), so that `localhost` in the seeds' files
    binds ::1 as well as 127.0.0.1, as on any normal host.
    """
    remove_containers()
    for name in CONTAINERS:
        run(["docker", "run", "-d", "--name", name, "--hostname", name, *systemd_container.docker_run_options(),
             "--sysctl", "net.ipv6.conf.lo.disable_ipv6=0", "--sysctl", "net.ipv6.conf.all.disable_ipv6=0",
             IMAGE, systemd_container.COMMAND])
    for name in CONTAINERS:
        for _ in range(60):
            state = dexec(name, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(1)
    log(f"containers {', '.join(CONTAINERS)} up ({IMAGE})")


def remove_containers() -> None:
    """Remove this bench's containers, and only them (by exact name)."""
    existing = run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    mine = [n for n in CONTAINERS if n in existing]
    if mine:
        run(["docker", "rm", "-f", *mine])


@contextmanager
def containers(keep: bool, reuse: bool) -> Iterator[None]:
    if not reuse:
        start_containers()
    try:
        yield
    finally:
        if keep:
            log(f"keeping {', '.join(CONTAINERS)} (--keep): `docker rm -f {' '.join(CONTAINERS)}` removes them")
        else:
            remove_containers()
            log(f"removed {', '.join(CONTAINERS)}")


# --------------------------------------------------------------------------------------------------
# The two benchmarks: one run, then the loops


def throughput_run(path: BenchPath, conns: int, st: Settings) -> dict[str, Any]:
    """One ping-pong run; also the container's CPU use during the measured window (cgroup)."""
    argv = load_argv(path, conns, st.window_s, st.ramp_rate, idle=False, progress=True)
    la = loadavg()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    clock = ProgressClock(proc.stderr)
    clock.start()
    cpu: dict[str, float] | None = None
    if clock.known.wait(timeout=30) and clock.start_at is not None:
        window_start = clock.start_at + conns / st.ramp_rate
        a = max(window_start + 0.3, time.monotonic())
        b = window_start + st.window_s - 0.3
        if b - a >= 1.0:
            time.sleep(max(0.0, a - time.monotonic()))
            c1, s1, t1 = container_cpu_s(path.container), path_cpu_split(path), time.monotonic()
            time.sleep(max(0.0, b - time.monotonic()))
            c2, s2, t2 = container_cpu_s(path.container), path_cpu_split(path), time.monotonic()
            if c1 is not None and c2 is not None:
                cpu = {"cores_busy": (c2 - c1) / (t2 - t1), "sampled_s": round(t2 - t1, 2)}
                if s1 is not None and s2 is not None:
                    cpu["app"] = (s2["app"] - s1["app"]) / (t2 - t1)
                    cpu["lb"] = (s2["lb"] - s1["lb"]) / (t2 - t1)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    proc.wait(timeout=60 + conns / st.ramp_rate + st.window_s)
    clock.join(timeout=5)
    out = summary_of(parse_report(stdout, proc.returncode, clock.tail.decode(errors="replace")))
    out.update({"path": path.name, "connections": conns, "loadavg_1m": la[0]})
    if cpu and out.get("msg_per_s"):
        out["cpu_cores_busy"] = round(cpu["cores_busy"], 3)
        out["cpu_us_per_msg"] = round(cpu["cores_busy"] * 1e6 / out["msg_per_s"], 2)
        if "app" in cpu:
            # Per echo round trip: the app processes, the load balancer, and the rest (the client).
            split = {"app": cpu["app"], "lb": cpu["lb"], "client": cpu["cores_busy"] - cpu["app"] - cpu["lb"]}
            out["cpu_split_us_per_msg"] = {k: round(v * 1e6 / out["msg_per_s"], 2) for k, v in split.items()}
    return out


def capacity_run(path: BenchPath, conns: int, hold_s: float, st: Settings, *, measure: bool) -> dict[str, Any]:
    """Hold `conns` idle connections for hold_s through the path; with measure, RSS before and during.

    With measure, the app processes and the load balancer are restarted first (a fresh baseline),
    and the "during" sample is taken once the app processes hold every connection (their open
    descriptors went up by `conns`), a few seconds into the hold.
    """
    if measure:
        restart_path(path)
        time.sleep(1)
    before = sample(path.container) if measure else None
    argv = load_argv(path, conns, hold_s, st.capacity_ramp_rate, idle=True, open_timeout=st.capacity_open_timeout_s)
    la = loadavg()
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    during = None
    if before is not None:
        want = before.get(path.app, GroupSample()).fds + conns
        # Up to a third into the hold (the ramp takes conns/rate s after the workers start).
        give_up = start + 3.0 + 1.5 * conns / st.capacity_ramp_rate + hold_s / 3
        while proc.poll() is None and time.monotonic() < give_up:
            during = sample(path.container)
            if during.get(path.app, GroupSample()).fds >= want:
                break
            time.sleep(1)
        time.sleep(min(3.0, hold_s / 6))  # let the last handshakes' buffers settle
        if proc.poll() is None:
            during = sample(path.container)
    stdout, stderr = proc.communicate(timeout=120 + st.capacity_open_timeout_s + conns / st.capacity_ramp_rate + hold_s)
    out = summary_of(parse_report(stdout, proc.returncode, stderr))
    clean = (
        out.get("ok") is True
        and out.get("handshakes_failed") == 0
        and not out.get("closes")
        and not out.get("errors")
        and out.get("open_at_end") == conns
    )
    if "handshakes_ok" in out:
        # Neither opened nor failed by the end: still handshaking (a client or proxy starved of CPU).
        out["in_flight_at_end"] = conns - out["handshakes_ok"] - out["handshakes_failed"]
    out.update({"path": path.name, "connections": conns, "hold_s": hold_s, "clean": clean,
                "loadavg_1m": la[0], "elapsed_s": round(time.monotonic() - start, 1)})
    if before is not None and during is not None:
        out["rss"] = {}
        for group, label in ((path.app, "app"), (path.lb or "", "lb")):
            b, d = before.get(group, GroupSample()), during.get(group, GroupSample())
            out["rss"][label] = {
                "group": group, "processes": d.processes, "before_kib": b.rss_kib, "during_kib": d.rss_kib,
                "per_conn_kib": round((d.rss_kib - b.rss_kib) / conns, 2),
                "fds_before": b.fds, "fds_during": d.fds, "fds_per_process_during": d.per_process_fds,
            }
    if not clean:
        out["lb_log_tail"] = lb_log_tail(path)
    return out


def bench_throughput(st: Settings) -> list[dict[str, Any]]:
    runs = []
    for rnd in range(st.rounds):
        order = PATHS[rnd % len(PATHS):] + PATHS[: rnd % len(PATHS)]
        for conns in st.connections:
            for path in order:
                r = throughput_run(path, conns, st)
                r["round"] = rnd
                runs.append(r)
                log(f"throughput r{rnd} {path.name:13s} c={conns:<5d} {describe(r)}")
    return runs


def bench_capacity(st: Settings, paths: Sequence[BenchPath] = LB_PATHS, *, holds_only: bool = False) -> list[dict[str, Any]]:
    """The ladder for each path: short probes up to the first failure, then the long hold.

    holds_only: every step of the ladder is a long, measured hold (for a targeted re-check).
    """
    out = []
    for path in paths:
        if holds_only:
            holds = []
            for conns in st.ladder:
                r = capacity_run(path, conns, st.confirm_hold_s, st, measure=True)
                r["phase"] = "hold"
                holds.append(r)
                log(f"capacity {path.name:13s} hold  {conns:6d} x {st.confirm_hold_s:g} s: "
                    f"{'clean' if r['clean'] else 'FAILED'}; {describe(r)}; "
                    + "; ".join(f"{k} {v['per_conn_kib']} KiB/conn (fds {v['fds_per_process_during']})" for k, v in r.get("rss", {}).items()))
                if not r["clean"]:
                    break
            out.append({"path": path.name, "capacity": max([h["connections"] for h in holds if h["clean"]], default=0),
                        "first_failed_step": next((h["connections"] for h in holds if not h["clean"]), None),
                        "probes": [], "holds": holds})
            continue
        probes: list[dict[str, Any]] = []
        passed: list[int] = []
        for conns in st.ladder:
            time.sleep(2)  # the previous run's closes settle
            r = capacity_run(path, conns, st.probe_hold_s, st, measure=False)
            r["phase"] = "probe"
            probes.append(r)
            log(f"capacity {path.name:13s} probe {conns:6d} x {st.probe_hold_s:g} s: "
                f"{'clean' if r['clean'] else 'FAILED'}; {describe(r)}")
            if not r["clean"]:
                break
            passed.append(conns)
        holds: list[dict[str, Any]] = []
        for conns in reversed(passed[-2:]):  # the highest passing step; the one below if it fails for 60 s
            r = capacity_run(path, conns, st.confirm_hold_s, st, measure=True)
            r["phase"] = "hold"
            holds.append(r)
            rss = r.get("rss", {})
            log(f"capacity {path.name:13s} hold  {conns:6d} x {st.confirm_hold_s:g} s: "
                f"{'clean' if r['clean'] else 'FAILED'}; {describe(r)}; "
                + "; ".join(f"{k} {v['per_conn_kib']} KiB/conn (fds {v['fds_per_process_during']})" for k, v in rss.items()))
            if r["clean"]:
                break
        held = next((h for h in holds if h["clean"]), None)
        out.append({
            "path": path.name,
            "capacity": held["connections"] if held else 0,
            "first_failed_step": next((p["connections"] for p in probes if not p["clean"]), None),
            "probes": probes,
            "holds": holds,
        })
    return out


# --------------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
                        help="short smoke run (also BENCH_QUICK=1)")
    parser.add_argument("--keep", action="store_true", default=os.environ.get("BENCH_KEEP", "") not in ("", "0"),
                        help="keep the containers at the end (also BENCH_KEEP=1)")
    parser.add_argument("--reuse", action="store_true", help="use kept containers as they are: no start, no converge")
    parser.add_argument("--only", choices=("throughput", "capacity"), help="run one of the two benchmarks")
    parser.add_argument("--out", type=Path, help="results JSON (default: docs/benchmarks-lb.json, quick: bench/results/quick.json)")
    parser.add_argument("--report", type=Path, metavar="JSON", help="print the tables of a saved results file and exit")
    parser.add_argument("--set", action="append", default=[], metavar="VAR=VALUE", dest="extra_vars",
                        help="a role variable for the converge of ours (ansible-playbook -e; repeatable), e.g. "
                             "nginx_lb_worker_processes=1: the same paths with another setting, compared through the "
                             "seeds' paths of each run")
    recheck = parser.add_argument_group("targeted capacity re-check (with --only capacity)")
    recheck.add_argument("--paths", help="comma-separated load balancer paths (default: all four)")
    recheck.add_argument("--ladder", help="comma-separated connection counts")
    recheck.add_argument("--capacity-ramp", type=int, help="connections opened per second")
    recheck.add_argument("--holds-only", action="store_true", help="every step is a long, measured hold")
    args = parser.parse_args(argv)

    if args.reuse and args.extra_vars:
        parser.error("--set needs a converge: not with --reuse")
    if any("=" not in v for v in args.extra_vars):
        parser.error("--set takes VAR=VALUE")
    if args.report:
        print(report_text(json.loads(args.report.read_text())))
        return 0

    st = Settings.make(args.quick)
    if args.ladder:
        st = dataclasses.replace(st, ladder=tuple(int(x) for x in args.ladder.split(",")))
    if args.capacity_ramp:
        st = dataclasses.replace(st, capacity_ramp_rate=args.capacity_ramp)
    cap_paths = tuple(PATH_BY_NAME[n] for n in args.paths.split(",")) if args.paths else LB_PATHS
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    out_json = args.out or (results_dir / "quick.json" if st.quick else ROOT / "docs" / "benchmarks-lb.json")
    out_png = out_json.with_suffix(".png")

    # The seeds' files first: a changed seed fails the bench before any container starts.
    seed_files, seed_changes = seeds.build()
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    res: dict[str, Any] = {
        "command": ("make bench" + (" BENCH_QUICK=1" if st.quick else "")) if len(sys.argv) == 1
        else "python " + shlex.join(["bench/run.py", *sys.argv[1:]]),
        "argv": [sys.executable, *sys.argv],
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": asdict(st) | {"client_workers": CLIENT_WORKERS, "message_size": MESSAGE_SIZE, "numprocs": seeds.NUMPROCS,
                                  "extra_vars": args.extra_vars},
        "paths": [asdict(p) for p in PATHS],
        "seeds": {"changes": [asdict(c) for c in seed_changes], "environment": SEEDS_ENVIRONMENT, "files": seed_files},
        "loadavg": {"start": loadavg()},
    }
    log(f"{res['command']}: {len(PATHS)} paths, connections {st.connections}, {st.rounds} round(s) of {st.window_s:g} s; "
        f"capacity ladder {st.ladder}, holds {st.probe_hold_s:g} s then {st.confirm_hold_s:g} s; load {loadavg()}")
    with containers(args.keep, args.reuse):
        if not args.reuse:
            res["converge_s"] = round(converge(results_dir, args.extra_vars), 1)
            install_seeds(seed_files)
        for p in PATHS:
            wait_ready(p)
        res["versions"] = versions()
        res["rendered"] = rendered_limits()
        res["throughput"] = {"runs": bench_throughput(st) if args.only != "capacity" else []}
        res["loadavg"]["after_throughput"] = loadavg()
        res["capacity"] = bench_capacity(st, cap_paths, holds_only=args.holds_only) if args.only != "throughput" else []
        res["loadavg"]["end"] = loadavg()
    res["elapsed_s"] = round(time.monotonic() - t0, 1)
    compute(res)
    all_loads = [r["loadavg_1m"] for r in res["throughput"]["runs"]] + [
        r["loadavg_1m"] for c in res["capacity"] for r in c["probes"] + c["holds"]]
    if all_loads:
        res["loadavg"]["runs_1m"] = {"min": min(all_loads), "median": statistics.median(all_loads), "max": max(all_loads)}
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(res, indent=1) + "\n")
    log(f"results: {out_json.relative_to(ROOT) if out_json.is_relative_to(ROOT) else out_json}")
    if res["throughput"]["runs"]:
        import plot

        plot.plot(res, out_png)
        log(f"plot: {out_png.relative_to(ROOT) if out_png.is_relative_to(ROOT) else out_png}")
    print(report_text(res))
    log(f"done in {res['elapsed_s'] / 60:.1f} min; load average during runs: {res['loadavg'].get('runs_1m')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
