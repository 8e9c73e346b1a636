"""Install Message DB's schema into a PostgreSQL database, for Protean's ``message_db`` store.

Neither Protean nor ``message-db-py`` installs the schema. It ships in the npm
registry package ``@eventide/message-db``: this fetches it once with ``npm pack``
into a cache, then runs its SQL files in the order its ``install.sh`` does, with
psycopg2 instead of psql. ``message-db-py`` calls the read functions without a
schema prefix, so the database's ``search_path`` is set to ``message_store, public``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from protean_celery.errors import ServerBinaryNotFound, ServerError

__all__ = ["install_message_db", "message_db_sql_dir", "MESSAGE_DB_VERSION"]

MESSAGE_DB_VERSION = "1.3.1"

_FUNCTIONS = [
    "message-store-version", "hash-64", "acquire-lock", "category", "is-category", "id", "cardinal-id",
    "stream-version", "write-message", "get-stream-messages", "get-category-messages", "get-last-stream-message",
]
_FILES = [
    "schema/message-store.sql",
    "extensions/pgcrypto.sql",
    "tables/messages.sql",
    "types/message.sql",
    *(f"functions/{name}.sql" for name in _FUNCTIONS),
    "indexes/messages-id.sql",
    "indexes/messages-stream.sql",
    "indexes/messages-category.sql",
    "views/stream-summary.sql",
    "views/type-summary.sql",
    "views/stream-type-summary.sql",
    "views/type-stream-summary.sql",
    "views/category-type-summary.sql",
    "views/type-category-summary.sql",
    "privileges/schema.sql",
    "privileges/table.sql",
    "privileges/sequence.sql",
    "privileges/functions.sql",
    "privileges/views.sql",
]


def message_db_sql_dir(cache: Path | None = None) -> Path:
    """The ``database/`` folder of ``@eventide/message-db``, fetched with ``npm pack`` once.

    Raises:
        ServerBinaryNotFound: ``npm`` is not installed.
        ServerError: ``npm pack`` failed.
    """
    root = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "protean-celery" / "message-db"
    database = root / MESSAGE_DB_VERSION / "package" / "database"
    if (database / "install.sh").is_file():
        return database
    npm = shutil.which("npm")
    if npm is None:
        raise ServerBinaryNotFound("Installing Message DB needs npm: apt-get install -y npm (or nodejs).")
    target = root / MESSAGE_DB_VERSION
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "pack", f"@eventide/message-db@{MESSAGE_DB_VERSION}", "--silent"],
        cwd=target, capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0:
        raise ServerError(f"npm pack @eventide/message-db failed: {result.stderr[-1000:]}")
    with tarfile.open(target / result.stdout.strip().splitlines()[-1]) as archive:
        archive.extractall(target, filter="data")
    return database


def install_message_db(url: str, cache: Path | None = None) -> None:
    """Install (idempotently) the Message DB schema into the database at ``url``.

    Args:
        url: a ``postgresql://`` URL of an existing database; its user must be
            allowed to create roles, schemas and extensions (a superuser in tests).
        cache: where the npm package is kept (default ``~/.cache/protean-celery``).
    """
    import psycopg2

    database = message_db_sql_dir(cache)
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT to_regclass('message_store.messages') IS NOT NULL")
            if cursor.fetchone()[0]:
                return  # already installed (its scripts are not all re-runnable)
            cursor.execute("SET client_min_messages = warning")
            cursor.execute((database / "roles" / "message-store.sql").read_text())
            for name in _FILES:
                cursor.execute((database / name).read_text())
            cursor.execute("SELECT current_database()")
            (name,) = cursor.fetchone()
            cursor.execute(f'ALTER DATABASE "{name}" SET search_path TO message_store, public')
    finally:
        conn.close()
