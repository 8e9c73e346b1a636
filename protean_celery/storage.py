"""Create, drop and empty every table a protean-celery deployment uses (I/O).

Protean's ``Domain.setup_database()`` and friends manage the aggregate, projection
and outbox tables; none of them touches an event store. These functions call
Protean's and then manage our own (see :mod:`protean_celery.state` for where each
lives): the inbox, the deadlines and the SQL event store in the domain's databases, the relay
cursors, the dead letters and the redelivery ledger in the state database
(``app.runtime.state``).
"""

from __future__ import annotations

from typing import Any

from protean_celery.databases import prepare_databases
from protean_celery.deadlines.table import DeadlineStore
from protean_celery.inbox import Inbox
from protean_celery.startup import database_uris
from protean_celery.state import StateDatabase, domain_stores
from protean_celery.turns import Turns

__all__ = ["prepare_databases", "setup", "setup_outbox", "drop", "truncate", "database_uris"]


def setup(domain: Any, state: StateDatabase | None = None) -> None:
    """Protean's ``setup_database()``, then the inbox and event store tables, then ``state``'s tables."""
    with domain.domain_context():
        domain.setup_database()
    for store in domain_stores(domain):
        store.setup()
    if state is not None:
        state.setup()


def setup_outbox(domain: Any) -> None:
    """Protean's ``setup_outbox()`` (a ``ConfigurationError`` unless the outbox is on)."""
    with domain.domain_context():
        domain.setup_outbox()


def drop(domain: Any, state: StateDatabase | None = None) -> None:
    """Protean's ``drop_database()``, then drop our tables."""
    with domain.domain_context():
        domain.drop_database()
    for store in domain_stores(domain):
        store.drop()
    if state is not None:
        state.drop()


def truncate(domain: Any, state: StateDatabase | None = None) -> None:
    """Protean's ``truncate_database()`` (which resets the event store too), our domain tables, then ``state``'s."""
    with domain.domain_context():
        domain.truncate_database()
    Inbox(domain).truncate()
    Turns(domain).truncate()
    DeadlineStore(domain).truncate()
    if state is not None:
        state.truncate()
