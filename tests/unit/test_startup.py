"""Start-up failures name the database with its password masked, chained to nothing."""

import pytest

from protean_celery import init_domain
from protean_celery.errors import ConfigurationError
from protean_celery.startup import configured_uris, database_uris
from protean_celery.testing.servers import free_port
from tests.support.shop import build_domain


def test_protean_connection_error_at_init_is_reraised_without_the_password():
    uri = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/orders"
    domain = build_domain(databases={"default": {"provider": "postgresql", "database_uri": uri}})
    with pytest.raises(ConfigurationError) as info:
        init_domain(domain, traverse=False)
    assert "s3cret" not in str(info.value) and "postgresql://app:***@127.0.0.1:" in str(info.value)
    assert str(info.value).startswith("domain.init() failed: ")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_every_uri_that_may_carry_a_password_is_known():
    config = {
        "databases": {"default": {"provider": "postgresql", "database_uri": "postgresql://app:pw@db/orders"}},
        "event_store": {"provider": "sqlalchemy", "database_uri": "sqlite:///events.db"},
        "brokers": {"default": {"provider": "redis", "URI": "redis://:pw2@cache:6379/0"}},
        "caches": {"default": {"uri": "redis://:pw3@cache:6379/1"}},
        "custom": {"celery": {"broker_url": "amqp://u:pw4@rabbit//", "state_database_uri": "sqlite:///state.db"}},
    }
    assert set(configured_uris(config)) == {
        "postgresql://app:pw@db/orders", "sqlite:///events.db", "sqlite:///state.db",
        "redis://:pw2@cache:6379/0", "redis://:pw3@cache:6379/1", "amqp://u:pw4@rabbit//",
    }


def test_every_sql_uri_of_a_config_is_named_once():
    config = {
        "databases": {
            "default": {"provider": "sqlite", "database_uri": "sqlite:///a.db"},
            "memory": {"provider": "memory"},
        },
        "event_store": {"provider": "sqlalchemy", "database_uri": "sqlite:///a.db"},
        "custom": {"celery": {"state_database_uri": "sqlite:///state.db"}},
    }
    assert database_uris(config) == ["sqlite:///a.db", "sqlite:///state.db"]
