"""Prometheus metrics of an engine (needs ``limiter[metrics]``): decisions by limit and outcome,
store errors, round-trip latency, admin changes, detected data-set flushes. Read from the
engine's :class:`Stats` and data status at scrape time, so the engine itself never depends on
prometheus-client.

Mount the endpoint with ``app.include_router(metrics_router())``; it serves ``/metrics`` for
the engine on ``app.state.limiter``.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from limiter.engine import AsyncLimiter, Limiter
from limiter.fastapi import get_limiter
from limiter.stats import LATENCY_BUCKETS


class LimiterCollector(Collector):
    """Exposes one engine's counters; register it on any prometheus-client registry."""

    def __init__(self, limiter: AsyncLimiter | Limiter) -> None:
        self.limiter = limiter

    def collect(self) -> Iterator[Metric]:
        stats = self.limiter.stats
        decisions = CounterMetricFamily(
            "limiter_decisions",
            "Limit decisions by limit and outcome (allowed, refused, shadow_refused)",
            labels=["limit", "outcome"],
        )
        for (limit, outcome), count in sorted(stats.decisions.items()):
            decisions.add_metric([limit, outcome], count)
        yield decisions
        errors = CounterMetricFamily(
            "limiter_store_errors",
            "Round trips that found the store unavailable, by operation",
            labels=["operation"],
        )
        for operation, count in sorted(stats.store_errors.items()):
            errors.add_metric([operation], count)
        yield errors
        changes = CounterMetricFamily(
            "limiter_admin_changes", "Plan changes and reconciles made", labels=["action"]
        )
        for action, count in sorted(stats.admin_changes.items()):
            changes.add_metric([action], count)
        yield changes
        resets = CounterMetricFamily(
            "limiter_data_resets",
            "Flushed or replaced Redis data sets detected (the data-set marker changed)",
        )
        resets.add_metric([], self.limiter.data_status().resets)
        yield resets
        latency = HistogramMetricFamily(
            "limiter_store_seconds",
            "Latency of one store round trip (a script run or a pipeline), by operation",
            labels=["operation"],
        )
        bounds = [str(bound) for bound in LATENCY_BUCKETS] + ["+Inf"]
        for operation, histogram in sorted(stats.latency.items()):
            cumulative = list(accumulate(histogram.buckets))
            latency.add_metric(
                [operation], list(zip(bounds, cumulative, strict=True)), histogram.sum
            )
        yield latency


def render(limiter: AsyncLimiter | Limiter) -> bytes:
    """The engine's metrics in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LimiterCollector(limiter))
    return generate_latest(registry)


def metrics_router(path: str = "/metrics") -> APIRouter:
    """A router serving the metrics of the engine on ``app.state.limiter`` at ``path``."""
    router = APIRouter(tags=["metrics"])

    @router.get(
        path,
        summary="Prometheus metrics of the limiter",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "metrics"}},
    )
    async def metrics(request: Request) -> Response:
        return Response(render(get_limiter(request)), media_type=CONTENT_TYPE_LATEST)

    return router
