"""Streams that never hold an event: Protean's outbox rows, answered without a read.

Protean's outbox row is an aggregate of its own (stream category
``<domain>::<provider>_outbox``). Every row loaded through its repository (the
relay's claims, the redelivery sweep's reads) has its event position synced from
the event store: one ``read_last_message`` per row, a round trip to the event
store's database (Message DB, or a SQL query) that always finds nothing, since
an outbox row raises no event. On Message DB a sweep reading a thousand rows
made a thousand such calls. :func:`skip_outbox_streams` answers ``None`` for
those streams without asking the store; every other stream is read as before.
"""

from __future__ import annotations

from typing import Any

from protean.utils.eventing import Message

from protean_celery.protean_api import outbox_providers, outbox_repo

__all__ = ["skip_outbox_streams"]


def skip_outbox_streams(domain: Any) -> None:
    """Make the domain's event store answer "no message" for outbox rows' streams (idempotent).

    Nothing changes with the outbox off.

    Args:
        domain: the initialised domain.
    """
    store = domain.event_store.store
    if getattr(store, "_skips_outbox_streams", False) or not outbox_providers(domain):
        return
    read_last = store.read_last_message
    categories: set[str] = set()

    def read_last_message(stream: str) -> Message | None:
        if not categories:
            with domain.domain_context():  # Protean looks outbox repositories up in one
                categories.update(_outbox_categories(domain))
        if stream.partition("-")[0] in categories:
            return None
        return read_last(stream)

    store.read_last_message = read_last_message
    store._skips_outbox_streams = True


def _outbox_categories(domain: Any) -> set[str]:
    """The stream categories of the domain's outbox aggregates, one per provider with an outbox."""
    return {str(outbox_repo(domain, name)._dao.entity_cls.meta_.stream_category) for name in outbox_providers(domain)}
