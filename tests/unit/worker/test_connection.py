"""The close guard: closing a lost connection logs instead of raising, and its channels fail as connection errors.

The trap itself (Kombu's ``'hostname'`` AttributeError after Redis dies mid-BRPOP) is reproduced with real
redis-server processes in tests/integration/test_broker_restarts.py.
"""

from types import SimpleNamespace

import pytest

from protean_celery.worker.connection import LostConnection, close_quietly


class _HalfClosed:
    """A connection whose close fails as Kombu's does once its transport is detached."""

    def __init__(self):
        self._transport = SimpleNamespace(client="the real client")
        self.closes = 0

    def close(self):
        self.closes += 1
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    release = close


def test_a_failing_close_is_logged_and_the_transport_gets_a_client_that_raises_connection_errors(caplog):
    connection = _HalfClosed()
    close_quietly(connection)
    connection.close()  # no AttributeError
    connection.release()  # Celery may release instead of close: guarded too
    assert connection.closes == 2
    assert "closing the lost broker connection failed" in caplog.text
    assert isinstance(connection._transport.client, LostConnection)
    with pytest.raises(ConnectionError, match="lost and replaced"):
        connection._transport.client.hdel("unacked", "tag")  # a late ack on the old channel


def test_a_connection_without_a_transport_is_still_closed_quietly():
    connection = SimpleNamespace(closed=[])
    connection.close = lambda: connection.closed.append(True)
    close_quietly(connection)
    connection.close()
    assert connection.closed == [True]
