"""What the relays read: outbox rows and command rows, and the messages they hold (I/O, reads only).

The relay publishes from two sources and the redelivery sweep reads the same two
back; both read and decode them here, so they agree on what a row means:

* an **outbox row** (Protean's ``Outbox`` entity) holds one event and the stream
  category it is routed by (:func:`outbox_message`); a relay only ever touches
  the rows of its own domain (:func:`domain_rows`), so two domains can share one
  database;
* a **command row** is a raw event store row of a command category, read past a
  cursor (:func:`command_rows`) and decoded one by one (:func:`command_message`),
  so one row that cannot be decoded never hides the rows after it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from protean.utils.eventing import Message
from protean.utils.outbox import OutboxStatus
from protean.utils.query import Q

from protean_celery.protean_api import outbox_query, read_category

if TYPE_CHECKING:
    from protean.domain import Domain

__all__ = [
    "command_message", "command_rows", "domain_prefix", "domain_rows", "internal_broker", "outbox_message",
    "published_rows",
]


def outbox_message(row: Any) -> tuple[Message, str]:
    """The message an outbox row holds and the stream category it is published to.

    Args:
        row: Protean's outbox entity (as claimed or queried, or ``to_entity`` of a flushed model).
    """
    return Message(data=row.data, metadata=row.metadata_), str(row.metadata_.domain.stream_category)


def domain_rows(domain: Domain) -> Q:
    """The outbox rows ``domain`` wrote (criteria evaluated in the database).

    Protean's outbox rows carry no domain column, and two domains on one database
    share one outbox table. A row's ``stream_name`` is the stream of the aggregate
    that raised the event, and Protean prefixes every aggregate's stream category
    with the domain's normalized name and ``::`` (``shop::order-o1``), so the
    prefix tells the domains apart. It is matched with SQL ``LIKE``, where ``_``
    stands for any one character: ``shop_a`` would also take the rows of a domain
    named ``shopxa`` on the same database.
    """
    return Q(stream_name__startswith=domain_prefix(domain))


def domain_prefix(domain: Domain) -> str:
    """How the ``stream_name`` of each of ``domain``'s outbox rows starts (see :func:`domain_rows`)."""
    return f"{domain.normalized_name}::"


def internal_broker(domain: Domain) -> str:
    """The broker name Protean writes on internal outbox rows (``[outbox] broker``)."""
    from protean.utils.outbox import DEFAULT_TARGET_BROKER

    return str((domain.config.get("outbox") or {}).get("broker", DEFAULT_TARGET_BROKER))


def published_rows(domain: Domain, provider: str, after: datetime, until: datetime, limit: int) -> list[Any]:
    """This domain's internal outbox rows of ``provider`` published in ``(after, until]``, oldest first.

    At most ``limit``; rows for external brokers are left out (no task carried them).
    """
    criteria = Q(status=OutboxStatus.PUBLISHED.value) & Q(published_at__gt=after) & Q(published_at__lte=until)
    criteria &= Q(target_broker=internal_broker(domain)) & domain_rows(domain)
    return list(outbox_query(domain, provider).filter(criteria).order_by("published_at").limit(limit).all().items)


def command_rows(store: Any, category: str, after: int, limit: int) -> list[dict[str, Any]]:
    """Raw event store rows of the command ``category`` past global position ``after``, at most ``limit``."""
    return read_category(store, category, after + 1, limit)


def command_message(row: dict[str, Any]) -> Message | None:
    """The command a command row holds; None for a snapshot row (nothing to relay).

    Raises:
        DeserializationError: the row cannot be decoded as a Protean message (the
            relay dead-letters the row, the sweep skips it; both also catch any
            other error Protean raises for a malformed row).
    """
    if row.get("type") == "SNAPSHOT":
        return None
    return Message.deserialize(row)
