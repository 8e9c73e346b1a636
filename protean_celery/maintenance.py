"""Maintenance: prune what protean-celery and Protean's outbox keep forever otherwise (I/O).

Beat runs the relay-queue task ``<prefix>.<domain>.relay.maintenance`` every
``maintenance_interval`` seconds (default 300). Each run:

* deletes inbox markers older than ``inbox_retention_hours`` (default 168). A
  marker is what makes a redelivered message a duplicate, so the retention must
  stay above the longest redelivery window: the broker's visibility timeout, the
  outbox claim lock (``lock_minutes``) and the longest a message can wait in a
  queue. Settings refuse a retention shorter than the first two.
* deletes ordered lanes (``protean_celery_turns``) that have not moved for
  ``inbox_retention_hours``: a lane seen again starts over, and passes over
  predecessors older than that retention (:mod:`protean_celery.ordering`);
* deletes dead letters whose last failure is older than
  ``dead_letter_retention_days`` (default ``0``: keep them until you purge them);
* runs Protean's ``cleanup_old_messages`` on every outbox provider, with
  ``[outbox.cleanup] published_retention_hours``, ``abandoned_retention_hours``
  and ``batch_size`` (the retentions Protean's own processor uses).

A step that fails is logged and counted in ``errors``; the others still run.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from protean_celery.outbox.admin import providers
from protean_celery.protean_api import outbox_repo
from protean_celery.turns import Turns

if TYPE_CHECKING:
    from protean_celery.runtime import Runtime

__all__ = ["maintain", "prune_outbox"]

logger = logging.getLogger(__name__)


def maintain(runtime: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Run every maintenance step once; returns what each deleted.

    Args:
        runtime: the app's runtime (domain, settings, inbox, dead letters).
        now: the reference time (default: the current UTC time).

    Returns:
        ``{"inbox_markers", "lanes", "dead_letters", "outbox_published", "outbox_abandoned", "errors"}``
        counts, also logged.
    """
    now = now or datetime.now(UTC)
    settings = runtime.settings
    keys = ("inbox_markers", "lanes", "dead_letters", "outbox_published", "outbox_abandoned", "errors")
    report = dict.fromkeys(keys, 0)

    def step(name: str, action: Any) -> None:
        try:
            for key, count in action().items():
                report[key] += count
        except Exception:  # the other steps still run; the next tick tries again
            logger.exception("maintenance: %s failed", name)
            report["errors"] += 1

    step("pruning inbox markers", lambda: {
        "inbox_markers": runtime.inbox.prune(now - timedelta(hours=settings.inbox_retention_hours))
    })
    step("pruning ordered lanes", lambda: {
        "lanes": Turns(runtime.domain, runtime.inbox.provider).prune(
            now - timedelta(hours=settings.inbox_retention_hours)
        )
    })
    if settings.dead_letter_retention_days > 0:
        step("pruning dead letters", lambda: {
            "dead_letters": runtime.dead_letters.prune(now - timedelta(days=settings.dead_letter_retention_days))
        })
    step("cleaning up the outbox", lambda: prune_outbox(runtime.domain))
    logger.info("maintenance: %s", ", ".join(f"{key} {count}" for key, count in report.items()))
    return report


def prune_outbox(domain: Any) -> dict[str, int]:
    """Protean's ``cleanup_old_messages`` on every outbox provider, with ``[outbox.cleanup]`` retentions.

    Returns:
        ``{"outbox_published": n, "outbox_abandoned": n}`` summed over providers.
    """
    cleanup = (domain.config.get("outbox") or {}).get("cleanup") or {}
    options: dict[str, Any] = {
        "published_retention_hours": float(cleanup.get("published_retention_hours", 168)),
        "abandoned_retention_hours": float(cleanup.get("abandoned_retention_hours", 720)),
        "batch_size": cleanup.get("batch_size"),
    }
    totals = {"outbox_published": 0, "outbox_abandoned": 0}
    with domain.domain_context():
        for provider in providers(domain):
            deleted = outbox_repo(domain, provider).cleanup_old_messages(**options)
            totals["outbox_published"] += int(deleted["published"])
            totals["outbox_abandoned"] += int(deleted["abandoned"])
    return totals
