"""wsfleet-echo-metrics: serve every echo process's metrics of this host at /metrics.

    wsfleet-echo-metrics            (settings from the environment)

PROMETHEUS_MULTIPROC_DIR   the directory the echo processes write their metrics to (required)
WSFLEET_METRICS_ADDRESS    address to listen on (default 127.0.0.1: off the public network)
WSFLEET_METRICS_PORT       port (default 9410)

Run one per host under the same supervisord as the echo processes (see :mod:`wsfleet_echo.metrics`).
At each scrape it first forgets the gauges of processes that are gone (a crash, ``kill -9``: nobody
else would), so ``wsfleet_echo_connections_open`` counts live processes only; their counters stay.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from .metrics import MULTIPROC_ENV

DEFAULT_PORT = 9410
_PID_FILE = re.compile(r"_(\d+)\.db\Z")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def forget_dead(directory: Path) -> list[int]:
    """Remove the live gauges of every PID in ``directory`` that no longer runs; return those PIDs."""
    from prometheus_client import multiprocess

    dead = sorted({int(m.group(1)) for f in directory.glob("*.db") if (m := _PID_FILE.search(f.name)) and not _alive(int(m.group(1)))})
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(directory))
    return dead


class _LiveCollector:
    """prometheus_client's MultiProcessCollector, after forgetting the dead processes' gauges."""

    def __init__(self, directory: Path) -> None:
        from prometheus_client import multiprocess

        self.directory = directory
        self._inner = multiprocess.MultiProcessCollector(None, str(directory))

    def collect(self) -> Iterable:
        forget_dead(self.directory)
        return self._inner.collect()


def settings(environ: dict[str, str]) -> tuple[Path, str, int]:
    """The directory, address and port from the environment; ValueError naming a wrong one."""
    directory = environ.get(MULTIPROC_ENV, "")
    if not directory or not Path(directory).is_dir():
        raise ValueError(f"{MULTIPROC_ENV} must name an existing directory (got {directory!r})")
    address = environ.get("WSFLEET_METRICS_ADDRESS", "127.0.0.1")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"WSFLEET_METRICS_ADDRESS must be an IP address (got {address!r})") from None
    port = environ.get("WSFLEET_METRICS_PORT", str(DEFAULT_PORT))
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"WSFLEET_METRICS_PORT must be 1-65535 (got {port!r})")
    return Path(directory), address, int(port)


def main() -> int:
    try:
        directory, address, port = settings(dict(os.environ))
    except ValueError as exc:
        print(f"wsfleet-echo-metrics: {exc}", file=sys.stderr)
        return 2
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(_LiveCollector(directory))
    _server, thread = start_http_server(port, address, registry)
    print(f"wsfleet-echo-metrics: serving {directory} at http://{address}:{port}/metrics", file=sys.stderr, flush=True)
    try:
        thread.join()  # until SIGTERM (supervisord's stop), which ends the process
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
