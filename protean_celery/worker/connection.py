"""A lost Redis connection that Kombu left half closed is logged, not fatal to the worker (I/O).

When Redis goes away while a ``BRPOP`` is in flight and the worker holds
unacknowledged messages, Kombu's first close of the channel can stop half way;
closing the connection again then tries to put those messages back through a
transport it has already detached and raises ``AttributeError`` (``'NoneType'
object has no attribute 'hostname'``), which Celery treats as unrecoverable: the
worker main process exits and, without a supervisor, nothing consumes again.
:func:`close_quietly` (applied by :class:`protean_celery.worker.consumer.Consumer`
when the connection is lost) logs that close instead, and Celery reconnects as
it does for any connection loss; the messages stay in Kombu's unacked hash until
the redelivery sweep finds no worker holding them (or the visibility timeout),
and the inbox absorbs any second copy.

Upstream: kombu/kombu#582 (``'NoneType' object has no attribute 'hostname'``
when a Redis channel closes after its connection is gone); the worker that stops
consuming after a Redis reset is celery/celery#8030 and celery/celery#10205.
The trap is reproduced with real redis-server processes in
``tests/integration/test_broker_restarts.py``; ``tests/unit/test_worker_connection.py``
covers the guard itself.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["LostConnection", "close_quietly"]

logger = logging.getLogger(__name__)


def close_quietly(connection: Any) -> None:
    """Make ``connection.close()`` log, not raise, and leave its channels failing with connection errors.

    Celery closes the lost connection with Kombu's ``ignore_errors``, which lets
    everything but connection and channel errors through (see the module text).
    Tasks that were running go on and acknowledge their messages afterwards, on
    the old channel: Kombu would raise ``AttributeError`` again there (its
    transport is detached), inside the event loop, and stop the worker. The
    detached transport gets a stand-in client that raises ``ConnectionError``
    instead, which Celery logs as "Couldn't ack" and carries on.

    Args:
        connection: the Kombu connection the worker's consumer just lost.
    """
    close = connection.close
    transport = getattr(connection, "_transport", None)

    def quietly() -> None:
        try:
            close()
        except Exception as error:  # the connection is discarded either way; a crash here stops the worker
            logger.warning(
                "closing the lost broker connection failed (%r); reconnecting anyway. Messages this worker "
                "held go back on their queues once no worker holds them (redelivery sweep) or after the "
                "broker's visibility timeout.", error,
            )
        finally:
            if transport is not None:
                transport.client = LostConnection()

    connection.close = connection.release = quietly


class LostConnection:
    """Stands in for the client of a transport whose connection was lost and replaced."""

    def __getattr__(self, name: str) -> Any:
        raise ConnectionError(
            "this broker connection was lost and replaced; a message received on it cannot be acknowledged "
            "or rejected here any more (it goes back on its queue once no worker holds it)"
        )
