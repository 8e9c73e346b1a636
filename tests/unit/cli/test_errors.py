"""The CLI's user errors: one line, the fix named, no password."""

import sqlite3
from types import SimpleNamespace

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError as DatabaseError

from protean_celery.cli.errors import user_error_message
from protean_celery.errors import DeadLetterError


def test_typed_errors_read_as_their_message_with_the_app_named():
    error = DeadLetterError("No dead letter 'x': `celery -A <app> protean dlq list` shows the ids.")
    assert user_error_message(error, None, "shop.app") == (
        "No dead letter 'x': `celery -A shop.app protean dlq list` shows the ids."
    )


def test_an_unreachable_broker_names_it_without_its_password():
    app = SimpleNamespace(conf=SimpleNamespace(broker_url="redis://:s3cret@127.0.0.1:1/0"))
    message = user_error_message(BrokerError("Error 111 connecting to 127.0.0.1:1."), app)
    assert message.startswith("Cannot reach the broker at redis://:***@127.0.0.1:1/0") and "s3cret" not in message
    assert "CELERY_BROKER_URL" in message


def test_no_broker_at_all_says_where_to_set_one():
    app = SimpleNamespace(conf=SimpleNamespace(broker_url=None))
    assert user_error_message(BrokerError("refused"), app).startswith("No broker URL")


def test_a_missing_table_says_run_db_setup():
    error = DatabaseError("SELECT 1", {}, sqlite3.OperationalError("no such table: outbox"))
    assert user_error_message(error, None, "shop.app") == (
        "A table is missing (no such table: outbox): run `celery -A shop.app protean db setup`."
    )


def test_an_unreachable_database_hides_the_password():
    reason = sqlite3.OperationalError('could not connect to "postgresql://app:pw@db/orders"\nDETAIL: more')
    message = user_error_message(DatabaseError("SELECT 1", {}, reason))
    assert message.startswith("Cannot reach the database") and ":pw@" not in message and "\n" not in message


def test_a_bug_is_not_a_user_error():
    assert user_error_message(KeyError("boom")) is None
    assert user_error_message(DatabaseError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error"))) is None
