"""Create what ``domain.init()`` needs to connect: SQLite folders, missing databases (I/O).

Run before ``domain.init()`` (``prepare_databases(domain.config)``), and by the SQL
event store's ``setup()``. The tables inside are :mod:`protean_celery.storage`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from protean_celery.errors import ConfigurationError
from protean_celery.redact import redact_url
from protean_celery.startup import database_uris, redacted_errors

__all__ = ["prepare_databases"]


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


def _url(uri: str) -> Any:
    try:
        return make_url(uri)
    except Exception as exc:
        raise ConfigurationError(f"Cannot parse database URI: {exc}. Check database_uri in domain.toml.") from None
