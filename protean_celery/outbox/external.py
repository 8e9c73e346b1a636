"""External brokers: the outbox rows for ``[outbox] external_brokers``, published through Protean's adapters (I/O).

For an event class declared ``published=True``, Protean's Unit of Work writes one
more outbox row per name in ``[outbox] external_brokers``, with that name as its
``target_broker``. Protean's own server publishes such a row with that broker's
adapter, ``domain.brokers[name].publish(stream_category, message.to_external_dict())``
(its "external" outbox processor). The relay does the same, and claims, retries,
abandons and releases these rows exactly as it does internal ones
(:mod:`protean_celery.outbox.claims`), so ``protean outbox`` lists and requeues both:

* each beat tick claims, per provider, the rows of each external broker after
  the internal ones, and publishes them one by one;
* the fast path claims by id the rows for an external broker that a commit just
  wrote, publishes them and records the outcomes as a tick does;
* a row that cannot be published is marked failed with ``[outbox.retry]`` backoff,
  retried by the first tick after it, and ABANDONED after ``max_attempts``. An
  external broker that is down counts as an attempt, as under Protean's own
  processor (the Celery broker being down does not: no task could run anyway).
  Once one row finds the broker down, the rest of the batch fail with the same
  error without a wait each.

Each outcome is traced as Protean's ``outbox.external_published`` or
``outbox.external_failed``. A row for the internal broker never reaches an external
broker, and a row for an external broker never reaches a handler task. :func:`external_brokers` checks the
names when the app is built: one that is not a broker in ``[brokers]`` would
otherwise leave its rows pending for ever.
"""

from __future__ import annotations

import logging
from typing import Any

from protean.utils.globals import current_uow

from protean_celery.errors import ConfigurationError, RelayError
from protean_celery.outbox.claims import OutboxClaims, Outcomes, broker_down
from protean_celery.outbox.report import RelayReport
from protean_celery.outbox.rows import internal_broker, outbox_message
from protean_celery.protean_api import outbox_repo
from protean_celery.traces.events import relayed

__all__ = ["ExternalRelay", "external_brokers", "publish_external"]

logger = logging.getLogger("protean_celery.outbox.relay")


def external_brokers(domain: Any) -> tuple[str, ...]:
    """The broker names of ``[outbox] external_brokers``, each checked against ``[brokers]``.

    Args:
        domain: the Protean domain (its ``config`` only is read).

    Raises:
        ConfigurationError: the setting is not a list of names, or names a broker
            that ``[brokers]`` does not configure, or the internal broker (``[outbox] broker``).
    """
    outbox = domain.config.get("outbox") or {}
    names = outbox.get("external_brokers") or []
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise ConfigurationError(
            f"[outbox] external_brokers must be a list of broker names, such as [\"analytics\"], not {names!r}."
        )
    configured = sorted(domain.config.get("brokers") or {})
    for name in names:
        if name not in configured:
            raise ConfigurationError(
                f"[outbox] external_brokers names {name!r}, which is not a broker in [brokers] "
                f"(configured: {', '.join(configured) or 'none'}). Add a [brokers.{name}] table with its "
                f"provider (redis, say), or remove {name!r} from external_brokers.",
                broker=name,
            )
        if name == internal_broker(domain):
            raise ConfigurationError(
                f"[outbox] external_brokers names {name!r}, which is also the internal broker ([outbox] broker): "
                "Protean would write two outbox rows with one (message_id, target_broker). Name another broker.",
                broker=name,
            )
    return tuple(dict.fromkeys(names))


def publish_external(broker: Any, row: Any) -> Any:
    """Publish one outbox row to an external broker as Protean's external outbox processor does.

    Args:
        broker: the Protean broker (``domain.brokers[row.target_broker]``).
        row: Protean's outbox entity.

    Returns:
        The broker's identifier of the message.

    Raises:
        RelayError: a Unit of Work is active (Protean's broker would only record
            the message with it, not publish it).
        Exception: whatever the broker adapter raises.
    """
    if current_uow:
        raise RelayError("External outbox rows are published outside any Unit of Work; one is active.")
    message, category = outbox_message(row)
    return broker.publish(category, message.to_external_dict())


class ExternalRelay(OutboxClaims):
    """Relays outbox rows for external brokers; mixed into :class:`~protean_celery.outbox.relay.Relay`."""

    #: The external broker names (``[outbox] external_brokers``), checked.
    externals: tuple[str, ...] = ()

    def _external_batch(self, provider: str, report: RelayReport, grace: bool) -> None:
        """Claim and publish one batch of ``provider``'s rows for each external broker."""
        for name in self.externals:
            self._relay_external(provider, name, report, grace=grace)

    def _publish_external_committed(self, rows: list[tuple[str, Any]]) -> int:
        """Publish the ``(provider, row)`` pairs a commit just wrote for external brokers; returns how many.

        Unlike internal rows (whose duplicates the inbox absorbs), they are claimed
        by id first, so a tick can never publish one a second time meanwhile. A row
        for a broker this app does not know is left alone (``pending`` counts it).
        """
        report = RelayReport()
        wanted: dict[tuple[str, str], list[Any]] = {}
        for provider, row in rows:
            if str(row.target_broker) in self.externals:
                wanted.setdefault((provider, str(row.target_broker)), []).append(row.id)
        for (provider, name), ids in wanted.items():
            self._relay_external(provider, name, report, ids=ids)
        return report.external

    def _relay_external(
        self, provider: str, name: str, report: RelayReport, grace: bool = False, ids: list[Any] | None = None
    ) -> None:
        repo = outbox_repo(self.domain, provider)
        rows = self._claim(repo, name, grace, ids=ids)
        if not rows:
            return
        outcomes = self._publish_external_rows(name, rows)
        relayed(self.domain, rows, outcomes, self.worker_id, external=True)  # outbox.external_published/failed
        self._record(repo, outcomes)
        published = sum(1 for error in outcomes.values() if error is None)
        report.events += published
        report.external += published
        report.failed += len(outcomes) - published

    def _publish_external_rows(self, name: str, rows: list[Any]) -> Outcomes:
        broker = self.domain.brokers[name]
        outcomes: Outcomes = {}
        down: Exception | None = None
        for row in rows:
            if down is not None:
                outcomes[row.id] = down  # the broker is down: recorded like the row that found out
                continue
            try:
                publish_external(broker, row)
                outcomes[row.id] = None
            except Exception as exc:
                logger.warning("relay: publishing outbox row %s to external broker %r failed: %s", row.id, name, exc)
                outcomes[row.id] = exc  # recorded on the row, retried with backoff
                down = exc if broker_down(exc) else None
        return outcomes
