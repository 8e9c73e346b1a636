"""The state database, and every table of ours with where it lives (I/O).

protean-celery creates seven tables. Three live in the **state database**, one
engine this module owns; four live in the domain's own databases, next to the
data they guard:

=================================  ==========================================  =======================
table                              database                                    declared in
=================================  ==========================================  =======================
``protean_celery_relay_cursors``   the state database                          ``outbox/cursor.py``
``protean_celery_dead_letters``    the state database                          ``deadletter.py``
``protean_celery_redeliveries``    the state database                          ``redelivery/ledger.py``
``protean_celery_inbox``           the default provider's database             ``inbox.py``
``protean_celery_turns``           the default provider's database             ``turns.py``
``protean_celery_deadlines``       the default provider's database             ``deadlines/table.py``
``protean_events``                 the event store's database (SQL store)      ``event_store/schema.py``
=================================  ==========================================  =======================

The state database is ``[custom.celery] state_database_uri``, else the default
database. The inbox, the ordered lanes' turns and the deadlines must share the
handlers' transaction (a marker, a turn or a deadline exists exactly when the
handler's changes do), so
they live where the aggregates do; the event store table is the SQL event store's own. The
serial lock of projectors and process managers holds no table: a PostgreSQL
advisory lock in the default database, taken with the inbox marker (``inbox.py``).

An app built with in-process cursors (``MemoryCursorStore``, for the test drain)
keeps its dead letters and ledger in a private SQLite memory database; ``protean
db`` commands leave such a state alone (its tables exist from the start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from protean_celery.deadletter import DeadLetters, dead_letters_table
from protean_celery.deadlines.table import DeadlineStore, deadlines_table
from protean_celery.errors import ConfigurationError
from protean_celery.event_store.schema import events as events_table
from protean_celery.event_store.store import SQLEventStore
from protean_celery.inbox import Inbox, inbox_table
from protean_celery.outbox.cursor import CursorStore, SQLCursorStore, cursors_table
from protean_celery.redelivery.ledger import Ledger, ledger_table
from protean_celery.settings import CelerySettings
from protean_celery.sql import make_engine
from protean_celery.turns import Turns, turns_table

if TYPE_CHECKING:
    from protean.domain import Domain

__all__ = ["DOMAIN_TABLES", "STATE_TABLES", "StateDatabase", "domain_stores", "state_database"]

#: The tables in the state database.
STATE_TABLES: tuple[Table, ...] = (cursors_table, dead_letters_table, ledger_table)

#: The tables in the domain's databases: the inbox, the lanes' turns and the deadlines (default provider), the SQL
#: event store's.
DOMAIN_TABLES: tuple[Table, ...] = (inbox_table, turns_table, deadlines_table, events_table)

_WHERE = "[custom.celery] state_database_uri"


@dataclass(frozen=True)
class StateDatabase:
    """One engine and the stores on it: the relay cursors, the dead letters, the redelivery ledger.

    Attributes:
        engine: the state database's engine.
        cursors: the command relay's cursors (a table here, or in process memory).
        dead_letters: the dead-letter store.
        ledger: the redelivery sweep's ledger.
        durable: whether the tables are on ``engine`` for ``protean db`` to manage
            (False for the private memory database of in-process cursors).
    """

    engine: Engine
    cursors: CursorStore
    dead_letters: DeadLetters
    ledger: Ledger
    durable: bool

    @classmethod
    def open(cls, uri: str) -> StateDatabase:
        """The state database at ``uri``, with its cursors in a SQL table.

        Raises:
            ConfigurationError: ``uri`` is not a database URI.
        """
        return cls.on(make_engine(uri, _WHERE, pool_size=2, max_overflow=2))

    @classmethod
    def on(cls, engine: Engine, cursors: SQLCursorStore | None = None) -> StateDatabase:
        """The state database on ``engine`` (cursors on it too, unless given)."""
        cursors = cursors if cursors is not None else SQLCursorStore(engine)
        return cls(engine, cursors, DeadLetters(engine), Ledger(engine), durable=True)

    @classmethod
    def in_memory(cls, cursors: CursorStore) -> StateDatabase:
        """A private SQLite memory database for dead letters and ledger, beside in-process ``cursors``."""
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
        state = cls(engine, cursors, DeadLetters(engine), Ledger(engine), durable=False)
        state.dead_letters.setup()
        state.ledger.setup()
        return state

    def _managed(self) -> tuple[Any, ...]:
        if not self.durable:
            return ()
        assert isinstance(self.cursors, SQLCursorStore)  # durable states are built on SQL cursors only
        return (self.cursors, self.dead_letters, self.ledger)

    def setup(self) -> None:
        """Create the state tables (idempotent)."""
        for store in self._managed():
            store.setup()

    def drop(self) -> None:
        """Drop the state tables."""
        for store in self._managed():
            store.drop()

    def truncate(self) -> None:
        """Forget every cursor, dead letter and watched message."""
        for store in self._managed():
            store.truncate()

    def dispose(self, close: bool = True) -> None:
        """Drop pooled connections (``close=False`` in a forked child)."""
        if self.durable:
            self.engine.dispose(close=close)


def state_database(domain: Domain, settings: CelerySettings, cursors: CursorStore | None = None) -> StateDatabase:
    """The state database of an app: the configured one, or the one ``cursors`` imply.

    Args:
        domain: the initialised domain (its default database is the fallback).
        settings: protean-celery settings (``state_database_uri``).
        cursors: cursors the app was given: a ``SQLCursorStore`` brings its engine,
            any other store (``MemoryCursorStore``) a private memory database.

    Raises:
        ConfigurationError: no state database URI and a memory default database.
    """
    if isinstance(cursors, SQLCursorStore):
        return StateDatabase.on(cursors.engine, cursors)
    if cursors is not None:
        return StateDatabase.in_memory(cursors)
    return StateDatabase.open(_state_uri(domain, settings))


def domain_stores(domain: Domain) -> list[Any]:
    """The stores of our tables in the domain's databases: the inbox, the turns, the deadlines, the SQL event store."""
    stores: list[Any] = [Inbox(domain), Turns(domain), DeadlineStore(domain)]
    store = domain.event_store.store
    if isinstance(store, SQLEventStore):
        stores.append(store)
    return stores


def _state_uri(domain: Domain, settings: CelerySettings) -> str:
    if settings.state_database_uri:
        return str(settings.state_database_uri)
    default = domain.config["databases"]["default"]
    if default.get("provider") == "memory":
        raise ConfigurationError(
            "The default database is Protean's memory provider, which prefork worker "
            "processes cannot share: configure [databases.default] with sqlite or postgresql, "
            "or set [custom.celery] state_database_uri."
        )
    return str(default["database_uri"])
