"""Claiming outbox rows and recording what became of them, for one domain and one target broker (I/O).

Both halves of the event relay go through here: the rows for the internal broker
(published as Celery tasks, ``relay.py``) and the rows for each external broker
(published through Protean's broker adapter, ``external.py``). So both claim,
retry, abandon and release rows the same way, and ``protean outbox`` shows and
requeues both alike:

* **Claim**: rows of this domain (:func:`~protean_celery.outbox.rows.domain_rows`)
  for one ``target_broker`` that Protean's ``claim_batch`` would claim, in one
  statement (``SKIP LOCKED`` on PostgreSQL). A beat tick (``grace``) leaves rows
  younger than ``relay_grace_seconds`` to the fast path publishing them by id.
* **Published**: one guarded bulk update; only rows still locked by this relay change.
* **Failed**: Protean's ``mark_failed`` with ``[outbox.retry]`` backoff; the
  ``max_attempts``-th failure makes the row ABANDONED with its error.
* **Unreachable** (an outcome of :class:`Unreachable`): back to PENDING with its
  attempts untouched, and the tick fails with a :class:`~protean_celery.errors.RelayError`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from protean.core.unit_of_work import UnitOfWork
from protean.utils.outbox import OutboxStatus
from protean.utils.query import Q

from protean_celery.errors import RelayError
from protean_celery.outbox.admin import max_attempts
from protean_celery.outbox.rows import domain_rows
from protean_celery.protean_api import outbox_claim, outbox_eligible, outbox_repo, outbox_update

__all__ = ["OutboxClaims", "Unreachable", "broker_down"]

#: What publishing one row came to: ``None`` (published) or the error.
Outcomes = dict[Any, "Exception | None"]


class Unreachable(Exception):
    """The broker could not be reached while publishing an outbox row (not the row's fault)."""


class OutboxClaims:
    """Claims and marks outbox rows; mixed into :class:`~protean_celery.outbox.relay.Relay`.

    Reads ``domain``, ``settings`` and ``worker_id`` from the relay, when called,
    so a relay whose settings are replaced claims with the new ones.
    """

    domain: Any
    settings: Any
    worker_id: str

    def _claim(self, repo: Any, target_broker: str, grace: bool = False, ids: list[Any] | None = None) -> list[Any]:
        """Claim a batch of this domain's rows for ``target_broker``, as Protean's ``claim_batch`` does.

        With ``grace``, rows younger than ``relay_grace_seconds`` are left to the
        fast path that is publishing them by id (``publish_committed``). With
        ``ids``, only those rows (the fast path's own) are claimed.
        """
        now = self.domain.clock.now()
        criteria = outbox_eligible(repo, now, target_broker) & domain_rows(self.domain)
        seconds = self.settings.relay_grace_seconds if grace else 0.0
        if seconds > 0:
            criteria &= Q(created_at__lt=now - timedelta(seconds=seconds))
        if ids is not None:
            criteria &= Q(id__in=list(ids))
        return outbox_claim(
            repo,
            criteria,
            {
                "status": OutboxStatus.PROCESSING.value,
                "locked_by": self.worker_id,
                "locked_until": now + timedelta(minutes=self.settings.lock_minutes),
                "last_processed_at": now,
            },
            limit=max(self.settings.relay_batch_size, len(ids or ())),
            order_by="-priority",
        )

    def _mark_published(self, published: dict[str, list[Any]]) -> None:
        """Mark rows a commit wrote, and the fast path published by id, as published (only if still pending)."""
        now = self.domain.clock.now()
        for provider, ids in published.items():
            outbox_update(
                outbox_repo(self.domain, provider),
                Q(id__in=ids) & Q(status=OutboxStatus.PENDING.value) & domain_rows(self.domain),
                status=OutboxStatus.PUBLISHED.value, published_at=now, last_processed_at=now,
            )

    def _record(self, repo: Any, outcomes: Outcomes) -> None:
        """Record each claimed row's outcome; rows another relay took meanwhile keep that relay's.

        Raises:
            RelayError: some rows found the broker unreachable (they stay pending).
        """
        now = self.domain.clock.now()
        published = [row_id for row_id, error in outcomes.items() if error is None]
        self._release(repo, published, status=OutboxStatus.PUBLISHED.value, published_at=now,
                      last_processed_at=now, last_error=None)
        unreachable = [row_id for row_id, error in outcomes.items() if isinstance(error, Unreachable)]
        self._release(repo, unreachable, status=OutboxStatus.PENDING.value)
        failed = {
            row_id: error for row_id, error in outcomes.items()
            if error is not None and not isinstance(error, Unreachable)
        }
        if failed:
            self._record_failures(repo, failed, now)
        if unreachable:
            raise RelayError(
                f"The broker is unreachable; {len(unreachable)} outbox row(s) stay pending for the next relay tick: "
                f"{outcomes[unreachable[0]]}"
            )

    def _release(self, repo: Any, ids: list[Any], **values: Any) -> None:
        """Unlock the rows ``ids`` with ``values``, in one guarded bulk update (the DAO's path for the outbox).

        Only rows still locked by this relay change: a row whose claim expired and
        that another relay took keeps that relay's outcome.
        """
        if ids:
            outbox_update(repo, Q(id__in=ids) & Q(locked_by=self.worker_id), locked_by=None, locked_until=None,
                          **values)

    def _record_failures(self, repo: Any, failed: dict[Any, Exception], now: Any) -> None:
        retry = (self.domain.config.get("outbox") or {}).get("retry") or {}
        base_delay = int(retry.get("base_delay_seconds", 1))
        attempts = max_attempts(self.domain)
        with UnitOfWork():
            for row_id, error in failed.items():
                row = repo.get(row_id)
                if row.locked_by != self.worker_id:
                    continue  # our claim expired and another relay took the row: its outcome stands
                # [outbox.retry] max_attempts goes onto the row too: claim_batch
                # stops claiming at retry_count == max_retries (the column, always
                # 3 when Protean writes it), so the two must agree or the row is
                # stuck in FAILED. The last attempt's failure makes it ABANDONED.
                row.max_retries = attempts
                row.mark_failed(error, base_delay_seconds=base_delay, max_retries=attempts, now=now)
                repo.add(row)


def broker_down(exc: BaseException) -> bool:
    """Whether ``exc`` means a broker is unreachable (a connection or timeout error in its chain)."""
    from protean_celery.tasks.retry import Failure, classify

    return classify(exc) is Failure.TRANSIENT
