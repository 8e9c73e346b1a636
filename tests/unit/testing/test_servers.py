"""Missing binaries and bad URIs are typed errors that say how to fix them (no sockets)."""

import pytest

from protean_celery.errors import ConfigurationError, ServerBinaryNotFound
from protean_celery.testing import servers


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
