"""One worker process of the load client: an event loop driving its share of the connections.

Connection ``k`` (0-based, over all workers) belongs to worker ``k % workers``, targets
``targets[k % len(targets)]`` and opens ``k / ramp_rate`` seconds after the common start. Every wait
is bounded: handshakes by the open timeout, echoes by the receive timeout, closes by the close
timeout, and the whole worker by :meth:`Plan.worker_seconds`.

SIGTERM and SIGINT stop a worker's load as the parent's stop request does: it closes its connections
and reports what it counted. A signal sent to the whole process group (``timeout``, ``kill -- -PGID``,
a CI job cancelled, Ctrl-C) reaches the parent and every worker at once; see :class:`StopSignals`.
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
import random
import re
import signal
import ssl
import time
import traceback
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any

from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.protocol import State

from . import PROCESS_HEADER, __version__
from .load_stats import ABNORMAL_CLOSE_CODE, WorkerStats

#: Reconnect backoff after a close or a failed handshake: doubles from the first to the last value,
#: with jitter (50-100 % of it), and starts over after a successful handshake.
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 1.0
#: Echoes a connection may await at a fixed rate before it stops sending until one arrives. Below
#: websockets' max_queue (16), so the client never stops reading and client and server cannot both
#: block on writes; a server slower than the rate shows as fewer messages/s than planned.
MAX_IN_FLIGHT = 8
#: How often a worker reports progress and checks whether the parent asked it to stop.
PROGRESS_INTERVAL_S = 0.5
#: How long a started worker waits for the parent's start signal before giving up.
START_WAIT_S = 60.0
#: Slack added to each bounded phase of the worker (task wind-down, final closes).
SLACK_S = 1.0
#: The signals that stop a run (the parent's and each worker's).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class Target:
    """Where a connection goes: a ws:// or wss:// URL, or a Unix socket (URL ws://localhost/)."""

    url: str
    unix_path: str | None = None

    @property
    def label(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path is not None else self.url


@dataclass(frozen=True)
class Plan:
    """The whole run, as every worker sees it (picklable: it crosses to the worker processes)."""

    targets: tuple[Target, ...]
    connections: int
    workers: int
    ramp_rate: float  # connections per second over all workers; 0 opens them all at once
    duration: float  # seconds of the measured window, after the ramp
    rate: float | None  # messages per second per connection; None: ping-pong; 0: idle hold
    size: int
    reconnect: bool
    open_timeout: float
    recv_timeout: float
    close_timeout: float
    cafile: str | None = None
    insecure: bool = False
    uvloop: bool = True

    @property
    def mode(self) -> str:
        if self.rate is None:
            return "ping-pong"
        return "idle" if self.rate == 0 else "rate"

    @property
    def ramp_seconds(self) -> float:
        """Seconds from the start until the measured window opens."""
        return self.connections / self.ramp_rate if self.ramp_rate else 0.0

    @property
    def worker_seconds(self) -> float:
        """The longest a worker runs after the start: ramp, window, then each bounded wind-down."""
        wind_down = max(self.open_timeout, self.recv_timeout) + self.close_timeout + 2 * SLACK_S
        return self.ramp_seconds + self.duration + wind_down

    def connections_of(self, worker: int) -> range:
        """The global indexes of the connections a worker drives."""
        return range(worker, self.connections, self.workers)


class StopSignals:
    """Catches SIGTERM and SIGINT in a worker, which then stops its load and reports, as on the parent's request.

    The handler only records the signal (it runs between any two bytecodes and may take no lock the
    interrupted code could hold); the worker's progress task looks at it every PROGRESS_INTERVAL_S.
    The parent spawns the workers with these signals blocked, and the worker installs the handler
    before it unblocks them: one sent while the worker still starts waits for the handler instead
    of killing the worker.
    """

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signum


class EchoError(Exception):
    """An established connection misbehaved: no echo in time, a wrong echo, an unexpected message."""


def failure_reason(exc: BaseException) -> str:
    """A short, low-cardinality reason for a failed handshake, used to group failures."""
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError):
        number = exc.errno
        if number is None:  # asyncio joins the errors of several addresses into one message
            match = re.search(r"\[Errno (\d+)\]", str(exc))
            number = int(match.group(1)) if match else None
        if number is not None:
            return f"{errno.errorcode.get(number, str(number))} ({os.strerror(number)})"
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def ssl_context(plan: Plan) -> ssl.SSLContext | None:
    """The TLS context of wss:// targets: the system CAs, or --cafile, or no verification at all."""
    if not any(t.url.startswith("wss://") for t in plan.targets):
        return None
    context = ssl.create_default_context(cafile=plan.cafile)
    if plan.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Worker:
    """Drives the connections of one worker on the running event loop."""

    def __init__(self, index: int, plan: Plan, stop: Event, queue: Queue, signals: StopSignals | None = None) -> None:
        self.index = index
        self.plan = plan
        self.stop = stop
        self.signals = signals
        self.queue = queue
        self.stats = WorkerStats()
        self.open: set[ClientConnection] = set()
        self.payload = b"x" * plan.size
        self.connect_kwargs: dict[str, Any] = {
            "open_timeout": plan.open_timeout,
            "close_timeout": plan.close_timeout,
            "compression": None,
            "proxy": None,
            "max_size": max(plan.size, 2**20),
            "user_agent_header": f"wsfleet-load/{__version__}",
        }
        self.ssl = ssl_context(plan)
        drivers: dict[str, Callable[[ClientConnection], Coroutine[Any, Any, None]]] = {
            "ping-pong": self._ping_pong,
            "rate": self._at_rate,
            "idle": self._idle,
        }
        self._drive = drivers[plan.mode]
        self.window_start = 0.0
        self.end = 0.0
        self.stopped_at: float | None = None

    async def run(self, start_monotonic: float) -> WorkerStats:
        """Open, drive and close this worker's connections; return what was counted."""
        loop = asyncio.get_running_loop()
        start = loop.time() + (start_monotonic - time.monotonic())  # time.monotonic is system-wide
        self.window_start = start + self.plan.ramp_seconds
        self.end = self.window_start + self.plan.duration
        ramp_rate = self.plan.ramp_rate
        tasks = [
            loop.create_task(self._connection(k, start + (k / ramp_rate if ramp_rate else 0.0)))
            for k in self.plan.connections_of(self.index)
        ]
        reporter = loop.create_task(self._report_progress(tasks))
        try:
            wind_down = max(self.plan.open_timeout, self.plan.recv_timeout) + SLACK_S
            _done, pending = await asyncio.wait(tasks, timeout=max(0.0, self.end + wind_down - loop.time()))
            if pending:
                self.stats.errors["worker deadline"] += len(pending)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=SLACK_S)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # a bug: let the parent show the traceback
        finally:
            reporter.cancel()
        await self._close_all()
        finish = self.stopped_at if self.stopped_at is not None else self.end
        self.stats.window_s = max(0.0, min(finish, self.end) - self.window_start)
        return self.stats

    def _stop_requested(self) -> bool:
        """The parent asked this worker to stop, or the worker got SIGTERM or SIGINT."""
        return self.stop.is_set() or (self.signals is not None and self.signals.received is not None)

    async def _report_progress(self, tasks: list[asyncio.Task]) -> None:
        """Send a progress snapshot twice a second; on a stop request or signal, end the run now."""
        loop = asyncio.get_running_loop()
        while True:
            if self.stopped_at is None and self._stop_requested():
                self.stopped_at = loop.time()
                for task in tasks:
                    task.cancel()
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            stats = self.stats
            snapshot = (len(self.open), stats.handshakes_ok, stats.handshakes_failed.total(), stats.round_trips_total)
            self.queue.put(("progress", self.index, snapshot))

    async def _sleep_until(self, when: float) -> None:
        await asyncio.sleep(max(0.0, when - asyncio.get_running_loop().time()))

    async def _connection(self, k: int, opens_at: float) -> None:
        """One connection slot: open, drive until the end; with --reconnect, again after each loss."""
        loop = asyncio.get_running_loop()
        target = self.plan.targets[k % len(self.plan.targets)]
        await self._sleep_until(opens_at)
        backoff = BACKOFF_FIRST_S
        while loop.time() < self.end:
            ws = await self._handshake(target)
            if ws is not None:
                backoff = BACKOFF_FIRST_S
                self.open.add(ws)
                try:
                    await self._drive(ws)
                    return  # the run is over; ws stays in self.open for the final close
                except ConnectionClosed as exc:
                    self.stats.closes[exc.rcvd.code if exc.rcvd is not None else ABNORMAL_CLOSE_CODE] += 1
                except EchoError as exc:
                    self.stats.errors[str(exc)] += 1
                    await self._close(ws)
                self.open.discard(ws)
            if not self.plan.reconnect:
                return
            await self._sleep_until(min(self.end, loop.time() + backoff * random.uniform(0.5, 1.0)))
            backoff = min(2 * backoff, BACKOFF_MAX_S)

    async def _handshake(self, target: Target) -> ClientConnection | None:
        """Open one connection; count the handshake as succeeded (and by serving process) or failed."""
        try:
            if target.unix_path is not None:
                ws = await unix_connect(target.unix_path, target.url, **self.connect_kwargs)
            else:
                ws = await connect(target.url, ssl=self.ssl, **self.connect_kwargs)
        except Exception as exc:  # every failure is a result to count, whatever its type
            self.stats.handshakes_failed[failure_reason(exc)] += 1
            return None
        self.stats.handshakes_ok += 1
        self.stats.spread[ws.response.headers.get(PROCESS_HEADER, "-") if ws.response else "-"] += 1
        return ws

    async def _ping_pong(self, ws: ClientConnection) -> None:
        """Send, wait for the echo, repeat, until the end; the last round trip may finish after it."""
        loop = asyncio.get_running_loop()
        stats, latency, payload = self.stats, self.stats.latency, self.payload
        timeout = self.plan.recv_timeout
        perf_counter = time.perf_counter
        try:
            async with asyncio.timeout(timeout) as guard:
                while (now := loop.time()) < self.end:
                    # Move the deadline only when half of it is used: one timer update per
                    # timeout/2 instead of one per message; a round trip still gets >= timeout/2.
                    if guard.when() - now < timeout / 2:  # type: ignore[operator]
                        guard.reschedule(now + timeout)
                    sent = perf_counter()
                    await ws.send(payload)
                    echo = await ws.recv()
                    elapsed = perf_counter() - sent
                    if echo != payload:
                        raise EchoError("wrong echo")
                    stats.round_trips_total += 1
                    if now >= self.window_start:
                        stats.round_trips += 1
                        latency.add(elapsed)
        except TimeoutError:
            raise EchoError("echo timeout") from None

    async def _at_rate(self, ws: ClientConnection) -> None:
        """Send at the planned rate, pair each echo with its send, until the end and the last echo."""
        loop = asyncio.get_running_loop()
        stats, payload = self.stats, self.payload
        timeout = self.plan.recv_timeout
        period = 1 / self.plan.rate  # type: ignore[operator]
        perf_counter = time.perf_counter
        outstanding: deque[tuple[float, bool]] = deque()  # (perf_counter at send, inside the window)
        next_send = loop.time()
        while True:
            now = loop.time()
            sending = next_send < self.end
            can_send = sending and len(outstanding) < MAX_IN_FLIGHT
            if can_send and now >= next_send:
                outstanding.append((perf_counter(), now >= self.window_start))
                try:
                    async with asyncio.timeout(timeout):
                        await ws.send(payload)
                except TimeoutError:
                    raise EchoError("send timeout") from None
                next_send = max(next_send + period, now)  # behind schedule: no burst to catch up
                continue
            if not sending and not outstanding:
                return
            wake = next_send if can_send else math.inf
            if outstanding:
                wake = min(wake, now + outstanding[0][0] + timeout - perf_counter())
            try:
                async with asyncio.timeout_at(wake):
                    echo = await ws.recv()  # cancelling recv() loses nothing (websockets guarantees it)
            except TimeoutError:
                if outstanding and perf_counter() - outstanding[0][0] >= timeout:
                    raise EchoError("echo timeout") from None
                continue
            if not outstanding or echo != payload:
                raise EchoError("wrong echo")
            sent, in_window = outstanding.popleft()
            stats.round_trips_total += 1
            if in_window:
                stats.round_trips += 1
                stats.latency.add(perf_counter() - sent)

    async def _idle(self, ws: ClientConnection) -> None:
        """Hold the connection without sending until the end (keepalive pings still flow)."""
        try:
            async with asyncio.timeout_at(self.end):
                await ws.recv()
        except TimeoutError:
            return
        raise EchoError("unexpected message")

    async def _close(self, ws: ClientConnection) -> None:
        """Close with 1000; the wait for the server's close frame is bounded by the close timeout."""
        try:
            async with asyncio.timeout(self.plan.close_timeout + SLACK_S):
                await ws.close()
        except TimeoutError:
            ws.transport.abort()

    async def _close_all(self) -> None:
        """At the end: count the connections still open, close them all at once, count the rest."""
        still_open = [ws for ws in self.open if ws.state is State.OPEN]
        ended = [ws for ws in self.open if ws.state is not State.OPEN]
        self.stats.open_at_end = len(still_open)
        closing = [asyncio.ensure_future(self._close(ws)) for ws in self.open]
        if closing:
            await asyncio.wait(closing, timeout=self.plan.close_timeout + 2 * SLACK_S)
        for ws in still_open:
            if ws.close_code == ABNORMAL_CLOSE_CODE:
                self.stats.errors["close not answered"] += 1
        for ws in ended:  # the server closed them as the run ended, before the client noticed
            self.stats.closes[ws.close_code or ABNORMAL_CLOSE_CODE] += 1
        self.open.clear()


def worker_main(index: int, plan: Plan, start: Event, start_at: Synchronized, stop: Event, queue: Queue) -> None:
    """Entry point of a worker process: report ready, wait for the start, run, report the result."""
    signals = StopSignals()
    signals.install()  # first of all: SIGTERM or SIGINT, pending since the spawn, arrives here
    try:
        run: Callable[[Coroutine[Any, Any, WorkerStats]], WorkerStats] = asyncio.run
        loop_name = "asyncio"
        if plan.uvloop:
            try:
                import uvloop
            except ImportError:
                pass
            else:
                run, loop_name = uvloop.run, "uvloop"
        queue.put(("ready", index, loop_name))
        if not start.wait(START_WAIT_S):
            return
        stats = run(Worker(index, plan, stop, queue, signals).run(start_at.value))
        if signals.received is not None:  # the run is incomplete even if the parent got no signal itself
            queue.put(("signalled", index, signal.Signals(signals.received).name))
        queue.put(("result", index, stats))
    except Exception:  # the parent reports the worker as lost, with this traceback
        queue.put(("error", index, traceback.format_exc()))
