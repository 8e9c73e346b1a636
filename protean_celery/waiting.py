"""How long the oldest outbox work has waited, per provider (I/O).

Two questions about the outbox rows the relay has yet to publish (pending,
processing, and failed with retries left; stuck and abandoned rows wait for an
operator, not for the relay):

* ``oldest_unpublished``: the age of the oldest such row since it was written
  (``created_at``): the outbox part of a message's delay;
* ``oldest_due``: how long the oldest row that a relay tick should already have
  published has been due: a pending row since it was written, a failed row
  since its ``next_retry_at``. A relay that ticks keeps this near zero.

Only this domain's rows count (another domain may share the outbox table; see
:func:`~protean_celery.outbox.rows.domain_rows`). Times are read back and compared
in Python (a naive value is UTC), so SQLite's timezone-less columns compare the
same as PostgreSQL's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from protean.utils.outbox import OutboxStatus
from protean.utils.query import Q

from protean_celery.outbox.admin import providers, stuck_criteria
from protean_celery.outbox.rows import domain_rows
from protean_celery.protean_api import outbox_query

__all__ = ["oldest_unpublished", "oldest_due"]

_UNPUBLISHED = (OutboxStatus.PENDING.value, OutboxStatus.PROCESSING.value, OutboxStatus.FAILED.value)


def oldest_unpublished(domain: Any, now: datetime | None = None) -> dict[str, float | None]:
    """Seconds since the oldest row still to publish was written, per provider (``None``: no such row)."""
    now = now or datetime.now(UTC)
    criteria = Q(status__in=list(_UNPUBLISHED)) & ~stuck_criteria()
    with domain.domain_context():
        return {
            provider: _age(now, _first(domain, provider, criteria, "created_at"), "created_at")
            for provider in providers(domain)
        }


def oldest_due(domain: Any, now: datetime | None = None) -> dict[str, float | None]:
    """Seconds the oldest row a relay tick should have published has been due, per provider (``None``: none)."""
    now = now or datetime.now(UTC)
    failed = Q(status=OutboxStatus.FAILED.value) & ~stuck_criteria()
    found: dict[str, float | None] = {}
    with domain.domain_context():
        for provider in providers(domain):
            pending = _age(now, _first(domain, provider, Q(status=OutboxStatus.PENDING.value), "created_at"),
                           "created_at")
            retry = _age(now, _first(domain, provider, failed, "next_retry_at"), "next_retry_at")
            ages = [age for age in (pending, retry) if age is not None]
            found[provider] = max(ages) if ages else None
    return found


def _first(domain: Any, provider: str, criteria: Q, order: str) -> Any:
    query = outbox_query(domain, provider).filter(criteria & domain_rows(domain)).order_by(order)
    items = query.limit(1).all().items
    return items[0] if items else None


def _age(now: datetime, row: Any, field: str) -> float | None:
    value = getattr(row, field, None) if row is not None else None
    if not isinstance(value, datetime):
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return max((now - value).total_seconds(), 0.0)
