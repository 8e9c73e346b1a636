"""The roll of worker nodes the redelivery sweep keeps in Redis, on a real redis-server."""

import pytest
import redis

from protean_celery.broker.nodes import FORGET_AFTER, NODE_GRACE, ROLL_KEY, silent_nodes


@pytest.fixture
def client(redis_server):
    client = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/10")
    client.flushdb()
    return client


def test_a_node_that_answered_within_the_grace_and_not_now_is_silent(client):
    assert silent_nodes(client, {"a@h", "b@h"}, grace=10, now=1000.0) == set()
    assert silent_nodes(client, {"a@h"}, grace=10, now=1000.0 + NODE_GRACE) == {"b@h"}
    assert silent_nodes(client, {"a@h"}, grace=10, now=1001.0 + NODE_GRACE) == set()  # b is dead now


def test_a_node_that_answers_again_is_not_silent_and_an_old_one_is_forgotten(client):
    silent_nodes(client, {"a@h", "b@h"}, grace=60, now=1000.0)
    assert silent_nodes(client, {"a@h", "b@h"}, grace=60, now=1030.0) == set()
    silent_nodes(client, {"a@h"}, grace=60, now=1001.0 + FORGET_AFTER + 30)
    assert set(client.hgetall(ROLL_KEY)) == {b"a@h"}


def test_no_answer_records_nothing(client):
    assert silent_nodes(client, set(), grace=60, now=1000.0) == set()
    assert client.hgetall(ROLL_KEY) == {}
