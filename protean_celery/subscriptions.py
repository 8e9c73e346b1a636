"""Protean's per-handler subscription settings under Celery: what each key means here, or why it has no meaning.

Protean's ``ConfigResolver`` reads a handler's settings from its ``Meta``
(``subscription_type``, ``subscription_profile``, ``subscription_config``,
``source_stream``) and from ``[server.subscriptions.<Handler>]``. Under Celery:

=================================  ============================================================
key                                here
=================================  ============================================================
``max_retries``,                   the handler's retry budget and first delay
``retry_delay_seconds``            (:mod:`protean_celery.tasks.retry`)
``origin_stream`` (``Meta``        a message whose ``origin_stream`` is of another category
``source_stream``)                 is skipped, marked handled (as Protean's event-store
                                   subscription filters it)
``enable_dlq = true``              what always happens: exhausted messages are dead-lettered
``subscription_type``,             accepted: every handler is a task fed by the relay,
``profile``                        whatever Protean would have polled; a profile's retry
                                   settings apply
``stream_category``                accepted when it is the handler's own (its queue is bound to
                                   that); refused when it differs
everything else                    refused at app build and by ``protean check``, naming the
                                   key and the reason (:data:`REASONS`)
=================================  ============================================================
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from protean_celery.errors import SubscriptionSettingError

__all__ = ["REASONS", "refusals", "refuse_unhonoured", "from_origin"]

#: Keys with a meaning under Celery (``enable_dlq`` and ``stream_category`` only with some values).
_ACCEPTED = frozenset({
    "max_retries", "retry_delay_seconds", "origin_stream", "source_stream", "subscription_type", "profile",
})

#: Why a key has no meaning under Celery.
REASONS: dict[str, str] = {
    "messages_per_tick": "workers take one message at a time (prefetch 1), there are no ticks: "
    "size throughput with worker_concurrency",
    "tick_interval": "workers take one message at a time (prefetch 1), there are no ticks",
    "blocking_timeout_ms": "workers consume Celery queues, they do not poll Protean's broker",
    "position_update_interval": "positions are the broker's acknowledgements, not Protean subscription positions",
    "retention_maxlen": "queues are Celery's and empty as they are consumed; Protean's stream trimming does not apply",
    "enable_dlq": "protean-celery never discards a message: the redelivery sweep would publish a discarded one "
    "again; exhausted messages are dead-lettered, purge them with `celery -A app protean dlq purge`",
    "dlq_retention_hours": "Protean 0.18's ConfigResolver does not read it from configuration either; dead letters "
    "stay until replayed or purged, or [custom.celery] dead_letter_retention_days prunes them",
    "dlq_alert_threshold": "Protean 0.18's ConfigResolver does not read it from configuration either; alert on the "
    "protean_celery_dead_letters metric (protean metrics) instead",
    "circuit_breaker_threshold": "there is no circuit breaker: a failing handler's messages are retried with "
    "backoff, then dead-lettered, and other handlers go on",
    "circuit_breaker_reset_seconds": "there is no circuit breaker: a failing handler's messages are retried with "
    "backoff, then dead-lettered, and other handlers go on",
    "stream_category": "a handler's queue is bound to the stream category of its Meta; set it there",
}

_HANDLER_KINDS = ("command_handlers", "event_handlers", "projectors", "process_managers")


def refusals(domain: Any) -> list[tuple[str, str]]:
    """Each per-handler setting ``domain`` declares that has no meaning here: ``(where, reason)``, stable order.

    Args:
        domain: a Protean domain (registry and ``config``; initialising it is not needed).
    """
    return list(_refusals(domain))


def refuse_unhonoured(domain: Any) -> None:
    """Refuse a domain that declares per-handler settings without a meaning under Celery.

    Raises:
        SubscriptionSettingError: naming every such key, where it is set, and why.
    """
    found = refusals(domain)
    if found:
        listed = "; ".join(f"{where}: {reason}" for where, reason in found)
        raise SubscriptionSettingError(f"Remove the per-handler settings protean-celery cannot honour: {listed}.")


def from_origin(domain: Any, handler_cls: Any, message: Any) -> bool:
    """Whether ``handler_cls`` takes ``message`` given its ``origin_stream`` (always, when it has none).

    As Protean's event-store subscription: the category of the message's
    ``metadata.domain.origin_stream`` must be the handler's ``origin_stream``.
    """
    wanted = _origin_stream(domain, handler_cls)
    if not wanted:
        return True
    origin = getattr(getattr(message.metadata, "domain", None), "origin_stream", None) or ""
    return bool(domain.event_store.store.category(origin) == wanted)


@functools.lru_cache(maxsize=1024)
def _origin_stream(domain: Any, handler_cls: Any) -> str | None:
    from protean.server.subscription.config_resolver import ConfigResolver

    own, table = _declared(domain, handler_cls)
    explicit = own.get("source_stream") or table.get("source_stream")  # Protean's Meta spelling, as a key
    return explicit or ConfigResolver(domain).resolve(handler_cls).origin_stream


def _declared(domain: Any, handler_cls: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The handler's ``Meta.subscription_config`` and its ``[server.subscriptions.<Handler>]`` table."""
    own = dict(getattr(getattr(handler_cls, "meta_", None), "subscription_config", None) or {})
    tables = (domain.config.get("server") or {}).get("subscriptions") or {}
    return own, dict(tables.get(handler_cls.__name__) or {})


def _refusals(domain: Any) -> Iterator[tuple[str, str]]:
    classes = {
        record.cls.__name__: record.cls
        for kind in _HANDLER_KINDS
        for record in (getattr(domain.registry, kind, None) or {}).values()
    }
    tables = (domain.config.get("server") or {}).get("subscriptions") or {}
    for handler, table in sorted(tables.items()):
        for key, value in (table or {}).items():
            reason = _reason(key, value, classes.get(handler))
            if reason:
                yield f"[server.subscriptions.{handler}] {key}", reason
    for name, cls in classes.items():
        own, _table = _declared(domain, cls)
        for key, value in own.items():
            reason = _reason(key, value, cls)
            if reason:
                yield f"{name}.Meta subscription_config {key!r}", reason


def _reason(key: str, value: Any, handler_cls: Any) -> str | None:
    """Why ``key = value`` has no meaning for ``handler_cls``; ``None`` when it is honoured."""
    if key in _ACCEPTED or (key == "enable_dlq" and value):
        return None
    if key == "stream_category" and handler_cls is not None:
        if value == getattr(getattr(handler_cls, "meta_", None), "stream_category", None):
            return None
    return REASONS.get(key, "not a Protean subscription setting, and protean-celery does not read it")
