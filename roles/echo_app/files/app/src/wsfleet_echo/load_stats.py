"""What the load client counts: a fixed-size latency histogram and the counters of one worker.

Workers pickle their :class:`WorkerStats` back to the parent, which merges them; both objects have a
bounded size whatever the number of messages.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

#: Close codes a server sends when it ends connections on purpose: normal, going away, restart.
CLEAN_CLOSE_CODES = frozenset({1000, 1001, 1012})
#: The code recorded when a connection ends without a close frame (RFC 6455 section 7.1.5).
ABNORMAL_CLOSE_CODE = 1006

_BASE = 1.01  # bucket i holds [MIN * BASE**i, MIN * BASE**(i+1)): reported values are within 0.5 %
_INV_LOG_BASE = 1 / math.log(_BASE)
_MIN_S = 1e-6  # everything under 1 us shares bucket 0
_MAX_S = 3600.0  # everything over an hour shares the last bucket (min/max stay exact)
_BUCKETS = int(math.log(_MAX_S / _MIN_S) * _INV_LOG_BASE) + 1


class Histogram:
    """Latencies in seconds, in logarithmic buckets: about 2,200 counters, < 0.5 % error per quantile.

    ``min`` and ``max`` are exact; quantiles are clamped to them, so p50 <= p90 <= p99 <= max always.
    """

    __slots__ = ("counts", "count", "total", "min", "max")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def add(self, seconds: float) -> None:
        """Record one latency."""
        index = int(math.log(seconds / _MIN_S) * _INV_LOG_BASE) if seconds > _MIN_S else 0
        self.counts[index if index < _BUCKETS else _BUCKETS - 1] += 1
        self.count += 1
        self.total += seconds
        if seconds < self.min:
            self.min = seconds
        if seconds > self.max:
            self.max = seconds

    def merge(self, other: Histogram) -> None:
        """Add another histogram's samples to this one."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """The nearest-rank q-quantile (0 < q <= 1) in seconds, or None without samples."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                middle = _MIN_S * _BASE ** (index + 0.5)
                return min(max(middle, self.min), self.max)
        return self.max  # unreachable: the counts add up to self.count

    def mean(self) -> float | None:
        """The exact mean in seconds, or None without samples."""
        return self.total / self.count if self.count else None


@dataclass
class WorkerStats:
    """Everything one worker counted; the parent merges the workers' stats into one."""

    handshakes_ok: int = 0
    #: failed handshakes by reason, e.g. "HTTP 503", "ECONNREFUSED (Connection refused)", "timeout"
    handshakes_failed: Counter[str] = field(default_factory=Counter)
    #: connections the server (or the network) ended during the run, by close code (1006: no close frame)
    closes: Counter[int] = field(default_factory=Counter)
    #: client-side failures on established connections, e.g. "echo timeout"
    errors: Counter[str] = field(default_factory=Counter)
    #: successful handshakes by the serving process's X-Wsfleet-Process header ("-" when absent)
    spread: Counter[str] = field(default_factory=Counter)
    #: echo round trips started inside the measured window (their latencies are in ``latency``)
    round_trips: int = 0
    #: echo round trips over the whole run, ramp included
    round_trips_total: int = 0
    latency: Histogram = field(default_factory=Histogram)
    #: connections still open when the run ended
    open_at_end: int = 0
    #: seconds of the measured window this worker saw (shorter than the duration when stopped early)
    window_s: float = 0.0

    def merge(self, other: WorkerStats) -> None:
        """Add another worker's counts to these."""
        self.handshakes_ok += other.handshakes_ok
        self.handshakes_failed.update(other.handshakes_failed)
        self.closes.update(other.closes)
        self.errors.update(other.errors)
        self.spread.update(other.spread)
        self.round_trips += other.round_trips
        self.round_trips_total += other.round_trips_total
        self.latency.merge(other.latency)
        self.open_at_end += other.open_at_end
        self.window_s = max(self.window_s, other.window_s)
