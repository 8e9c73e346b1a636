"""The one seam onto Protean's private API (0.18.x): every underscore name we use is reached here.

protean-celery needs a few things Protean keeps private: the outbox repository and
its DAO (claiming, bulk marking), reading a category from the event store's
adapter, resolving a type name to its class, a process manager's correlation, a
provider's SQLAlchemy engine, the Message DB client. Every other module calls the
small named functions below, so a Protean release that moves one of them means
editing this module only; ``tests/unit/test_protean_api.py`` names what moved.

Nothing here changes Protean's behaviour: each function is the call the caller
used to make, named after what it is for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from protean.core.process_manager import _resolve_correlation_value
from protean.testing import _events_for_correlation
from protean.utils.mixins import _get_transient_retry_config
from protean.utils.outbox import _outbox_provider_names
from protean.utils.query import Q

if TYPE_CHECKING:
    from protean.domain import Domain
    from protean.port.event_store import BaseEventStore
    from protean.utils.outbox import OutboxRepository
    from sqlalchemy.engine import Engine

__all__ = [
    "broker_correlation_id",
    "broker_source_id",
    "correlation_value",
    "ensure_consumer_group",
    "events_for_correlation",
    "handle_message",
    "handled_types",
    "is_start",
    "known_types",
    "outbox_claim",
    "outbox_eligible",
    "outbox_model",
    "outbox_providers",
    "outbox_query",
    "outbox_repo",
    "outbox_update",
    "process_manager_methods",
    "provider_engine",
    "provider_engines",
    "raw_stream_entry",
    "read_category",
    "reclaim_stream_pending",
    "reset_client",
    "resolve_type",
    "transient_retry_config",
    "trace_listening",
]


# -- the outbox -----------------------------------------------------------------


def outbox_providers(domain: Domain) -> list[str]:
    """The database providers with an outbox the relay serves (none when the outbox is off)."""
    return list(_outbox_provider_names(domain)) if domain.has_outbox else []


def outbox_repo(domain: Domain, provider: str) -> OutboxRepository:
    """Protean's outbox repository of ``provider`` (``Domain._get_outbox_repo``); needs a domain context."""
    return domain._get_outbox_repo(provider)


def outbox_query(domain: Domain, provider: str) -> Any:
    """A query over ``provider``'s outbox rows (the repository DAO's ``query``)."""
    return outbox_repo(domain, provider)._dao.query


def outbox_model(domain: Domain, provider: str) -> type:
    """The database model class of ``provider``'s outbox table (what a flushed row is)."""
    return outbox_repo(domain, provider)._dao.database_model_cls


def outbox_update(repo: OutboxRepository, criteria: Q, **values: Any) -> int:
    """One bulk ``UPDATE`` of the rows matching ``criteria`` (the DAO's ``_update_all``); returns how many."""
    return int(repo._dao._update_all(criteria, **values) or 0)


def outbox_eligible(repo: OutboxRepository, now: datetime, target_broker: str) -> Q:
    """The criteria ``claim_batch`` uses: rows ready for ``target_broker`` at ``now``."""
    return repo._eligibility_criteria(now, target_broker)


def outbox_claim(
    repo: OutboxRepository, criteria: Q, claim_fields: dict[str, Any], limit: int, order_by: str
) -> list[Any]:
    """Claim up to ``limit`` rows matching ``criteria`` in one statement (the DAO's ``_claim``)."""
    return list(repo._dao._claim(criteria=criteria, claim_fields=claim_fields, limit=limit, order_by=order_by))


# -- the event store ------------------------------------------------------------


def read_category(store: BaseEventStore, category: str, position: int, limit: int) -> list[dict[str, Any]]:
    """Raw rows of ``category`` from global ``position`` on, at most ``limit`` (the adapter's ``_read``).

    Rows, not messages: the relays decode them one by one, so one bad row never
    hides the others (see :mod:`protean_celery.outbox.rows`).
    """
    return list(store._read(category, position=position, no_of_messages=limit))


def reset_client(store: Any) -> None:
    """Give a Message DB store a new client on a lazy, pre-pinging pool; no-op for others.

    The old client's connections are left alone (in a forked child they are the
    parent's). See :mod:`protean_celery.event_store.message_db`. Duck-typed on
    ``_client``: importing Protean's Message DB adapter needs its optional driver.
    """
    if hasattr(store, "_client") and getattr(store, "conn_info", {}).get("database_uri"):
        from protean_celery.event_store.message_db import pinging_client

        store._client = pinging_client(store)


# -- types ------------------------------------------------------------------------


def known_types(domain: Domain) -> set[str]:
    """Every event and command type name the domain registered (``Domain._events_and_commands``)."""
    return {str(name) for name in domain._events_and_commands}


def resolve_type(domain: Domain, message_type: str) -> Any:
    """The class Protean rebuilds ``message_type`` into (as ``Message.to_domain_object`` looks it up), or None."""
    found = domain._events_and_commands.get(message_type)
    return found if found is not None else domain._upcaster_chain.resolve_event_class(message_type)


# -- handlers and process managers -------------------------------------------------


def handle_message(handler_cls: Any, message: Any) -> Any:
    """Run ``handler_cls`` on ``message`` as Protean's engine does (``HandlerMixin._handle``)."""
    return handler_cls._handle(message)


def handled_types(handler_cls: Any) -> set[str]:
    """The message type names ``handler_cls`` has methods for (``$any`` included when it takes every type)."""
    # ``_handlers`` is a defaultdict: read its keys, never index it.
    return {str(key) for key in handler_cls._handlers.keys() if handler_cls._handlers.get(key)}


def transient_retry_config(domain: Domain, handler_cls: Any) -> dict[str, Any]:
    """Protean's transient-retry policy for ``handler_cls`` (``[server.transient_retry]`` under its ``Meta``).

    Keys ``max_retries`` (0 when the policy is off), ``backoff``, ``base_delay_seconds``,
    ``max_delay_seconds``, as Protean's ``@handle`` wrapper resolves them.

    Raises:
        protean.exceptions.ConfigurationError: an unknown ``backoff`` or exception name.
    """
    with domain.domain_context():
        return dict(_get_transient_retry_config(handler_cls))


def process_manager_methods(pm_cls: Any, message_type: str) -> Iterable[Callable[..., Any]]:
    """The methods of ``pm_cls`` that handle ``message_type`` (or any type)."""
    return pm_cls._handlers.get(message_type) or pm_cls._handlers.get("$any") or ()


def correlation_value(event: Any, method: Callable[..., Any]) -> str:
    """The process-manager instance ``method`` correlates ``event`` to (its ``correlate=`` spec)."""
    return str(_resolve_correlation_value(event, method._correlate))  # type: ignore[attr-defined]


def is_start(method: Callable[..., Any]) -> bool:
    """Whether ``method`` was declared with ``@handle(..., start=True)``."""
    return bool(getattr(method, "_start", False))


def events_for_correlation(domain: Domain, correlation_id: str) -> list[Any]:
    """Every event of the correlation chain ``correlation_id``, in order (``protean.testing``'s helper)."""
    return list(_events_for_correlation(domain, correlation_id))


# -- providers -------------------------------------------------------------------


def provider_engine(domain: Domain, provider: str) -> Engine | None:
    """The SQLAlchemy engine of the database provider ``provider`` (None for the memory provider)."""
    return getattr(domain.providers[provider], "_engine", None)


def provider_engines(domain: Domain) -> dict[str, Engine]:
    """The SQLAlchemy engine of every SQL provider, by provider name."""
    found = {str(name): provider_engine(domain, name) for name in domain.providers}
    return {name: engine for name, engine in found.items() if engine is not None}


def provider_sessions(domain: Domain) -> dict[str, Any]:
    """The session registry (Protean's ``provider.get_session()``) of every SQL provider, by provider name."""
    return {name: domain.providers[name].get_session() for name in provider_engines(domain)}


# -- traces ------------------------------------------------------------------------


def trace_listening(emitter: Any) -> bool:
    """Whether Protean's ``TraceEmitter`` would write an event: it has Redis, and persists or has a subscriber.

    The emitter's own short-circuit (``_ensure_initialized``, ``_persist``, ``_check_subscribers``,
    the last cached for two seconds), asked before an event is built.
    """
    return bool(emitter._ensure_initialized() and (emitter._persist or emitter._check_subscribers()))


# -- broker subscribers ------------------------------------------------------------


def broker_correlation_id(payload: dict[str, Any]) -> str:
    """The correlation id Protean's server gives a broker message (a new one when it carries none)."""
    from protean.server.engine import _extract_correlation_id

    return str(_extract_correlation_id(payload))


def broker_source_id(payload: dict[str, Any]) -> str | None:
    """The source event's id a broker message carries, which Protean's server prefers to the broker's id."""
    from protean.server.engine import _extract_source_message_id

    found = _extract_source_message_id(payload)
    return str(found) if found else None


def ensure_consumer_group(broker: Any, stream: str, group: str) -> None:
    """Create ``group`` on ``stream`` unless it exists (the broker's ``_ensure_group``, as Protean's server calls it).

    A group created before the stream's first entry still reads it: Protean's Redis
    adapter starts new groups at the stream's beginning.
    """
    broker._ensure_group(group, stream)


def reclaim_stream_pending(broker: Any, stream: str, group: str, idle_seconds: float, limit: int = 1000) -> int:
    """Hand ``group``'s entries idle over ``idle_seconds`` to ``broker``'s own consumer; returns how many.

    A reader that died between reading and acknowledging leaves its entries pending
    under its consumer name, and Protean's ``read`` re-reads only its own consumer's
    pending entries. ``XAUTOCLAIM`` moves them to this broker's consumer, whose next
    ``read`` returns them. No-op (0) on a broker without a Redis client.
    """
    client = _redis_client(broker)
    consumer = getattr(broker, "_consumer_name", None)
    if client is None or consumer is None:
        return 0
    claimed, start = 0, "0-0"
    while claimed < limit:
        reply = client.xautoclaim(stream, group, consumer, min_idle_time=int(idle_seconds * 1000), start_id=start,
                                  count=100)  # with justid, redis-py drops the cursor
        start = reply[0]
        claimed += len(reply[1])
        if start in (b"0-0", "0-0"):
            break
    return claimed


def raw_stream_entry(broker: Any, stream: str, message_id: str) -> dict[str, str] | None:
    """The fields of one stream entry as stored, decoded leniently (None without a Redis client or entry)."""
    client = _redis_client(broker)
    if client is None:
        return None
    entries = client.xrange(stream, min=message_id, max=message_id, count=1)
    if not entries:
        return None
    return {_text(key): _text(value) for key, value in entries[0][1].items()}


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _redis_client(broker: Any) -> Any:
    """The Redis client of Protean's ``redis`` broker (reconnected if closed); None for other brokers."""
    return broker._client if hasattr(broker, "redis_instance") else None
