"""What the bench samples while it runs: the host's load average; the RSS and open descriptors of
each process group in a container (/proc, read inside it); a container's CPU time (its cgroup) and
the part of it that a path's app processes and load balancer used (/proc, read from the host)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lab import OURS, SEEDS, SEEDS_ROOT, BenchPath, dexec, run


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


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
