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

from protean_celery.subscriptions import REASONS

__all__ = ["Unhonoured", "unhonoured"]

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
    return [
        *_broker_subscription(domain.config),
        *_subscription_keys(domain),
    ]


#: What a broker subscriber reads of ``[server.broker_subscription]`` (its retries; dead-lettering stays on).
_BROKER_SUBSCRIPTION_KEYS = frozenset({"max_retries", "retry_delay_seconds", "enable_dlq"})


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
        elif key not in _BROKER_SUBSCRIPTION_KEYS:
            reason = REASONS.get(key, "not a Protean broker subscription setting, and protean-celery does not read it")
            yield Unhonoured(f"[server.broker_subscription] {key}", f"not honoured by protean-celery: {reason}")


def _subscription_keys(domain: Any) -> Iterator[Unhonoured]:
    from protean_celery.subscriptions import refusals

    for where, reason in refusals(domain):
        yield Unhonoured(where, f"not honoured by protean-celery: {reason}")

