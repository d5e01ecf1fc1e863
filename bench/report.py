"""Results: medians over the rounds and ratios paired within a round (compute), the tables for
docs/benchmarks.md (report_text, also behind ``--report``), and what a results file records of the
machine, the versions in the containers and the limits our roles rendered."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lab import OURS, PATHS, ROOT, VENV_BIN, dexec, run


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


def _path_rows(table: dict[str, dict[int, Any]], conns: Sequence[int], cells_of: Callable[[Any, int], list[str]]) -> list[str]:
    """One table row per measured path: its cells for each connection count, from cells_of(value, conns)."""
    return [f"| {p.name} | " + " | ".join(cell for c in conns for cell in cells_of(table[p.name].get(c), c)) + " |"
            for p in PATHS if p.name in table]


def _throughput_cells(v: Any, c: int) -> list[str]:
    if not v or v["msg_per_s"] is None:
        return ["n/a", "n/a", "n/a"]
    note = f" ({v['handshakes_failed_max']} of {c} handshakes failed)" if v["handshakes_failed_max"] else ""
    cpu = v.get("cpu_us_per_msg")
    return [f"{v['msg_per_s']:.0f}{note}", f"{v['p50_ms']:.2f} / {v['p99_ms']:.2f}", "n/a" if cpu is None else f"{cpu:.0f}"]


def _cpu_split_cells(v: Any, _c: int) -> list[str]:
    sp = (v or {}).get("cpu_split_us_per_msg") or {}
    return [" / ".join("n/a" if sp.get(k) is None else f"{sp[k]:.0f}" for k in ("app", "lb", "client"))]


def report_text(res: dict[str, Any]) -> str:
    """The tables for docs/benchmarks.md."""
    lines: list[str] = []
    table = {p: {int(c): v for c, v in cs.items()} for p, cs in res["throughput"]["table"].items()}
    conns = res["settings"]["connections"]
    lines.append("| path | " + " | ".join(f"{c} conn: msg/s | p50 / p99 ms | CPU us/msg" for c in conns) + " |")
    lines.append("|---|" + "---|---|---|" * len(conns))
    lines += _path_rows(table, conns, _throughput_cells)
    lines.append("")
    lines.append("CPU us per echo round trip, split (medians): app processes / load balancer / client")
    lines.append("")
    lines.append("| path | " + " | ".join(f"{c} conn: app / LB / client" for c in conns) + " |")
    lines.append("|---|" + "---|" * len(conns))
    lines += _path_rows(table, conns, _cpu_split_cells)
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
    lines.append("| load balancer | held clean for the long hold | first failed step: open at its end (why) "
                 "| app KiB/conn | LB KiB/conn | LB fds per process during the hold |")
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
