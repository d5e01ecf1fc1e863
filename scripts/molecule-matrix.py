#!/usr/bin/env python3
"""Run every molecule scenario on Debian 12 and 13, several at once, and say where the time went.

    scripts/molecule-matrix.py [--jobs N] [--debian 12,13] [--only NAME,...] [--list]

Each run is a plain `molecule test -s SCENARIO` (the full sequence of extensions/molecule/config.yml:
destroy, create, prepare, converge, idempotence, check, verify, destroy) with its own
environment: WSFLEET_DEBIAN picks the release, WSFLEET_BAKE_LB the bake's load balancer kind (the
fleet scenario has one load balancer of each kind), and each run gets its own molecule working directory (MOLECULE_EPHEMERAL_DIRECTORY), its own
container names and its own docker network, so runs never share a container or an address. They do
share the controller's wheel cache (keyed by content; identical bytes when two runs fill it).

One more run, named SCENARIO-dRELEASE-core2.19, runs OLDEST_RUN's scenario with the oldest supported
ansible-core (2.19 on Python 3.11, from the virtualenv .venv-core2.19 that scripts/venv.sh makes from
requirements-2.19.txt) instead of the controller's: the whole sequence, converge to verify, on the oldest
release meta/runtime.yml accepts.

Runs start longest first, --jobs at a time (WSFLEET_MOLECULE_JOBS, default 4): most of a run is spent
waiting (containers booting, idle-connection probes, health checks), so overlapping runs uses the
2 cores that one run leaves idle. Every run's output goes to .harness/molecule/RUN.log; a failed
run's last lines are printed. At the end: a table of each run's stages with their seconds (also in
.harness/molecule/times.md), and the exit status is 1 if any run failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".harness" / "molecule"
STAGES = ["destroy", "create", "prepare", "converge", "idempotence", "check", "verify"]
RELEASES = ["12", "13"]
# The scenarios whose hosts start from the bare image, so the roles install every OS package on both
# releases: fleet (app hosts and each load balancer kind), bake (the app and each kind on a build
# host) and lb_haproxy_tcp (the app and HAProxy, over SSH with become). The others start from the image with those packages installed (scripts/build-images.sh):
# what they test starts after installation, and apt would only add minutes of CPU to each of them.
INSTALL_FROM_NOTHING = {"fleet", "bake", "lb_haproxy_tcp"}
# Scenarios whose platforms name their releases themselves (user_path: app1 on Debian 12, the rest on
# 13): one run, named after both releases.
BOTH_RELEASES_IN_ONE = {"user_path"}
# Roughly how long a run takes here (2 cores, 4 at once), to start the long ones first.
WEIGHT = {"fleet": 1000, "user_path": 600, "bake": 500, "lb_nginx": 330, "lb_haproxy": 300, "lb_haproxy_tcp": 300,
          "app_custom": 260, "app_unix": 220, "app_tcp": 220, "no_systemd": 200, "monitoring": 300, "default": 40}
# The run on the oldest supported ansible-core: app_unix converges the app roles for real and its verify
# tests what they did, at less cost than the scenarios that converge site.yml (WEIGHT).
OLDEST_RUN = ("app_unix", "12")
OLDEST_CORE = "2.19"
OLDEST_VENV = ROOT / ".venv-core2.19"
# Every other run's molecule, ansible-playbook and pytest: the controller venv (scripts/venv.sh), first on
# PATH whether or not the caller put it there (`make molecule` does; a direct call of this script may not).
CONTROLLER_VENV = ROOT / os.environ.get("VENV", ".venv")
# Its ansible-core release (X.Y), as requirements.txt pins it: each run tells its verify stage which release
# it is on (WSFLEET_ANSIBLE_CORE), and resources/tests checks that the release it ran is that one.
CONTROLLER_CORE = re.search(r"^ansible-core==(\d+\.\d+)\.", (ROOT / "requirements.txt").read_text(), re.M).group(1)
# Molecule's uncoloured action lines: "INFO     [fleet > converge] Executing" ... "Executed: Successful".
ACTION = re.compile(r"^INFO\s+\[(\S+) > (\w+)\] (Executing|Executed: \w+)")


@dataclass
class Run:
    scenario: str
    debian: str
    lb: str | None = None  # the load balancer kind of the fleet and bake scenarios
    core: str | None = None  # an older ansible-core than the controller venv's (OLDEST_CORE), from OLDEST_VENV
    stages: dict[str, float] = field(default_factory=dict)
    result: str = "not run"
    seconds: float = 0.0
    cpu: float = 0.0  # CPU-seconds of molecule and everything it waited for: Ansible, pytest, docker exec

    @property
    def name(self) -> str:
        if self.scenario in BOTH_RELEASES_IN_ONE:
            return f"{self.scenario}-d12+13"
        return f"{self.scenario}{'-' + self.lb if self.lb else ''}-d{self.debian}{'-core' + self.core if self.core else ''}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ, WSFLEET_DEBIAN=self.debian, NO_COLOR="1", ANSIBLE_NOCOLOR="1", PY_COLORS="0",
                   ANSIBLE_FORCE_COLOR="0", MOLECULE_EPHEMERAL_DIRECTORY=str(OUT / "work" / self.name))
        # Set either way: a variant left in the caller's environment never reaches a bare run.
        env["WSFLEET_IMAGE_VARIANT"] = "" if self.scenario in INSTALL_FROM_NOTHING else "-pkgs"
        venv = OLDEST_VENV if self.core else CONTROLLER_VENV
        env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
                   WSFLEET_ANSIBLE_CORE=self.core or CONTROLLER_CORE)
        if self.core:
            # Its own container names, so it can run beside the same scenario on the controller's release.
            env["WSFLEET_NAME_SUFFIX"] = env.get("WSFLEET_NAME_SUFFIX", "") + "-core" + self.core.replace(".", "")
        if self.scenario == "bake":
            # 172.31.<n>.0/24, one per run of the bake: nginx d12 = 212, haproxy d12 = 112, ...
            env.update(WSFLEET_BAKE_LB=self.lb, WSFLEET_BAKE_NET=f"172.31.{(2 if self.lb == 'nginx' else 1)}{self.debian}")
        return env


def matrix(releases: list[str]) -> list[Run]:
    scenarios = sorted(p.parent.name for p in (ROOT / "extensions" / "molecule").glob("*/molecule.yml"))
    runs = []
    for scenario in scenarios:
        for debian in releases:
            if scenario in BOTH_RELEASES_IN_ONE:
                if debian == releases[-1]:
                    runs.append(Run(scenario, debian))
            elif scenario == "bake":
                runs += [Run(scenario, debian, lb) for lb in ("nginx", "haproxy")]
            else:
                runs.append(Run(scenario, debian))
            if (scenario, debian) == OLDEST_RUN:
                runs.append(Run(scenario, debian, core=OLDEST_CORE))
    return sorted(runs, key=lambda r: -WEIGHT.get(r.scenario, 300))


def execute(run: Run, index: int, lock: threading.Lock) -> None:
    log_path = OUT / f"{run.name}.log"
    started = time.monotonic()
    current: tuple[str, float] | None = None
    with lock:
        print(f"[{time.strftime('%H:%M:%S')}] start  {run.name}", flush=True)
    with log_path.open("w", buffering=1) as log:  # line-buffered: `tail -f` shows where a run is
        proc = subprocess.Popen(["molecule", "test", "-s", run.scenario], cwd=ROOT, env=run.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            match = ACTION.match(line)
            if not match or match.group(1) != run.scenario:
                continue
            stage, what = match.group(2), match.group(3)
            now = time.monotonic()
            if what == "Executing" and (current is None or current[0] != stage):
                current = (stage, now)
            elif what.startswith("Executed") and current and current[0] == stage:
                # destroy runs twice (before and after): add them up.
                run.stages[stage] = run.stages.get(stage, 0.0) + now - current[1]
                current = None
        # wait4, not wait: its rusage counts every process the run started and reaped (the controller's
        # side of the run), which is what the wall clock is made of on 2 busy cores.
        _, status, usage = os.wait4(proc.pid, 0)
        rc = proc.returncode = os.waitstatus_to_exitcode(status)
    run.cpu = usage.ru_utime + usage.ru_stime
    run.seconds = time.monotonic() - started
    run.result = "ok" if rc == 0 else f"FAILED ({rc})"
    with lock:
        print(f"[{time.strftime('%H:%M:%S')}] {run.result:<6} {run.name} in {run.seconds:.0f} s", flush=True)
        if rc != 0:
            tail = log_path.read_text(errors="replace").splitlines()[-150:]
            print(f"---- last lines of {log_path.relative_to(ROOT)}", *tail, "----", sep="\n", flush=True)


def cpu_times() -> tuple[int, int]:
    """The machine's (busy, all) CPU time so far, in clock ticks, from the first line of /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
    return sum(ticks) - idle, sum(ticks)


def cpu_busy(before: tuple[int, int], after: tuple[int, int], runs: list[Run]) -> str:
    """How busy every core was while the runs ran (near 100%: more runs at once would not help), and
    how much of it the controller's side of the runs used (the rest: the containers and the engine)."""
    busy, total = after[0] - before[0], after[1] - before[1]
    seconds = busy / os.sysconf("SC_CLK_TCK")
    controller = sum(r.cpu for r in runs)
    return (f"CPU busy {100 * busy / max(total, 1):.0f}% of {os.cpu_count()} cores over the wall clock (whole machine, "
            f"/proc/stat): {seconds:.0f} CPU-seconds, of which the runs' controller side (the cpu column) "
            f"{controller:.0f}, the containers and the docker engine {seconds - controller:.0f}")


def table(runs: list[Run], wall: float) -> str:
    head = ["run", *STAGES, "total", "cpu", "result"]
    rows = [head, ["---"] * len(head)]
    for run in sorted(runs, key=lambda r: r.name):
        rows.append([run.name, *[f"{run.stages[s]:.0f}" if s in run.stages else "-" for s in head[1:-3]],
                     f"{run.seconds:.0f}", f"{run.cpu:.0f}", run.result])
    sums = [f"{sum(r.stages.get(s, 0) for r in runs):.0f}" for s in head[1:-3]]
    rows.append(["sum of runs", *sums, f"{sum(r.seconds for r in runs):.0f}", f"{sum(r.cpu for r in runs):.0f}", ""])
    rows.append([f"wall clock ({JOBS} at once)", *[""] * (len(head) - 4), f"{wall:.0f}", "", ""])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main() -> int:
    global JOBS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("WSFLEET_MOLECULE_JOBS", "4")))
    parser.add_argument("--debian", default=os.environ.get("WSFLEET_MOLECULE_DEBIAN", ",".join(RELEASES)))
    parser.add_argument("--only", default=os.environ.get("WSFLEET_MOLECULE_ONLY", ""),
                        help="comma-separated run or scenario names (e.g. lb_nginx-d13, fleet)")
    parser.add_argument("--list", action="store_true", help="print the runs and exit")
    args = parser.parse_args()
    releases = [r for r in args.debian.split(",") if r]
    unknown = set(releases) - set(RELEASES)
    if unknown:
        parser.error(f"--debian: unknown release {sorted(unknown)} (allowed: {', '.join(RELEASES)})")
    runs = matrix(releases)
    if args.only:
        wanted = set(args.only.split(","))
        runs = [r for r in runs if r.name in wanted or r.scenario in wanted]
        if not runs:
            parser.error(f"--only {args.only}: no such run or scenario")
    if args.list:
        print("\n".join(r.name for r in runs))
        return 0
    JOBS = max(1, args.jobs)
    if any(r.core for r in runs):
        # Made once and kept while requirements-2.19.txt is unchanged (scripts/venv.sh's stamp).
        env = dict(os.environ, VENV=OLDEST_VENV.name, WSFLEET_VENV_PYTHON="3.11", WSFLEET_VENV_APP="no",
                   WSFLEET_VENV_REQUIREMENTS=f"requirements-{OLDEST_CORE}.txt")
        env.pop("PYTHON", None)  # the controller's interpreter override is not this venv's
        subprocess.run([ROOT / "scripts" / "venv.sh"], cwd=ROOT, env=env, check=True)
    (OUT / "work").mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    queue = list(enumerate(runs))
    started, cpu_before = time.monotonic(), cpu_times()

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                index, run = queue.pop(0)
            execute(run, index, lock)

    threads = [threading.Thread(target=worker) for _ in range(min(JOBS, len(runs)))]
    for number, thread in enumerate(threads):
        thread.start()
        if number < len(threads) - 1:
            time.sleep(15)  # stagger the first converges: they all build and fetch wheels at first
    for thread in threads:
        thread.join()
    report = table(runs, time.monotonic() - started) + "\n\n" + cpu_busy(cpu_before, cpu_times(), runs)
    (OUT / "times.md").write_text(report + "\n")
    print("\nMolecule runs (seconds per stage; destroy counts both; cpu: the controller's CPU-seconds):\n" + report,
          flush=True)
    return 0 if all(r.result == "ok" for r in runs) else 1


JOBS = 1
if __name__ == "__main__":
    sys.exit(main())
