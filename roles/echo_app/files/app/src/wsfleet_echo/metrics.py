"""Prometheus metrics of the echo processes: prometheus_client's multiprocess mode.

A host runs N echo processes on Unix sockets or TCP ports behind a load balancer, so a scrape of one
process's socket would reach one process of N, and a Unix socket cannot be scraped at all. Each
process instead writes its values to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` (one set per
PID), and one small exporter per host (``wsfleet-echo-metrics``, :mod:`wsfleet_echo.exporter`) reads
every process's files at each scrape and serves them on an address of its own: the pattern
prometheus_client documents for forking servers (gunicorn). Every series has a ``process`` label (the
supervisord process name), so an operator sees each process, and sums them for the host.

With no ``PROMETHEUS_MULTIPROC_DIR`` in the environment, :func:`create` gives :class:`NoMetrics`, whose
methods do nothing (prometheus_client is not even imported: it picks its storage when imported).

What an echo costs stays a few integer additions: messages and bytes are counted in plain ints and
added to the shared counters once a second (:meth:`Metrics.flush_forever`); connections, closes,
refused handshakes and pings, which are far rarer, go to the files at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_SECONDS = 1.0


class NoMetrics:
    """Metrics turned off: every event is ignored."""

    def opened(self) -> None:
        pass

    def closed(self, code: int) -> None:
        pass

    def refused(self, status: int) -> None:
        pass

    def echoed(self, size: int) -> None:
        pass

    def ping_sent(self) -> None:
        pass

    def ping_timed_out(self) -> None:
        pass

    async def flush_forever(self) -> None:
        await asyncio.Event().wait()

    def flush(self) -> None:
        pass


class Metrics(NoMetrics):
    """The metrics of one echo process, labelled with its name."""

    def __init__(self, process: str) -> None:
        from prometheus_client import Counter, Gauge

        self.process = process
        label = ["process"]
        # livesum: the exporter sums the processes that are alive (it forgets dead PIDs' gauges).
        self._open = Gauge("wsfleet_echo_connections_open", "WebSocket connections open now.", label, multiprocess_mode="livesum").labels(process)
        self._opened = Counter("wsfleet_echo_connections_opened", "WebSocket connections opened (handshake accepted).", label).labels(process)
        self._closed = Counter("wsfleet_echo_connections_closed", "WebSocket connections closed, by close code (1006: no close frame).", [*label, "code"])
        self._refused = Counter(
            "wsfleet_echo_handshakes_refused", "Handshakes refused, by HTTP status (403 origin, 426 plain HTTP, 400 bad request).", [*label, "status"]
        )
        self._messages_in = Counter("wsfleet_echo_messages_received", "Messages received.", label).labels(process)
        self._messages_out = Counter("wsfleet_echo_messages_sent", "Messages sent (the echoes).", label).labels(process)
        self._bytes_in = Counter("wsfleet_echo_received_bytes", "Payload bytes received.", label).labels(process)
        self._bytes_out = Counter("wsfleet_echo_sent_bytes", "Payload bytes sent.", label).labels(process)
        self._pings = Counter("wsfleet_echo_pings_sent", "Keepalive pings sent.", label).labels(process)
        self._ping_timeouts = Counter("wsfleet_echo_ping_timeouts", "Connections closed with 1011 for a keepalive ping timeout.", label).labels(process)
        # max: a restarted process's start time replaces the old one's.
        start = Gauge("wsfleet_echo_process_start_time_seconds", "When the process started (Unix time).", label, multiprocess_mode="max")
        start.labels(process).set(time.time())
        self._messages = 0
        self._bytes = 0

    def opened(self) -> None:
        self._open.inc()
        self._opened.inc()

    def closed(self, code: int) -> None:
        self._open.dec()
        self._closed.labels(self.process, str(code)).inc()

    def refused(self, status: int) -> None:
        self._refused.labels(self.process, str(status)).inc()

    def echoed(self, size: int) -> None:
        self._messages += 1
        self._bytes += size

    def ping_sent(self) -> None:
        self._pings.inc()

    def ping_timed_out(self) -> None:
        self._ping_timeouts.inc()

    def flush(self) -> None:
        """Add the messages and bytes counted since the last flush to the shared counters."""
        messages, size = self._messages, self._bytes
        self._messages = self._bytes = 0
        if messages:
            for counter in (self._messages_in, self._messages_out):
                counter.inc(messages)
            for counter in (self._bytes_in, self._bytes_out):
                counter.inc(size)

    async def flush_forever(self) -> None:
        try:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                self.flush()
        finally:
            self.flush()


def create(process: str) -> NoMetrics:
    """Metrics for this process when the environment names a multiprocess directory, else none.

    A directory that is missing or not writable costs the metrics, never the service: the process
    logs why and serves without them (the exporter then shows no series for it).
    """
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return NoMetrics()
    try:
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"no directory {directory}")
        # A PID of a dead process reused by this one: its gauges' files are not this process's values.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), directory)
        return Metrics(process)
    except OSError as exc:
        logging.getLogger(__name__).warning("metrics off: %s=%s unusable (%s)", MULTIPROC_ENV, directory, exc)
        return NoMetrics()
