"""What a domain declares that protean-celery does not honour (pure: reads config and registry).

Protean's own server acts on more of a domain's declarations than this runtime does
yet. Rather than ignore them, ``unhonoured(domain)`` names each one, so
``celery -A app protean check`` can refuse to print "guarantees in force"::

    for item in unhonoured(app.domain):
        print(item)     # "[server.priority_lanes] enabled = true: …"

It reads the registry and ``domain.config`` only: no I/O, no initialised domain needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Unhonoured", "unhonoured", "HONOURED_SUBSCRIPTION_KEYS"]

#: Keys of Protean's per-handler subscription settings that protean-celery reads.
HONOURED_SUBSCRIPTION_KEYS = frozenset({"max_retries", "retry_delay_seconds"})

#: Why a Protean subscription setting has no effect here, by key (others: "not read").
_KEY_REASONS: dict[str, str] = {
    "subscription_type": "each handler is a Celery task fed from the broker; Protean's subscription types "
    "select Protean's own consumers, which do not run",
    "profile": "only a profile's max_retries and retry_delay_seconds would apply; set those keys instead",
    "stream_category": "a handler's queue is bound to the stream category of its Meta; set it there",
    "messages_per_tick": "workers take one message at a time (prefetch 1); there are no ticks",
    "tick_interval": "workers take one message at a time (prefetch 1); there are no ticks",
    "blocking_timeout_ms": "workers consume from Celery queues, not by polling Protean's broker",
    "position_update_interval": "positions are the broker's acknowledgements, not Protean subscription positions",
    "origin_stream": "filtering by origin stream is not implemented yet",
    "source_stream": "filtering by source stream is not implemented yet",
    "retention_maxlen": "queues are Celery's; Protean's stream trimming does not apply",
    "enable_dlq": "every handler dead-letters exhausted messages (protean dlq); it cannot be turned off",
    "dlq_retention_hours": "dead letters stay until replayed or purged (protean dlq purge)",
    "dlq_alert_threshold": "no dead-letter alerts yet; watch protean status",
    "circuit_breaker_threshold": "no circuit breaker yet",
    "circuit_breaker_reset_seconds": "no circuit breaker yet",
}

_HANDLER_KINDS = {
    "command_handlers": "command handler",
    "event_handlers": "event handler",
    "projectors": "projector",
    "process_managers": "process manager",
}


@dataclass(frozen=True)
class Unhonoured:
    """One declared feature protean-celery does not honour.

    Attributes:
        feature: what is declared, named as the domain names it.
        reason: what happens instead, and what to do.
    """

    feature: str
    reason: str

    def __str__(self) -> str:
        return f"{self.feature}: {self.reason}."


def unhonoured(domain: Any) -> list[Unhonoured]:
    """Every feature ``domain`` declares that protean-celery does not honour, in a stable order.

    Args:
        domain: a Protean domain (registered elements and ``config``; initialising it is not needed).
    """
    config = domain.config
    return [
        *_broker_subscription(config),
        *_priority_lanes(config),
        *_external_brokers(config),
        *_sequential(domain),
        *_subscription_keys(domain),
    ]


def _records(domain: Any, kind: str) -> list[Any]:
    return [record.cls for record in (getattr(domain.registry, kind, None) or {}).values()]


def _broker_subscription(config: Any) -> Iterator[Unhonoured]:
    """Broker subscribers run as tasks (``protean_celery.subscribers``); only discarding is refused."""
    table = (config.get("server") or {}).get("broker_subscription") or {}
    for key, value in sorted(table.items()):
        if key == "enable_dlq" and not value:
            yield Unhonoured(
                "[server.broker_subscription] enable_dlq = false",
                "a broker subscriber's exhausted messages are always dead-lettered (protean dlq), never "
                "discarded; remove the key, and purge the dead letters you do not want",
            )
        elif key not in HONOURED_SUBSCRIPTION_KEYS | {"enable_dlq"}:
            yield _key_refusal(f"[server.broker_subscription] {key}", key)


def _priority_lanes(config: Any) -> Iterator[Unhonoured]:
    lanes = (config.get("server") or {}).get("priority_lanes") or {}
    if lanes.get("enabled"):
        yield Unhonoured(
            "[server.priority_lanes] enabled = true",
            "priority lanes are not honoured by protean-celery yet: every message shares its handler's queue "
            "whatever its processing priority",
        )


def _external_brokers(config: Any) -> Iterator[Unhonoured]:
    brokers = (config.get("outbox") or {}).get("external_brokers") or []
    if brokers:
        yield Unhonoured(
            f"[outbox] external_brokers = {list(brokers)!r}",
            "outbox rows for external brokers are not relayed by protean-celery yet",
        )


def _sequential(domain: Any) -> Iterator[Unhonoured]:
    for kind, label in _HANDLER_KINDS.items():
        for cls in _records(domain, kind):
            key = getattr(getattr(cls, "meta_", None), "sequential_by", None)
            if key:
                yield Unhonoured(
                    f"{label.capitalize()} {cls.__name__} sequential_by = {key!r}",
                    "messages with one key are not handled in order one at a time by protean-celery yet",
                )


def _subscription_keys(domain: Any) -> Iterator[Unhonoured]:
    tables = (domain.config.get("server") or {}).get("subscriptions") or {}
    for handler, table in sorted(tables.items()):
        for key, value in (table or {}).items():
            if _refused(key, value):
                yield _key_refusal(f"[server.subscriptions.{handler}] {key}", key)
    for kind in _HANDLER_KINDS:
        for cls in _records(domain, kind):
            own = getattr(getattr(cls, "meta_", None), "subscription_config", None) or {}
            for key, value in own.items():
                if _refused(key, value):
                    yield _key_refusal(f"{cls.__name__}.Meta subscription_config {key!r}", key)


def _refused(key: str, value: Any) -> bool:
    if key in HONOURED_SUBSCRIPTION_KEYS:
        return False
    return not (key == "enable_dlq" and value)  # dead-lettering is always on


def _key_refusal(feature: str, key: str) -> Unhonoured:
    reason = _KEY_REASONS.get(key, "protean-celery does not read this key")
    return Unhonoured(
        feature, f"not honoured by protean-celery ({reason}); only max_retries and retry_delay_seconds are read"
    )

