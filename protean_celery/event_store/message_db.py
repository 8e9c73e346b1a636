"""A pre-pinging connection pool for Protean's Message DB store (I/O).

Protean's ``MessageDBStore`` talks to PostgreSQL through ``message-db-py``, whose
pool hands out whatever connection it holds. After the database restarts every
pooled connection is dead, and each one fails the first call made on it: a web
request, a CLI command or a task retry per stale connection.

:class:`PingingPool` takes the pool's place (``MessageDB`` accepts any object with
``get_connection``, ``release`` and ``closeall``). It checks each connection out
with one ``SELECT 1`` (in autocommit, one round trip) and replaces a dead one
before the caller sees it, as our own engines do for connections that sat idle
(``sql.py``). The statement that follows runs on a live connection; a failure there is
the database failing now, not a leftover of the last restart. The pool opens its
first connection on first use, so it is safe to build before a fork.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["PingingPool", "pinging_client"]


class PingingPool:
    """A lazy ``psycopg2`` thread-safe pool whose checkouts are pinged first.

    Args:
        url: the ``postgresql://`` URL of the Message DB database.
        max_connections: most connections open at once (Message DB's ``max_connections``).
    """

    def __init__(self, url: str, max_connections: int = 100) -> None:
        self.url = url
        self.max_connections = int(max_connections)
        self._pool: Any = None
        self._lock = threading.Lock()

    def get_connection(self) -> Any:
        """A live connection: stale ones (the server restarted) are closed and replaced.

        Raises:
            psycopg2.OperationalError: the database cannot be reached now.
        """
        pool = self._open()
        for _ in range(self.max_connections + 1):
            conn = pool.getconn()
            if _alive(conn):
                return conn
            pool.putconn(conn, close=True)
        return pool.getconn()  # every pooled connection was stale: this one is new

    def release(self, connection: Any, close: bool = False) -> None:
        """Give ``connection`` back (closed if ``close`` or broken)."""
        if self._pool is not None:
            self._pool.putconn(connection, close=close)

    def closeall(self) -> None:
        """Close every pooled connection."""
        if self._pool is not None:
            self._pool.closeall()
            self._pool = None

    def _open(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg2.pool import ThreadedConnectionPool

                self._pool = ThreadedConnectionPool(0, self.max_connections, self.url)
            return self._pool


def _alive(conn: Any) -> bool:
    import psycopg2

    if conn.closed:
        return False
    autocommit = conn.autocommit
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        conn.autocommit = autocommit
        return True
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        return False


def pinging_client(store: Any) -> Any:
    """A ``MessageDB`` client for Protean's Message DB ``store`` on a :class:`PingingPool`.

    Args:
        store: the domain's ``MessageDBStore`` (its ``conn_info`` gives the URL and pool size).
    """
    from message_db.client import MessageDB

    options = {key: store.conn_info[key] for key in ("max_connections",) if key in store.conn_info}
    return MessageDB(connection_pool=PingingPool(str(store.conn_info["database_uri"]), **options))
