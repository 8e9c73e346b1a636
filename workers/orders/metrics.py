"""Saga figures of the orders example, read back from the event store.

A saga starts when its ``PlaceOrder`` command is stored and ends with
``OrderCompleted`` or ``OrderCancelled``; both carry their time in the message
headers, so the figures need no clock shared with the workers.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["SagaFigures", "saga_figures", "percentile"]


@dataclass(frozen=True)
class SagaFigures:
    """Outcome and speed of the sagas in one store."""

    completed: int
    compensated: int
    sagas_per_second: float
    p50_ms: float
    p95_ms: float
    span_seconds: float = 0.0


def saga_figures(domain: Any) -> SagaFigures:
    """Count ended sagas and measure their latency and throughput."""
    with domain.domain_context():
        store = domain.event_store.store
        starts = {
            m.data["order_id"]: _time(m)
            for m in store.read_all("orders::order:command")
            if m.metadata.headers.type == "Orders.PlaceOrder.v1"
        }
        ends: dict[str, tuple[str, datetime]] = {}
        for m in store.read_all("orders::order"):
            kind = m.metadata.headers.type
            if kind in ("Orders.OrderCompleted.v1", "Orders.OrderCancelled.v1"):
                ends[m.data["order_id"]] = (kind, _time(m))
    latencies = sorted(
        (end - starts[order]).total_seconds() * 1000
        for order, (_, end) in ends.items()
        if order in starts
    )
    completed = sum(
        1 for kind, _ in ends.values() if kind.endswith("OrderCompleted.v1")
    )
    span = (
        (max(t for _, t in ends.values()) - min(starts.values())).total_seconds()
        if ends and starts
        else 0
    )
    return SagaFigures(
        completed=completed,
        compensated=len(ends) - completed,
        sagas_per_second=len(ends) / span if span > 0 else 0.0,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        span_seconds=span,
    )


def _time(message: Any) -> datetime:
    value = message.metadata.headers.time
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def percentile(values: list[float], pct: int) -> float:
    """The ``pct``-th percentile of ``values`` (inclusive method; 0.0 when empty)."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]
