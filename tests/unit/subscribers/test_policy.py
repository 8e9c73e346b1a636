"""A subscriber's retries: its own table, then Protean's [server.broker_subscription], then ours."""

import pytest

from protean_celery.errors import ConfigurationError
from protean_celery.settings import load_settings
from protean_celery.subscribers.policy import subscriber_policy


def _policy(server=None, celery=None):
    config = {"server": {"broker_subscription": server or {}}, "custom": {"celery": celery or {}}}
    return subscriber_policy(config, load_settings(config), "PartnerFeed")


def test_nothing_configured_gives_the_defaults():
    policy = _policy()
    assert (policy.max_retries, policy.retry_delay_seconds, policy.transient_retries) == (3, 1.0, 10)


def test_protean_s_broker_subscription_table_is_read():
    policy = _policy(server={"max_retries": 5, "retry_delay_seconds": 0.25})
    assert (policy.max_retries, policy.retry_delay_seconds) == (5, 0.25)


def test_the_subscriber_s_own_table_wins_and_custom_celery_fills_the_rest():
    policy = _policy(
        server={"max_retries": 5},
        celery={"retry_delay_seconds": 2.0, "handlers": {"PartnerFeed": {"max_retries": 1}}},
    )
    assert (policy.max_retries, policy.retry_delay_seconds) == (1, 2.0)


def test_a_malformed_broker_subscription_value_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="max_retries must be an integer"):
        _policy(server={"max_retries": "many"})
