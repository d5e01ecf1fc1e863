"""The bench's lab: the two containers' names, the six paths through them, commands run in them
(``docker exec``), the converge of bench/playbook.yml, the seeds' processes (installed, started,
stopped), and waiting until a path takes connections."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

OURS = "wsfleet-bench-ours"
SEEDS = "wsfleet-bench-seeds"
VENV_BIN = "/opt/wsfleet-echo/venv/bin"
LOAD = f"{VENV_BIN}/wsfleet-load"
SEEDS_ROOT = "/srv/seeds"


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


# --------------------------------------------------------------------------------------------------
# Converge, the seeds' processes, readiness


def converge(results_dir: Path, extra_vars: Sequence[str] = ()) -> float:
    """bench/playbook.yml with bench/inventory.yml (and extra_vars, each VAR=VALUE, as -e); returns the
    seconds it took."""
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
        extra = [arg for var in extra_vars for arg in ("-e", var)]
        proc = subprocess.run([playbook, "-i", str(BENCH_DIR / "inventory.yml"), *extra, str(BENCH_DIR / "playbook.yml")],
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
