"""Keepalive pings for all the connections of one process, driven by one task.

websockets pings from one task per connection, which stays alive as long as the connection: 1.9 KiB
of the 15.3 KiB an idle connection costs the app (``docs/benchmarks.md``). Here one task per
process walks the open connections instead; a connection costs one dict entry between pings: its
group's key, with the time it opened as the value (about 80 bytes, where a set entry took 40).

- The connections are spread over ``SLICES`` groups; one group is pinged every
  ``interval / SLICES`` seconds, so pings are spread over the interval rather than sent in one burst,
  and each connection gets a ping every ``interval`` seconds.
- No connection is pinged before a full ``interval`` has passed since it opened, as websockets does:
  one still younger than that when its group's turn comes waits for the group's next turn, so its
  first ping comes between one and two intervals after it opened. The ages are measured with
  ``time.monotonic()``, not ``loop.time()`` (uvloop's counts whole milliseconds, which could make a
  ping early by one).
- Each ping runs in a short task of its own, so a client that stops reading (its writes back up and
  ``ping()`` waits for room) holds up no other connection. The pong must arrive within ``timeout``
  of the ping being due, or the connection is closed with 1011 "keepalive ping timeout", as
  websockets does. At most one ping per connection is in flight.
- A close that cannot even be written (the client reads nothing) is given ``close_timeout`` plus one
  second, then the connection is aborted.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from .metrics import NoMetrics

log = logging.getLogger("wsfleet_echo")

SLICES = 20


class Keepalive:
    """Ping every registered connection every ``interval`` s; close those silent for ``timeout`` s."""

    def __init__(self, interval: float, timeout: float | None, close_timeout: float, counts: NoMetrics | None = None) -> None:
        self.interval = interval
        self.counts = counts or NoMetrics()
        self.timeout = timeout
        self.close_timeout = close_timeout
        # Each group maps its connections to the time.monotonic() at which they opened.
        self._groups: list[dict[ServerConnection, float]] = [{} for _slice in range(SLICES)]
        # The ping in flight for each connection; also keeps a reference to each task (asyncio keeps
        # only weak ones).
        self._pings: dict[ServerConnection, asyncio.Task[None]] = {}

    # A connection's group follows from its random UUID: groups fill evenly (hash() would not: it is
    # the object's address, and addresses are aligned).
    def add(self, connection: ServerConnection) -> None:
        self._groups[connection.id.int % SLICES][connection] = time.monotonic()

    def discard(self, connection: ServerConnection) -> None:
        self._groups[connection.id.int % SLICES].pop(connection, None)

    async def run(self) -> None:
        """Ping one group per step, forever (until cancelled); then cancel the pings in flight."""
        loop = asyncio.get_running_loop()
        step = self.interval / SLICES
        start = loop.time()
        try:
            for tick in itertools.count(1):
                # Steps are kept on a fixed schedule: a late wake-up does not push the next ones back.
                await asyncio.sleep(max(0.0, start + tick * step - loop.time()))
                # Read after the wake-up and before any ping of this turn starts: a connection that
                # opened after `due` is younger than one interval and waits for the group's next turn.
                due = time.monotonic() - self.interval
                for connection, opened in tuple(self._groups[tick % SLICES].items()):
                    if opened <= due and connection not in self._pings:
                        self._pings[connection] = loop.create_task(self._ping(connection))
        finally:
            for task in self._pings.values():
                task.cancel()

    async def _ping(self, connection: ServerConnection) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                pong = await connection.ping()
                self.counts.ping_sent()
                if self.timeout is not None:
                    await pong
        except ConnectionClosed:
            pass
        except TimeoutError:
            self.counts.ping_timed_out()
            try:
                # close() gives up on the client's answer after close_timeout by itself; the extra
                # second bounds a close frame that cannot be written because the client reads nothing.
                async with asyncio.timeout(self.close_timeout + 1):
                    await connection.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            except TimeoutError:
                connection.transport.abort()
        except Exception:
            log.error("keepalive ping failed", exc_info=True)
        finally:
            self._pings.pop(connection, None)
