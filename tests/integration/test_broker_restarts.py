"""A worker keeps consuming through Redis restarts, with real redis-server processes.

CI once lost a whole chaos run to this: Redis was killed while the worker held an
unacknowledged message and had a ``BRPOP`` in flight; Celery's cleanup of the lost
connection raised ``AttributeError`` inside Kombu, the worker main process exited
("Unrecoverable error") and nothing consumed again. See ``protean_celery/consumer.py``.
"""

import logging
import subprocess
import sys

import pytest
from kombu import Connection, Exchange, Queue

from protean_celery.consumer import close_quietly
from protean_celery.testing.servers import RedisServer
from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration


def _half_closed(redis: RedisServer) -> Connection:
    """A Kombu connection in the state Celery's cleanup leaves after Redis died mid-BRPOP."""
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
    with pytest.raises(connection.connection_errors):
        channel.close()  # stops half way: reading the BRPOP reply fails before the channel is marked closed
    connection._do_close_transport()  # as Connection.collect() ends: the transport is detached
    return connection


def test_closing_a_lost_redis_connection_kombu_left_half_closed_is_logged_not_raised(caplog):
    with RedisServer(persistent=True) as redis:
        with pytest.raises(AttributeError, match="hostname"):
            _half_closed(redis).close()  # what killed the worker: Celery lets this through
        redis.restart()
        connection = _half_closed(redis)
        close_quietly(connection)
        with caplog.at_level(logging.WARNING, logger="protean_celery.consumer"):
            connection.close()
    assert "closing the lost broker connection failed" in caplog.text
    assert "hostname" in caplog.text


def test_a_worker_keeps_consuming_through_repeated_redis_kills():
    result = subprocess.run([sys.executable, "benchmarks/broker_restarts.py", "--rounds", "8", "--seed", "3"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    output = result.stdout[-4000:] + result.stderr[-2000:]
    assert "probes consumed        8" in result.stdout, output
    assert "unrecoverable errors   0" in result.stdout, output
    assert result.returncode == 0, output
