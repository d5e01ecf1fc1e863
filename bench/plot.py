"""The plot of `make bench`: echo msg/s and p99 latency against connections, one line per path.

``python bench/plot.py RESULTS.json OUT.png`` redraws it from saved results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt  # noqa: E402

STYLE: dict[str, dict[str, Any]] = {
    "direct": {"color": "black", "linestyle": "-", "marker": "o"},
    "ours-nginx": {"color": "tab:green", "linestyle": "-", "marker": "s"},
    "ours-haproxy": {"color": "tab:blue", "linestyle": "-", "marker": "^"},
    "seeds-direct": {"color": "grey", "linestyle": "--", "marker": "o"},
    "seeds-nginx": {"color": "tab:green", "linestyle": "--", "marker": "s"},
    "seeds-haproxy": {"color": "tab:blue", "linestyle": "--", "marker": "^"},
}


def plot(res: dict[str, Any], out: Path) -> None:
    table: dict[str, dict[str, dict[str, Any]]] = res["throughput"]["table"]
    fig, (ax_tp, ax_lat, ax_cpu) = plt.subplots(1, 3, figsize=(16, 4.8))
    for path, by_conns in table.items():
        conns = sorted(int(c) for c in by_conns)
        pts = [(c, by_conns[str(c)]) for c in conns if by_conns[str(c)]["msg_per_s"]]
        if not pts:
            continue
        style = STYLE.get(path, {})
        # A point where handshakes failed is hollow: fewer connections than asked carried the load.
        for ax, key in ((ax_tp, "msg_per_s"), (ax_lat, "p99_ms"), (ax_cpu, "cpu_us_per_msg")):
            kpts = [(c, v) for c, v in pts if v.get(key) is not None]
            ax.plot([c for c, _ in kpts], [v[key] for _, v in kpts], label=path, **style)
            bad = [(c, v) for c, v in kpts if v["handshakes_failed_max"]]
            if bad:
                ax.plot([c for c, _ in bad], [v[key] for _, v in bad], linestyle="none", marker=style.get("marker", "o"),
                        markersize=12, markerfacecolor="none", markeredgecolor="red")
    s = res["settings"]
    m = res["machine"]
    ax_tp.set(xscale="log", xlabel="connections (ping-pong, 256 B)", ylabel="echo messages/s (median of rounds)",
              title="Throughput")
    ax_lat.set(xscale="log", yscale="log", xlabel="connections (ping-pong, 256 B)", ylabel="p99 round trip, ms",
               title="p99 latency")
    ax_cpu.set(xscale="log", xlabel="connections (ping-pong, 256 B)",
               ylabel="CPU us per echo (client + proxy + app, cgroup)", title="CPU cost per message")
    ax_cpu.set_ylim(bottom=0)
    for ax in (ax_tp, ax_lat, ax_cpu):
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xticks(s["connections"], [str(c) for c in s["connections"]])
    ax_tp.set_ylim(bottom=0)
    ax_tp.legend(fontsize=8)
    fig.suptitle(
        f"{res['command']} - {res['started_utc'][:10]} - {m['nproc']} cores shared by client, proxy and app, "
        f"{s['numprocs']} app processes - {s['rounds']} round(s) x {s['window_s']:g} s; "
        "red ring: some handshakes failed",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: plot.py RESULTS.json OUT.png", file=sys.stderr)
        sys.exit(2)
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
