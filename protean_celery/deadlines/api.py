"""``schedule`` and ``cancel``: what a handler calls to set or clear a deadline (I/O).

Both write in the **active Unit of Work** when there is one (a handler, a process
manager; :meth:`DeadlineStore.transaction`): the row joins the transaction of the handler's changes, its transition
and its inbox marker, through the Unit of Work's session of the default provider
(the session the inbox marker is written on). A rolled-back transition leaves no
deadline, and a cancel commits with the transition that decided it. Outside a
Unit of Work (a script, a web request) each call is its own transaction.

Times come from Protean's ``domain.clock`` (the test toolkit's fake clock moves it).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import insert

from protean_celery.deadlines.table import PENDING, DeadlineStore, deadlines_table, utc
from protean_celery.errors import DeadlineError
from protean_celery.protean_api import resolve_type

__all__ = ["schedule", "cancel"]

_INSERT = insert(deadlines_table)


def schedule(
    message: Any,
    *,
    at: datetime | None = None,
    after: timedelta | None = None,
    key: str | None = None,
    aggregate_id: str | None = None,
) -> str:
    """Send ``message`` at ``at``, or ``after`` a delay, unless the deadline is cancelled first.

    A command is processed as ``domain.process(command)`` would (asynchronously,
    in the correlation chain of the handler that scheduled it); an event is
    raised on its aggregate (loaded by ``aggregate_id``) and saved, so it travels
    like any event that aggregate raises. A time in the past fires at the next tick.

    Scheduling a key that is already pending replaces that deadline.

    Args:
        message: a command or event instance of the current domain.
        at: when to fire (timezone-aware).
        after: how long from now (``domain.clock``) to fire.
        key: the name to cancel it by (default: a new unique one).
        aggregate_id: for an event, the aggregate to raise it on (default: the
            event's field named like the aggregate's identifier, e.g. ``order_id``).

    Returns:
        The key.

    Raises:
        DeadlineError: neither or both of ``at`` and ``after``, a naive ``at``, a
            message the domain does not register, an event without an aggregate
            id, a bad key, or no domain context.
    """
    domain = _domain()
    due = _due(domain, at, after)
    kind, message_type = _kind(domain, message)
    replace = key is not None
    key = _key(key)
    row = {
        "id": str(uuid.uuid4()),
        "key": key,
        "due_at": due,
        "status": PENDING,
        "kind": kind,
        "message_type": message_type,
        "data": _data(message),
        "aggregate_id": _aggregate_id(message, aggregate_id) if kind == "EVENT" else None,
        "created_at": utc(domain.clock.now()),
        "attempts": 0,
        **_origin(),
    }
    store = DeadlineStore(domain)
    with store.transaction() as connection:
        if replace:
            store.remove_key(connection, key)
        connection.execute(_INSERT, row)  # parameters apart: one compiled statement for every call
    return key


def cancel(key: str) -> bool:
    """Cancel the pending deadline ``key``; ``False`` when there is none (it fired, or never was).

    A handler that cancels a deadline that already fired is told so, and decides
    (the payment arrived after the order was cancelled: refund it, say).

    Raises:
        DeadlineError: no domain context.
    """
    store = DeadlineStore(_domain())
    with store.transaction() as connection:
        return store.remove_key(connection, key)


def _domain() -> Any:
    from protean.domain.context import has_domain_context
    from protean.utils.globals import current_domain

    if not has_domain_context():
        raise DeadlineError(
            "deadlines.schedule and deadlines.cancel need a domain context: call them from a handler, "
            "or inside `with domain.domain_context():`."
        )
    return cast(Any, current_domain)._get_current_object()  # the domain behind the context-local proxy


def _due(domain: Any, at: datetime | None, after: timedelta | None) -> datetime:
    if (at is None) == (after is None):
        raise DeadlineError("Give a deadline exactly one of at= (a datetime) or after= (a timedelta).")
    if after is not None:
        if not isinstance(after, timedelta):
            raise DeadlineError(f"after= must be a datetime.timedelta, got {type(after).__name__}.")
        return utc(domain.clock.now() + after)
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise DeadlineError(
            f"at= must be a timezone-aware datetime (got {at!r}): use datetime.now(UTC) + …, or pass after=."
        )
    return utc(at)


def _kind(domain: Any, message: Any) -> tuple[str, str]:
    from protean.utils import DomainObjects

    cls = type(message)
    message_type = getattr(cls, "__type__", None)
    kinds = {DomainObjects.COMMAND: "COMMAND", DomainObjects.EVENT: "EVENT"}
    element_type: Any = getattr(cls, "element_type", None)
    kind = kinds.get(element_type, "")
    if message_type is None or not kind or resolve_type(domain, str(message_type)) is not cls:
        raise DeadlineError(
            f"Cannot schedule {cls.__name__}: a deadline sends a command or event registered with this domain "
            f"({domain.name}); register it with @domain.command or @domain.event."
        )
    return kind, str(message_type)


def _key(key: str | None) -> str:
    if key is None:
        return str(uuid.uuid4())
    if not isinstance(key, str) or not key or len(key) > 255:
        raise DeadlineError(f"A deadline key must be a non-empty string of at most 255 characters, got {key!r}.")
    return key


def _data(message: Any) -> dict[str, Any]:
    # JSON-safe (times and decimals as strings): Protean's fields read them back.
    return dict(json.loads(json.dumps(message.payload, default=str)))


def _aggregate_id(event: Any, given: str | None) -> str:
    if given is not None:
        return str(given)
    from protean.utils.reflection import id_field

    part_of = event.meta_.part_of
    name = getattr(id_field(part_of), "field_name", None) if part_of is not None else None
    value = event.payload.get(name) if name else None
    if value is None:
        raise DeadlineError(
            f"An event deadline is raised on its aggregate: pass aggregate_id= to schedule "
            f"{type(event).__name__}, or give the event a {name or 'identifier'!r} field."
        )
    return str(value)


def _origin() -> dict[str, Any]:
    """The correlation id and message id of the message being handled, if any."""
    from protean.utils.globals import g

    message = g.get("message_in_context")
    metadata = getattr(message, "metadata", None)
    domain_meta = getattr(metadata, "domain", None)
    headers = getattr(metadata, "headers", None)
    return {
        "correlation_id": getattr(domain_meta, "correlation_id", None),
        "scheduled_by": str(headers.id) if headers is not None and headers.id is not None else None,
    }
