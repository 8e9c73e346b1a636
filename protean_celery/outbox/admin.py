"""Outbox health: counts, listings and requeueing of Protean's outbox rows (I/O).

Behind ``celery -A app protean outbox status|list|requeue``. Everything goes
through Protean's outbox repositories (one per provider that holds aggregates),
and sees only this domain's rows (:func:`~protean_celery.outbox.rows.domain_rows`):
another domain sharing the database keeps its own.

Statuses are Protean's (``pending``, ``processing``, ``published``, ``failed``,
``abandoned``) plus one of ours, **stuck**: a FAILED row whose ``retry_count``
reached its ``max_retries`` column. ``claim_batch`` never claims it again and
``mark_failed`` never abandons it. Protean's own ``OutboxProcessor`` leaves rows
so when ``[outbox.retry] max_attempts`` exceeds the column (always 3); the relay
never does, since it writes ``max_attempts`` onto the row when it fails.

Requeueing resets a failed, stuck or abandoned row with Protean's
``reset_for_retry()`` (PENDING, no retry time, no lock), sets ``retry_count`` to 0
and ``max_retries`` to ``max_attempts``; the next relay tick publishes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from protean.core.unit_of_work import UnitOfWork
from protean.exceptions import ObjectNotFoundError
from protean.utils.outbox import OutboxStatus
from protean.utils.query import F, Q

from protean_celery.errors import OutboxError, OutboxRowNotFound
from protean_celery.outbox.rows import domain_prefix, domain_rows
from protean_celery.protean_api import outbox_providers, outbox_query, outbox_repo

__all__ = [
    "STUCK",
    "STATUSES",
    "OutboxRow",
    "counts",
    "list_rows",
    "max_attempts",
    "providers",
    "requeue",
    "requeue_all",
    "stuck_criteria",
]

#: A FAILED row with no retries left: never claimed, never abandoned.
STUCK = "stuck"

#: Every status ``list_rows`` and ``counts`` know, in lifecycle order.
STATUSES = ("pending", "processing", "failed", STUCK, "abandoned", "published")

_REQUEUEABLE = (OutboxStatus.FAILED.value, OutboxStatus.ABANDONED.value)


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row, as the CLI shows it.

    Attributes:
        id: the row id (what ``protean outbox requeue`` takes).
        provider: the database provider whose outbox holds it.
        type: the message type.
        stream: the aggregate instance's stream.
        status: Protean's status, or ``stuck``.
        retry_count: failed publishing attempts so far.
        max_retries: attempts allowed (the row's column).
        error: the last error's message, with its reason when there is one.
        created_at: when the Unit of Work wrote it.
        last_processed_at: the last claim or failure.
        next_retry_at: when a failed row becomes claimable again.
        locked_until: when a processing row's claim expires.
        published_at: when it was published.
    """

    id: str
    provider: str
    type: str
    stream: str
    status: str
    retry_count: int
    max_retries: int
    error: str | None
    created_at: datetime | None
    last_processed_at: datetime | None
    next_retry_at: datetime | None
    locked_until: datetime | None
    published_at: datetime | None


def max_attempts(domain: Any) -> int:
    """``[outbox.retry] max_attempts``: publishing attempts before a row is abandoned (at least 1)."""
    retry = (domain.config.get("outbox") or {}).get("retry") or {}
    return max(int(retry.get("max_attempts", 3)), 1)


def providers(domain: Any) -> list[str]:
    """The database providers with an outbox the relay serves."""
    return outbox_providers(domain)


def stuck_criteria() -> Q:
    """FAILED rows whose ``retry_count`` reached ``max_retries`` (evaluated in the database)."""
    return Q(status=OutboxStatus.FAILED.value) & Q(retry_count__gte=F("max_retries"))


def counts(domain: Any) -> dict[str, dict[str, int]]:
    """This domain's rows per status (``failed`` without the ``stuck`` ones), per provider."""
    result: dict[str, dict[str, int]] = {}
    with domain.domain_context():
        for provider in providers(domain):
            query = outbox_query(domain, provider).filter(domain_rows(domain))
            result[provider] = {status: int(query.filter(_criteria(status)).count()) for status in STATUSES}
    return result


def list_rows(domain: Any, status: str | None = None, limit: int = 50) -> list[OutboxRow]:
    """Rows of ``status`` (default: every status but ``published``), newest first.

    Raises:
        OutboxError: an unknown status.
    """
    criteria = _criteria(status)
    found: list[OutboxRow] = []
    with domain.domain_context():
        for provider in providers(domain):
            query = outbox_query(domain, provider).filter(criteria & domain_rows(domain)).order_by("-created_at")
            found.extend(_view(provider, row) for row in query.limit(limit).all().items)
    found.sort(key=lambda row: row.created_at.timestamp() if row.created_at else 0.0, reverse=True)
    return found[:limit]


def requeue(domain: Any, ids: Iterable[str]) -> list[str]:
    """Reset the rows ``ids`` to PENDING for the next relay tick; returns their ids.

    Nothing changes unless every row exists and is failed, stuck or abandoned.

    Raises:
        OutboxRowNotFound: no provider's outbox has one of the ids.
        OutboxError: a row is pending, processing or published.
    """
    with domain.domain_context():
        found = [_find(domain, str(row_id)) for row_id in ids]
        for _provider, row in found:
            if row.status not in _REQUEUEABLE:
                raise OutboxError(
                    f"Outbox row {row.id} is {row.status}: only failed, stuck or abandoned rows can be requeued.",
                    row_id=str(row.id), status=row.status,
                )
        _reset(domain, found)
    return [str(row.id) for _provider, row in found]


def requeue_all(domain: Any, status: str) -> list[str]:
    """Reset every ``abandoned`` (or ``stuck``, or ``failed``) row to PENDING; returns their ids.

    Raises:
        OutboxError: ``status`` is not one of those.
    """
    if status not in ("abandoned", STUCK, "failed"):
        raise OutboxError(f"Only abandoned, stuck or failed rows can be requeued, not {status!r}.", status=status)
    criteria = _criteria(status)
    with domain.domain_context():
        found = [
            (provider, row)
            for provider in providers(domain)
            for row in outbox_query(domain, provider).filter(criteria & domain_rows(domain)).all().items
        ]
        _reset(domain, found)
    return [str(row.id) for _provider, row in found]


def _reset(domain: Any, found: list[tuple[str, Any]]) -> None:
    if not found:
        return
    attempts = max_attempts(domain)
    with UnitOfWork():
        for provider, row in found:
            row.reset_for_retry()
            row.retry_count = 0
            row.max_retries = attempts  # so claim_batch and the relay agree (see relay.py)
            outbox_repo(domain, provider).add(row)


def _find(domain: Any, row_id: str) -> tuple[str, Any]:
    for provider in providers(domain):
        try:
            row = outbox_repo(domain, provider).get(row_id)
        except ObjectNotFoundError:
            continue
        if str(row.stream_name).startswith(domain_prefix(domain)):  # not another domain's row
            return provider, row
    raise OutboxRowNotFound(
        f"No outbox row {row_id!r}: `celery -A <app> protean outbox list` shows the ids.", row_id=row_id
    )


def _criteria(status: str | None) -> Q:
    if status is None:
        return Q(status__in=[s.value for s in OutboxStatus if s is not OutboxStatus.PUBLISHED])
    if status == STUCK:
        return stuck_criteria()
    if status == OutboxStatus.FAILED.value:
        return Q(status=status) & Q(retry_count__lt=F("max_retries"))
    if status in STATUSES:
        return Q(status=status)
    raise OutboxError(f"Unknown outbox status {status!r}: use one of {', '.join(STATUSES)}.", status=status)


def _view(provider: str, row: Any) -> OutboxRow:
    stuck = row.status == OutboxStatus.FAILED.value and row.retry_count >= row.max_retries
    error = row.last_error or {}
    text = error.get("message")
    if text and error.get("reason"):
        text = f"{text} ({error['reason']})"
    return OutboxRow(
        id=str(row.id), provider=provider, type=str(row.type), stream=str(row.stream_name),
        status=STUCK if stuck else str(row.status), retry_count=int(row.retry_count),
        max_retries=int(row.max_retries), error=text, created_at=row.created_at,
        last_processed_at=row.last_processed_at, next_retry_at=row.next_retry_at,
        locked_until=row.locked_until, published_at=row.published_at,
    )
