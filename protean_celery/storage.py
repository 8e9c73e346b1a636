"""Create, drop and empty every table a protean-celery deployment uses (I/O).

Protean's ``Domain.setup_database()`` and friends manage the aggregate, projection
and outbox tables; none of them touches an event store. These functions call
Protean's and then manage our own: the inbox, the SQL event store, the relay
cursors, the dead letters and the redelivery ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from protean_celery.errors import ConfigurationError
from protean_celery.redact import redact_url

__all__ = ["prepare_databases", "setup", "setup_outbox", "drop", "truncate", "database_uris"]


def database_uris(config: Any) -> list[str]:
    """Every SQL database URI a domain config names (databases, event store, relay state)."""
    uris = [
        str(conn["database_uri"])
        for conn in (config.get("databases") or {}).values()
        if conn.get("provider") in ("sqlite", "postgresql") and conn.get("database_uri")
    ]
    store = config.get("event_store") or {}
    if store.get("provider") in ("sqlalchemy", "message_db") and store.get("database_uri"):
        uris.append(str(store["database_uri"]))
    state = ((config.get("custom") or {}).get("celery") or {}).get("state_database_uri")
    if state:
        uris.append(str(state))
    return list(dict.fromkeys(uris))


def prepare_databases(config: Any) -> list[str]:
    """Create what ``domain.init()`` needs to connect: SQLite folders, missing databases.

    Call it before ``domain.init()`` (the example's ``run.py`` does). Safe to repeat.

    Args:
        config: the domain config (``domain.config``).

    Returns:
        The URIs (passwords hidden) of the databases that were created.

    Raises:
        ConfigurationError: a URI that cannot be parsed, or a database that cannot
            be reached (the message masks its password).
    """
    from protean_celery.startup import redacted_errors

    with redacted_errors(config, "Preparing the databases"):
        return _create_missing(config)


def _create_missing(config: Any) -> list[str]:
    from sqlalchemy_utils import create_database, database_exists

    created = []
    for uri in database_uris(config):
        url = _url(uri)
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            continue
        if not database_exists(url):
            create_database(url)
            created.append(redact_url(url))
    return created


def setup(domain: Any, cursors: Any = None) -> None:
    """Protean's ``setup_database()``, then the inbox, event store and relay cursor tables."""
    with domain.domain_context():
        domain.setup_database()
    for target in _ours(domain, cursors):
        target.setup()


def setup_outbox(domain: Any) -> None:
    """Protean's ``setup_outbox()`` (a ``ConfigurationError`` unless the outbox is on)."""
    with domain.domain_context():
        domain.setup_outbox()


def drop(domain: Any, cursors: Any = None) -> None:
    """Protean's ``drop_database()``, then drop our tables."""
    with domain.domain_context():
        domain.drop_database()
    for target in _ours(domain, cursors):
        target.drop()


def truncate(domain: Any, cursors: Any = None) -> None:
    """Protean's ``truncate_database()`` (which also resets the event store), then the cursors."""
    from protean_celery.inbox import Inbox

    with domain.domain_context():
        domain.truncate_database()
    Inbox(domain).truncate()
    if cursors is not None and hasattr(cursors, "truncate"):
        cursors.truncate()
        from protean_celery.deadletter import DeadLetters
        from protean_celery.redelivery import Ledger

        DeadLetters(cursors.engine).truncate()
        Ledger(cursors.engine).truncate()


def _ours(domain: Any, cursors: Any) -> Iterable[Any]:
    from protean_celery.inbox import Inbox

    store = domain.event_store.store
    targets: list[Any] = [Inbox(domain)]
    if hasattr(store, "setup") and hasattr(store, "drop"):
        targets.append(store)
    if cursors is not None and hasattr(cursors, "setup"):
        targets.append(cursors)
        from protean_celery.deadletter import DeadLetters
        from protean_celery.redelivery import Ledger

        targets.append(DeadLetters(cursors.engine))
        targets.append(Ledger(cursors.engine))
    return targets


def _url(uri: str) -> Any:
    try:
        return make_url(uri)
    except Exception as exc:
        raise ConfigurationError(f"Cannot parse database URI: {exc}. Check database_uri in domain.toml.") from None
