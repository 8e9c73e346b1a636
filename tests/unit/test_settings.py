import pytest

from protean_celery.errors import ConfigurationError
from protean_celery.settings import MIN_RELAY_INTERVAL, HandlerOptions, load_settings

OUTBOX = {"outbox": {"tick_interval": 0.01, "messages_per_tick": 25}}


def test_defaults_follow_the_outbox_table_with_the_interval_floored():
    settings = load_settings(OUTBOX)
    assert settings.relay_batch_size == 25
    assert settings.relay_interval == MIN_RELAY_INTERVAL
    assert settings.nudge is True
    assert settings.handler_defaults == HandlerOptions()


def test_maintenance_defaults_keep_dead_letters_and_a_week_of_inbox_markers():
    settings = load_settings(OUTBOX)
    assert settings.maintenance_interval == 300.0
    assert settings.inbox_retention_hours == 168.0
    assert settings.dead_letter_retention_days == 0.0


def test_maintenance_settings_are_read_from_custom_celery():
    table = {"maintenance_interval": 60, "inbox_retention_hours": 48, "dead_letter_retention_days": 30}
    settings = load_settings({"custom": {"celery": table}})
    assert (settings.maintenance_interval, settings.inbox_retention_hours) == (60.0, 48.0)
    assert settings.dead_letter_retention_days == 30.0


def test_custom_celery_table_then_overrides_win():
    config = {**OUTBOX, "custom": {"celery": {"relay_interval": 5, "max_retries": 7, "nudge": False}}}
    settings = load_settings(config, {"relay_interval": 2.5})
    assert settings.relay_interval == 2.5
    assert settings.nudge is False
    assert settings.handler_defaults.max_retries == 7


def test_per_handler_options_inherit_the_defaults():
    config = {"custom": {"celery": {"retry_delay_seconds": 3, "handlers": {"Fulfilment": {"max_retries": 9}}}}}
    settings = load_settings(config)
    assert settings.for_handler("Fulfilment") == HandlerOptions(max_retries=9, retry_delay_seconds=3.0)
    assert settings.for_handler("Other") == HandlerOptions(retry_delay_seconds=3.0)  # the rest: Protean's


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"relay_intervall": 1}, "relay_intervall"),
        ({"relay_interval": "soon"}, "relay_interval must be a number"),
        ({"relay_interval": 0}, "must be positive"),
        ({"visibility_timeout": 10}, "above your longest handler"),
        ({"queue_prefix": "a.b"}, "queue_prefix"),
        ({"handlers": {"X": {"max_retrys": 1}}}, "[custom.celery.handlers.X]"),
        ({"handlers": {"X": {"max_retries": -1}}}, "zero or positive"),
        ({"transient_retries": "many"}, "transient_retries must be an integer"),
        ({"max_retries": True}, "max_retries must be an integer"),
        ({"relay_interval": True}, "relay_interval must be a number"),
        ({"max_payload_bytes": -1}, "max_payload_bytes must be zero (no limit)"),
        ({"max_payload_bytes": "big"}, "max_payload_bytes must be an integer"),
        ({"max_payload_bytes": True}, "max_payload_bytes must be an integer"),
        ({"maintenance_interval": 0}, "maintenance_interval must be positive"),
        ({"dead_letter_retention_days": -1}, "dead_letter_retention_days"),
        ({"inbox_retention_hours": 0.5}, "must exceed the longest redelivery window (1 h"),
        ({"visibility_timeout": 7 * 86400}, "inbox_retention_hours (168) must exceed"),
        ({"sweep_interval": -1}, "sweep_interval must be 0 (no sweep) or positive"),
        ({"redeliver_after": 1}, "redeliver_after must be at least 5 seconds"),
        ({"redelivery_attempts": 0}, "redelivery_attempts must be at least 1"),
        ({"sweep_horizon_hours": 200}, "stay below inbox_retention_hours (168)"),
        ({"inbox_retention_hours": 12}, "sweep_horizon_hours (24) must exceed"),
        ({"accept_unsigned": "yes"}, "accept_unsigned must be true or false, got 'yes'"),
    ],
)
def test_bad_settings_name_what_to_fix(table, words):
    with pytest.raises(ConfigurationError) as info:
        load_settings({"custom": {"celery": table}})
    assert words in str(info.value)


def test_a_top_level_celery_table_is_reported():
    with pytest.raises(ConfigurationError, match=r"move it to \[custom.celery\]"):
        load_settings({"celery": {"broker_url": "redis://"}})


def test_max_payload_bytes_defaults_to_a_mebibyte_and_zero_means_no_limit():
    assert load_settings({}).max_payload_bytes == 1_048_576
    assert load_settings({"custom": {"celery": {"max_payload_bytes": "0"}}}).max_payload_bytes == 0


def test_unsigned_messages_are_refused_unless_accepted_for_a_migration():
    assert load_settings({}).accept_unsigned is False
    assert load_settings({"custom": {"celery": {"accept_unsigned": True}}}).accept_unsigned is True
