"""The CLI's shared helpers: user errors in one line, --json data, help without I/O, misplaced [celery]."""

import sqlite3
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError as DatabaseError

from protean_celery import ProteanCelery
from protean_celery.cli.errors import user_error_message
from protean_celery.cli.loading import help_requested
from protean_celery.cli.output import jsonable
from protean_celery.config_file import refuse_misplaced_celery_table
from protean_celery.errors import ConfigurationError, DeadLetterError
from protean_celery.outbox.cursor import MemoryCursorStore
from tests.support.shop import build_domain


@pytest.mark.parametrize("name", ["domain.toml", ".domain.toml"])
def test_a_top_level_celery_table_is_refused(tmp_path, name):
    (tmp_path / name).write_text("[celery]\nrelay_interval = 2\n")
    with pytest.raises(ConfigurationError, match=r"move it to \[custom.celery\]"):
        refuse_misplaced_celery_table(SimpleNamespace(root_path=str(tmp_path / "pkg")))  # found from a child


def test_pyproject_is_read_under_tool_protean(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.protean.custom.celery]\nnudge = false\n")
    refuse_misplaced_celery_table(SimpleNamespace(root_path=str(tmp_path)))
    (tmp_path / "pyproject.toml").write_text("[tool.protean.celery]\nnudge = false\n")
    with pytest.raises(ConfigurationError, match="pyproject.toml: Protean ignores a top-level"):
        refuse_misplaced_celery_table(SimpleNamespace(root_path=str(tmp_path)))


def test_the_app_refuses_a_misplaced_table_at_build(tmp_path):
    (tmp_path / "domain.toml").write_text("[custom.celery]\nnudge = false\n\n[celery]\nnudge = false\n")
    domain = build_domain()
    domain.init(traverse=False)
    domain.root_path = str(tmp_path)
    with pytest.raises(ConfigurationError, match=r"move it to \[custom.celery\]"):
        ProteanCelery(domain, config={"broker_url": "memory://"}, cursors=MemoryCursorStore())


@pytest.mark.parametrize(
    ("argv", "asked"),
    [
        (["celery", "-A", "x", "protean", "--help"], True),
        (["celery", "-A", "x", "protean", "status", "--help"], True),
        (["celery", "-A", "x", "protean", "status"], False),
        (["celery", "-A", "x", "call", "t", "--", "--help"], False),
    ],
)
def test_help_is_recognised(argv, asked):
    assert help_requested(argv) is asked


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


def test_json_data_has_iso_times_and_plain_containers():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jsonable({"at": when, "ids": ("a", "b"), 1: None}) == {
        "at": "2026-01-02T03:04:05+00:00", "ids": ["a", "b"], "1": None
    }
