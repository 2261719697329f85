"""In-process counters of one engine: decisions, store errors, round-trip latency, admin
changes. Plain data; :mod:`limiter.metrics` exposes them to Prometheus."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

# Upper bounds, in seconds, of the round-trip latency histogram's buckets (the last is +Inf).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Histogram:
    """Observations counted per bucket (not cumulative; index ``len(LATENCY_BUCKETS)`` is
    +Inf), with their sum."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    sum: float = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds


@dataclass
class Stats:
    """What one engine did since it was built."""

    # (limit, "allowed" | "refused" | "shadow_refused") -> decisions
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    # round trip ("add_members", ..., "pipeline") -> outages seen
    store_errors: Counter[str] = field(default_factory=Counter)
    # plan change ("set_edition", "set_override", "reconcile", ...) -> changes made
    admin_changes: Counter[str] = field(default_factory=Counter)
    # round trip -> its latency
    latency: dict[str, Histogram] = field(default_factory=dict)

    def observe(self, request: str, seconds: float) -> None:
        histogram = self.latency.get(request)
        if histogram is None:
            histogram = self.latency[request] = Histogram()
        histogram.observe(seconds)
