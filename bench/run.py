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
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(ROOT / "extensions" / "molecule" / "resources"))

import seeds  # noqa: E402  (bench/seeds.py, beside this file)
import systemd_container  # noqa: E402  (the containers' recipe, shared with the tests)

IMAGE = "wsfleet/debian-systemd:12"
OURS = "wsfleet-bench-ours"
SEEDS = "wsfleet-bench-seeds"
CONTAINERS = (OURS, SEEDS)
VENV_BIN = "/opt/wsfleet-echo/venv/bin"
LOAD = f"{VENV_BIN}/wsfleet-load"
SEEDS_ROOT = "/srv/seeds"
#: Client worker processes for every run (one per core here; fewer when there are fewer connections).
CLIENT_WORKERS = 2
MESSAGE_SIZE = 256
#: This machine's hard limit on open files per process (design.md §2); it cannot be raised here.
NOFILE_HARD = 20000


@dataclass(frozen=True)
class BenchPath:
    """One way to the echo processes: where the client runs and what it connects to."""

    name: str
    container: str
    targets: tuple[str, ...]  # wsfleet-load target arguments
    lb: str | None  # "nginx", "haproxy" or None (direct)
    app: str  # process group of the app processes behind it (see classify())
    about: str


PATHS: tuple[BenchPath, ...] = (
    BenchPath("direct", OURS, ("--unix", "/run/wsfleet/echo_00.sock", "--unix", "/run/wsfleet/echo_01.sock"),
              None, "ours-app", "our 2 app processes' Unix sockets (uvloop, compression none)"),
    BenchPath("ours-nginx", OURS, ("ws://127.0.0.1:8080/",), "nginx", "ours-app",
              "nginx_lb as rendered (2 workers, least_conn, Unix sockets)"),
    BenchPath("ours-haproxy", OURS, ("ws://127.0.0.1:8090/",), "haproxy", "ours-app",
              "haproxy_lb as rendered (2 threads, leastconn, Unix sockets)"),
    BenchPath("seeds-direct", SEEDS,
              ("--unix", f"{SEEDS_ROOT}/nginx/websockets-test_00.sock", "--unix", f"{SEEDS_ROOT}/nginx/websockets-test_01.sock"),
              None, "seeds-nginx-app", "the nginx guide's app.py on its Unix sockets (asyncio, websockets' defaults)"),
    BenchPath("seeds-nginx", SEEDS, ("ws://localhost:8080/",), "nginx", "seeds-nginx-app",
              "the nginx guide's nginx.conf (1 worker, 512 worker_connections) to its app.py"),
    BenchPath("seeds-haproxy", SEEDS, ("ws://localhost:8090/",), "haproxy", "seeds-haproxy-app",
              "the HAProxy guide's haproxy.cfg to its app.py on TCP localhost:8000-8001"),
)
PATH_BY_NAME = {p.name: p for p in PATHS}
LB_PATHS = tuple(p for p in PATHS if p.lb)


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
# Commands


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(argv: Sequence[str], *, check: bool = True, timeout: float | None = None, env: dict[str, str] | None = None,
        capture: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure with check, raise with its output."""
    proc = subprocess.run(list(argv), text=True, capture_output=capture, timeout=timeout, env=env, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}\n{proc.stdout or ''}{proc.stderr or ''}")
    return proc


def dexec(container: str, *argv: str, check: bool = True, workdir: str | None = None,
          timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
    cmd = ["docker", "exec"] + (["-w", workdir] if workdir else []) + [container, *argv]
    return run(cmd, check=check, timeout=timeout)


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


# --------------------------------------------------------------------------------------------------
# Containers, converge, the seeds' processes


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


def converge(results_dir: Path) -> float:
    """bench/playbook.yml with bench/inventory.yml; returns the seconds it took."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
        "ANSIBLE_INJECT_FACT_VARS": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    })
    playbook = shutil_which("ansible-playbook")
    log_path = results_dir / "converge.log"
    start = time.monotonic()
    with log_path.open("w") as out:
        proc = subprocess.run([playbook, "-i", str(BENCH_DIR / "inventory.yml"), str(BENCH_DIR / "playbook.yml")],
                              cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        tail = log_path.read_text().splitlines()[-40:]
        raise RuntimeError("converge failed:\n" + "\n".join(tail))
    log(f"converged ours and the seeds' host in {took:.0f} s (log: {log_path.relative_to(ROOT)})")
    return took


def shutil_which(name: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    import shutil

    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: run `make venv` first")
    return found


@dataclass
class SeedProc:
    """A process of the seeds' setup, started as the guide says, from the guide's directory."""

    name: str
    setup: str  # "nginx" or "haproxy": the guide's directory under SEEDS_ROOT
    command: str  # shell text

    @property
    def workdir(self) -> str:
        return f"{SEEDS_ROOT}/{self.setup}"

    @property
    def pidfile(self) -> str:
        return f"{self.workdir}/{self.name}.bench-pid"

    def start(self) -> None:
        # The shell writes its PID and then execs the command, so the PID is the process's own.
        script = f"echo $$ > {self.name}.bench-pid; exec {self.command} >{self.name}.out 2>&1"
        run(["docker", "exec", "-d", "-w", self.workdir, SEEDS, "sh", "-c", script])

    def pid(self) -> int | None:
        proc = dexec(SEEDS, "cat", self.pidfile, check=False)
        return int(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else None

    def stop(self) -> None:
        """SIGTERM to this process (by its PID), then wait until it has exited."""
        pid = self.pid()
        if pid is None:
            return
        dexec(SEEDS, "kill", "-TERM", str(pid), check=False)
        for _ in range(300):
            if dexec(SEEDS, "test", "-e", f"/proc/{pid}", check=False).returncode != 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"seeds' {self.name} (pid {pid}) did not exit within 30 s of SIGTERM")
        dexec(SEEDS, "rm", "-f", self.pidfile, check=False)


# The guides' commands: `supervisord -c supervisord.conf -n`, `nginx -c nginx.conf -p .`,
# `haproxy -f haproxy.cfg`, run from the directory holding the files. `python` is the echo_app
# role's virtualenv Python (websockets 17.4; Debian has no `python`), first on supervisord's PATH.
# umask 000 for the nginx guide's supervisord: nginx's workers run as nobody (no `user` in the
# guide's nginx.conf, the master runs as root here) and must be able to connect to the sockets
# the app, running as root, creates; the guide runs everything as one unprivileged user instead.
SEED_PROCS: dict[str, SeedProc] = {
    "nginx-supervisord": SeedProc("supervisord", "nginx",
                                  f"env PATH={VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin sh -c 'umask 000; exec supervisord -c supervisord.conf -n'"),
    "nginx": SeedProc("nginx", "nginx", "nginx -c nginx.conf -p ."),
    "haproxy-supervisord": SeedProc("supervisord", "haproxy",
                                    f"env PATH={VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin supervisord -c supervisord.conf -n"),
    "haproxy": SeedProc("haproxy", "haproxy", "haproxy -f haproxy.cfg"),
}
SEEDS_ENVIRONMENT = [
    "Container started like ours (the molecule platform), with IPv6 enabled on loopback so that `localhost` "
    "binds ::1 and 127.0.0.1 as on a normal host (docker disables IPv6); ours has the same.",
    "Debian 12's nginx 1.22, HAProxy 2.6 and Supervisor 4.2 from the OS packages; their packaged services are "
    "stopped and disabled so only the guides' processes run.",
    "`python` in `command = python app.py` is the echo_app role's virtualenv Python 3.11 with websockets 17.4 "
    "(Debian has no `python`): supervisord is started with that virtualenv's bin/ first on PATH.",
    "Each guide's files in its own directory (/srv/seeds/nginx, /srv/seeds/haproxy), each started there with the "
    "guide's own commands: `supervisord -c supervisord.conf -n`, `nginx -c nginx.conf -p .`, `haproxy -f haproxy.cfg`.",
    "umask 000 for the nginx guide's supervisord: everything runs as root in the container and nginx's workers "
    "as nobody (the guide's nginx.conf has no `user`), so the sockets must be writable by others; the guide "
    "runs everything as one unprivileged user, which needs no such change.",
]


def install_seeds(files: dict[str, dict[str, str]]) -> None:
    """Write the seeds' files into the seeds' container and start their processes."""
    for setup, named in files.items():
        d = f"{SEEDS_ROOT}/{setup}"
        dexec(SEEDS, "mkdir", "-p", d)
        for name, text in named.items():
            subprocess.run(["docker", "exec", "-i", SEEDS, "sh", "-c", f"cat > {shlex.quote(d + '/' + name)}"],
                           input=text, text=True, check=True)
    for proc in SEED_PROCS.values():
        proc.start()
    log("seeds' setup started: " + ", ".join(f"{p.setup}/{p.name}" for p in SEED_PROCS.values()))


def restart_path(path: BenchPath) -> None:
    """Fresh app processes and load balancer for a path (the RSS baseline of a capacity hold)."""
    if path.container == OURS:
        dexec(OURS, "supervisorctl", "restart", "echo:*")
        if path.lb:
            dexec(OURS, "systemctl", "restart", path.lb)
    else:
        setup = "nginx" if path.app == "seeds-nginx-app" else "haproxy"
        for key in (f"{setup}-supervisord", path.lb or ""):
            if key:
                SEED_PROCS[key].stop()
                SEED_PROCS[key].start()
    wait_ready(path)


def app_targets(path: BenchPath) -> tuple[str, ...]:
    """Targets that reach each app process of a path directly (to wait for them)."""
    if path.app == "ours-app":
        return PATH_BY_NAME["direct"].targets
    if path.app == "seeds-nginx-app":
        return PATH_BY_NAME["seeds-direct"].targets
    return ("ws://localhost:8000/", "ws://localhost:8001/")


def wait_ready(path: BenchPath, timeout_s: float = 60) -> None:
    """Until every app process of the path and then the path itself take a connection."""
    deadline = time.monotonic() + timeout_s
    for targets in (app_targets(path), path.targets):
        n = sum(1 for t in targets if t != "--unix")
        while True:
            proc = dexec(path.container, LOAD, *targets, "-c", str(n), "--rate", "0", "-d", "0.2",
                         "--open-timeout", "2", "--json", check=False)
            if proc.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path.name}: not ready after {timeout_s:.0f} s: {proc.stdout[-500:]}{proc.stderr[-500:]}")
            time.sleep(0.5)


# --------------------------------------------------------------------------------------------------
# Measuring

PROC_SCRIPT = r"""
import json, os
out = []
for pid in os.listdir('/proc'):
    if not pid.isdigit():
        continue
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            cmd = f.read().replace(b'\0', b' ').decode(errors='replace').strip()
        with open(f'/proc/{pid}/comm') as f:
            comm = f.read().strip()
        rss = 0
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    rss = int(line.split()[1])
        try:
            cwd = os.readlink(f'/proc/{pid}/cwd')
        except OSError:
            cwd = ''
        try:
            fds = len(os.listdir(f'/proc/{pid}/fd'))
        except OSError:
            fds = -1
    except (OSError, ValueError):
        continue
    out.append([int(pid), comm, cmd, cwd, rss, fds])
print(json.dumps(out))
"""


def classify(container: str, comm: str, cmd: str, cwd: str) -> str | None:
    """The process group a process belongs to, for RSS and descriptor counts."""
    if comm in ("nginx", "haproxy"):
        return comm
    if container == OURS and "/bin/wsfleet-echo" in cmd and "wsfleet-load" not in cmd:
        return "ours-app"
    if container == SEEDS and cmd == "python app.py":
        return "seeds-nginx-app" if cwd == f"{SEEDS_ROOT}/nginx" else "seeds-haproxy-app"
    return None


@dataclass
class GroupSample:
    processes: int = 0
    rss_kib: int = 0
    fds: int = 0
    max_fds: int = 0
    per_process_fds: list[int] = field(default_factory=list)


def sample(container: str) -> dict[str, GroupSample]:
    """RSS (KiB) and open descriptors summed over each process group of a container."""
    rows = json.loads(dexec(container, "python3", "-c", PROC_SCRIPT).stdout)
    groups: dict[str, GroupSample] = {}
    for _pid, comm, cmd, cwd, rss, fds in rows:
        g = classify(container, comm, cmd, cwd)
        if g is None:
            continue
        s = groups.setdefault(g, GroupSample())
        s.processes += 1
        s.rss_kib += rss
        s.fds += max(fds, 0)
        s.max_fds = max(s.max_fds, fds)
        s.per_process_fds.append(fds)
    return groups


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


def cgroup_cpu_reader(container: str) -> Path | None:
    """The file holding the container's total CPU time (every process in it, the client included)."""
    cid = run(["docker", "inspect", "-f", "{{.Id}}", container]).stdout.strip()
    for candidate in (
        Path("/sys/fs/cgroup/cpuacct/docker") / cid / "cpuacct.usage",  # cgroup v1 (here), ns
        Path("/sys/fs/cgroup/cpu,cpuacct/docker") / cid / "cpuacct.usage",
        Path("/sys/fs/cgroup/system.slice") / f"docker-{cid}.scope" / "cpu.stat",  # cgroup v2, usage_usec
        Path("/sys/fs/cgroup/docker") / cid / "cpu.stat",
    ):
        if candidate.exists():
            return candidate
    return None


CPU_FILES: dict[str, Path | None] = {}


def container_cpu_s(container: str) -> float | None:
    """CPU seconds used so far by everything in the container."""
    if container not in CPU_FILES:
        CPU_FILES[container] = cgroup_cpu_reader(container)
    path = CPU_FILES[container]
    if path is None:
        return None
    text = path.read_text()
    if path.name == "cpuacct.usage":
        return int(text) / 1e9
    usage = next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))
    return int(usage) / 1e6


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def path_cpu_split(path: BenchPath) -> dict[str, float] | None:
    """CPU seconds so far of the path's app processes and of its load balancer, read from the host.

    The container's processes are those of its cgroup (host PIDs); each is classified like in the
    RSS samples. What is left of the container's total is the client (and the container's idle rest).
    """
    total_file = CPU_FILES.get(path.container)
    if total_file is None:
        return None
    out = {"app": 0.0, "lb": 0.0}
    for procs in total_file.parent.rglob("cgroup.procs"):
        for pid in procs.read_text().split():
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                cwd = os.readlink(f"/proc/{pid}/cwd") if comm == "python" else ""
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue  # exited meanwhile
            group = classify(path.container, comm, cmd, cwd)
            key = "app" if group == path.app else "lb" if path.lb and group == path.lb else None
            if key:
                fields = stat[stat.rindex(")") + 2:].split()
                out[key] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


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


def lb_log_tail(path: BenchPath, lines: int = 6) -> list[str]:
    """The last lines the path's load balancer logged (why a step failed)."""
    if path.container == OURS:
        cmd = (["tail", "-n", str(lines), "/var/log/nginx/error.log"] if path.lb == "nginx"
               else ["journalctl", "-q", "--no-pager", "-n", str(lines), "-t", "haproxy", "-p", "warning"])
    else:
        cmd = (["tail", "-n", str(lines), "/var/log/nginx/error.log"] if path.lb == "nginx"
               else ["tail", "-n", str(lines), f"{SEEDS_ROOT}/haproxy/haproxy.out"])
    proc = dexec(path.container, *cmd, check=False)
    return [line[-300:] for line in proc.stdout.splitlines()]


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
# Results


def median(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def throughput_table(runs: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    """Per path and connection count: medians over the rounds, worst handshake failures."""
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for path in PATHS:
        for conns in sorted({r["connections"] for r in runs}):
            rs = [r for r in runs if r["path"] == path.name and r["connections"] == conns and "error" not in r]
            if not rs:
                continue
            table.setdefault(path.name, {})[conns] = {
                "msg_per_s": median([r["msg_per_s"] for r in rs]),
                "p50_ms": median([r["p50_ms"] for r in rs]),
                "p99_ms": median([r["p99_ms"] for r in rs]),
                "cpu_us_per_msg": median([r.get("cpu_us_per_msg") for r in rs]),
                "cpu_cores_busy": median([r.get("cpu_cores_busy") for r in rs]),
                "cpu_split_us_per_msg": {
                    k: median([r.get("cpu_split_us_per_msg", {}).get(k) for r in rs]) for k in ("app", "lb", "client")
                },
                "rounds": len(rs),
                "handshakes_failed_max": max(r["handshakes_failed"] for r in rs),
                "open_at_end_min": min(r["open_at_end"] for r in rs),
                "all_ok": all(r["ok"] for r in rs),
            }
    return table


def paired_ratio(runs: list[dict[str, Any]], num: str, den: str, conns: int, key: str = "msg_per_s") -> float | None:
    """Median over rounds of a ratio taken within one round (same machine state).

    key "msg_per_s": num's msg/s over den's. key "cpu_us_per_msg": den's CPU per message over num's,
    so that for both, above 1 means num does better.
    """
    ratios = []
    for rnd in sorted({r["round"] for r in runs}):
        a = [r for r in runs if r["round"] == rnd and r["path"] == num and r["connections"] == conns]
        b = [r for r in runs if r["round"] == rnd and r["path"] == den and r["connections"] == conns]
        if a and b and a[0].get(key) and b[0].get(key):
            ratios.append(a[0][key] / b[0][key] if key == "msg_per_s" else b[0][key] / a[0][key])
    return round(statistics.median(ratios), 3) if ratios else None


RATIOS = (
    ("ours-nginx", "seeds-nginx", 2.0), ("ours-haproxy", "seeds-haproxy", 2.0),
    ("ours-nginx", "direct", 0.6), ("ours-haproxy", "direct", 0.6),
    ("direct", "seeds-direct", None),
)


def machine() -> dict[str, Any]:
    def out(argv: list[str]) -> str:
        try:
            return run(argv, check=False, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "debian": Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "",
        "mem_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "docker": out(["docker", "version", "--format", "{{.Server.Version}}"]),
        "nofile_soft_hard": [int(x) for x in out(["sh", "-c", "ulimit -Sn; ulimit -Hn"]).split()],
        "git": out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
    }


def versions() -> dict[str, str]:
    def first(container: str, shell: str) -> str:
        lines = dexec(container, "sh", "-c", shell, check=False).stdout.strip().splitlines()
        return lines[0] if lines else ""

    return {
        "nginx": first(OURS, "nginx -v 2>&1"),
        "haproxy": first(OURS, "haproxy -v | head -n 1"),
        "supervisor": first(OURS, "supervisord --version"),
        "websockets": first(OURS, f"{VENV_BIN}/python -c 'import websockets; print(websockets.__version__)'"),
        "uvloop": first(OURS, f"{VENV_BIN}/python -c 'import uvloop; print(uvloop.__version__)'"),
        "app_python": first(OURS, f"{VENV_BIN}/python -V"),
    }


def rendered_limits() -> dict[str, Any]:
    """What our roles rendered, and the descriptor limits the processes got."""
    nginx = dexec(OURS, "sh", "-c", "grep -E 'worker_(processes|rlimit_nofile|connections)' /etc/nginx/nginx.conf").stdout
    haproxy = dexec(OURS, "sh", "-c", "grep -E '^ *maxconn' /etc/haproxy/haproxy.cfg").stdout
    minfds = dexec(OURS, "sh", "-c", "grep -rh minfds /etc/supervisor/ || true").stdout
    limits = dexec(OURS, "sh", "-c",
                   "for p in $(pgrep -x nginx) $(pgrep -x haproxy) $(pgrep -f /bin/wsfleet-echo); do "
                   "echo \"$(cat /proc/$p/comm) $(awk '/open files/ {print $4, $5}' /proc/$p/limits)\"; done").stdout
    return {"nginx.conf": [l.strip() for l in nginx.splitlines()], "haproxy.cfg": [l.strip() for l in haproxy.splitlines()],
            "supervisord": [l.strip() for l in minfds.splitlines()], "open_files_soft_hard": sorted(set(limits.splitlines()))}


def report_text(res: dict[str, Any]) -> str:
    """The tables for docs/benchmarks.md."""
    lines: list[str] = []
    table = {p: {int(c): v for c, v in cs.items()} for p, cs in res["throughput"]["table"].items()}
    conns = res["settings"]["connections"]
    lines.append("| path | " + " | ".join(f"{c} conn: msg/s | p50 / p99 ms | CPU us/msg" for c in conns) + " |")
    lines.append("|---|" + "---|---|---|" * len(conns))
    for p in PATHS:
        if p.name not in table:
            continue
        cells = []
        for c in conns:
            v = table[p.name].get(c)
            if not v or v["msg_per_s"] is None:
                cells += ["n/a", "n/a", "n/a"]
                continue
            note = f" ({v['handshakes_failed_max']} of {c} handshakes failed)" if v["handshakes_failed_max"] else ""
            cells.append(f"{v['msg_per_s']:.0f}{note}")
            cells.append(f"{v['p50_ms']:.2f} / {v['p99_ms']:.2f}")
            cpu = v.get("cpu_us_per_msg")
            cells.append("n/a" if cpu is None else f"{cpu:.0f}")
        lines.append(f"| {p.name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("CPU us per echo round trip, split (medians): app processes / load balancer / client")
    lines.append("")
    lines.append("| path | " + " | ".join(f"{c} conn: app / LB / client" for c in conns) + " |")
    lines.append("|---|" + "---|" * len(conns))
    for p in PATHS:
        if p.name not in table:
            continue
        cells = []
        for c in conns:
            sp = (table[p.name].get(c) or {}).get("cpu_split_us_per_msg") or {}
            cells.append(" / ".join("n/a" if sp.get(k) is None else f"{sp[k]:.0f}" for k in ("app", "lb", "client")))
        lines.append(f"| {p.name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| ratio, paired per round, median | " + " | ".join(f"{c} conn: msg/s | CPU per msg" for c in conns) + " | target |")
    lines.append("|---|" + "---|---|" * len(conns) + "---|")
    for num, den, target in RATIOS:
        cells = []
        for c in conns:
            for key in ("ratios", "cpu_ratios"):
                v = res["throughput"].get(key, {}).get(f"{num}/{den}", {}).get(str(c))
                cells.append("n/a" if v is None else f"{v:.2f}")
        lines.append(f"| {num} / {den} | " + " | ".join(cells)
                     + f" | {'>= ' + format(target, 'g') + ' at 100' if target else '-'} |")
    lines.append("")
    lines.append("| load balancer | held clean for the long hold | first failed step: open at its end (why) | app KiB/conn | LB KiB/conn | LB fds per process during the hold |")
    lines.append("|---|---|---|---|---|---|")
    for c in res["capacity"]:
        hold = next((h for h in c["holds"] if h["clean"]), c["holds"][-1] if c["holds"] else None)
        failed = next((p for p in c["probes"] if not p["clean"]), None) or next(
            (h for h in c["holds"] if not h["clean"] and h["connections"] > c["capacity"]), None)
        why = ""
        if failed:
            reasons = failed.get("failed_by_reason") or {}
            bits = [f"{k}: {v}" for k, v in reasons.items()]
            if failed.get("in_flight_at_end"):
                bits.append(f"{failed['in_flight_at_end']} still handshaking")
            if failed.get("closes"):
                bits.append(f"closes {failed['closes']}")
            if failed.get("errors"):
                bits.append(f"errors {failed['errors']}")
            if failed.get("workers_lost"):
                bits.append(f"client workers lost {failed['workers_lost']}")
            why = ", ".join(bits) or str(failed.get("error", ""))[:120]
        rss = (hold or {}).get("rss", {})
        lines.append(
            f"| {c['path']} | {c['capacity']} | "
            + (f"{failed['connections']}: {failed.get('open_at_end', 'n/a')} open ({why})" if failed else "none (top of the ladder)")
            + f" | {rss.get('app', {}).get('per_conn_kib', 'n/a')} | {rss.get('lb', {}).get('per_conn_kib', 'n/a')} | "
            f"{rss.get('lb', {}).get('fds_per_process_during', 'n/a')} |"
        )
    return "\n".join(lines)


def compute(res: dict[str, Any]) -> None:
    runs = res["throughput"]["runs"]
    res["throughput"]["table"] = {p: {str(c): v for c, v in cs.items()} for p, cs in throughput_table(runs).items()}
    res["throughput"]["ratios"] = {
        f"{num}/{den}": {str(c): paired_ratio(runs, num, den, c) for c in res["settings"]["connections"]}
        for num, den, _ in RATIOS
    }
    res["throughput"]["cpu_ratios"] = {
        f"{num}/{den}": {str(c): paired_ratio(runs, num, den, c, "cpu_us_per_msg") for c in res["settings"]["connections"]}
        for num, den, _ in RATIOS
    }


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
    recheck = parser.add_argument_group("targeted capacity re-check (with --only capacity)")
    recheck.add_argument("--paths", help="comma-separated load balancer paths (default: all four)")
    recheck.add_argument("--ladder", help="comma-separated connection counts")
    recheck.add_argument("--capacity-ramp", type=int, help="connections opened per second")
    recheck.add_argument("--holds-only", action="store_true", help="every step is a long, measured hold")
    args = parser.parse_args(argv)

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
        "settings": asdict(st) | {"client_workers": CLIENT_WORKERS, "message_size": MESSAGE_SIZE, "numprocs": seeds.NUMPROCS},
        "paths": [asdict(p) for p in PATHS],
        "seeds": {"changes": [asdict(c) for c in seed_changes], "environment": SEEDS_ENVIRONMENT, "files": seed_files},
        "loadavg": {"start": loadavg()},
    }
    log(f"{res['command']}: {len(PATHS)} paths, connections {st.connections}, {st.rounds} round(s) of {st.window_s:g} s; "
        f"capacity ladder {st.ladder}, holds {st.probe_hold_s:g} s then {st.confirm_hold_s:g} s; load {loadavg()}")
    with containers(args.keep, args.reuse):
        if not args.reuse:
            res["converge_s"] = round(converge(results_dir), 1)
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
