"""What a domain declares that protean-celery does not honour (pure: reads config and registry).

Protean's own server acts on more of a domain's declarations than this runtime does
yet. Rather than ignore them, ``unhonoured(domain)`` names each one, so
``celery -A app protean check`` can refuse to print "guarantees in force"::

    for item in unhonoured(app.domain):
        print(item)     # "Broker subscriber OrderFeed (broker 'default', stream 'orders'): …"

It reads the registry and ``domain.config`` only: no I/O, no initialised domain needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
        *_subscribers(domain),
        *_subscription_keys(domain),
    ]


def _records(domain: Any, kind: str) -> list[Any]:
    return [record.cls for record in (getattr(domain.registry, kind, None) or {}).values()]


def _subscribers(domain: Any) -> Iterator[Unhonoured]:
    for cls in _records(domain, "subscribers"):
        meta = getattr(cls, "meta_", None)
        yield Unhonoured(
            f"Broker subscriber {cls.__name__} (broker {getattr(meta, 'broker', None)!r}, "
            f"stream {getattr(meta, 'stream', None)!r})",
            "no task consumes broker subscribers under protean-celery yet, so its messages are never handled",
        )


def _subscription_keys(domain: Any) -> Iterator[Unhonoured]:
    from protean_celery.subscriptions import refusals

    for where, reason in refusals(domain):
        yield Unhonoured(where, f"not honoured by protean-celery: {reason}")

