"""A worker keeps consuming through Redis restarts, with real redis-server processes.

CI once lost a whole chaos run to this: Redis was killed while the worker held an
unacknowledged message and had a ``BRPOP`` in flight; Celery's cleanup of the lost
connection raised ``AttributeError`` inside Kombu, the worker main process exited
("Unrecoverable error") and nothing consumed again. See ``protean_celery/worker/connection.py``.
"""

import logging
import subprocess
import sys
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from protean_celery.testing.servers import RedisServer
from protean_celery.worker.connection import close_quietly
from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration


def _half_closed(redis: RedisServer, guarded: bool) -> tuple[Connection, Any]:
    """A Kombu connection in the state Celery's cleanup leaves after Redis died mid-BRPOP, and a message it held.

    ``guarded``: wrapped by ``close_quietly`` first, as our consumer does before Celery's cleanup starts.
    """
    connection = Connection(redis.url)
    channel = connection.default_channel
    queue = Queue("restart-probe", Exchange("restart-probe"), "restart-probe")
    connection.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue])
    held = []
    connection.Consumer([queue], callbacks=[lambda body, message: held.append(message)], channel=channel).consume()
    connection.drain_events(timeout=5)
    assert len(held) == 1  # delivered, not acknowledged: the channel must put it back on close
    channel._brpop_start()  # the event loop's BRPOP, in flight
    redis.kill()
    if guarded:
        close_quietly(connection)
    with pytest.raises(connection.connection_errors):
        channel.close()  # stops half way: reading the BRPOP reply fails before the channel is marked closed
    connection._do_close_transport()  # as Connection.collect() ends: the transport is detached
    return connection, held[0]


def test_closing_a_lost_redis_connection_kombu_left_half_closed_is_logged_not_raised(caplog):
    with RedisServer(persistent=True) as redis:
        connection, message = _half_closed(redis, guarded=False)
        with pytest.raises(AttributeError, match="hostname"):
            connection.close()  # what killed the worker: Celery lets this through
        with pytest.raises(AttributeError, match="hostname"):
            message.ack()  # and so would a task that finishes afterwards and acknowledges late
        redis.restart()
        connection, message = _half_closed(redis, guarded=True)
        errors = connection.connection_errors
        with caplog.at_level(logging.WARNING, logger="protean_celery.worker.connection"):
            connection.close()
        with pytest.raises(errors, match="lost and replaced"):
            message.ack()  # a connection error, which Celery's ack_log_error logs as "Couldn't ack"
        message.ack_log_error(logging.getLogger("test"), errors)
    assert "closing the lost broker connection failed" in caplog.text
    assert "hostname" in caplog.text


def test_a_worker_keeps_consuming_through_repeated_redis_kills():
    result = subprocess.run([sys.executable, "benchmarks/broker_restarts.py", "--rounds", "8", "--seed", "3"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    output = result.stdout[-4000:] + result.stderr[-2000:]
    assert "probes consumed        8" in result.stdout, output
    assert "unrecoverable errors   0" in result.stdout, output
    assert result.returncode == 0, output
