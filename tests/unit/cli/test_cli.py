"""The ``protean`` command group: every command listed, and ``-A`` must name a ProteanCelery app."""

from types import SimpleNamespace

from celery import Celery
from click.testing import CliRunner

from protean_celery.cli import protean


def test_help_lists_every_command():
    result = CliRunner().invoke(protean, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1].split()
    assert {"check", "db", "dlq", "drain", "outbox", "status", "topology"} <= set(commands)


def test_a_plain_celery_app_is_refused_naming_what_minus_a_must_name():
    result = CliRunner().invoke(protean, ["topology"], obj=SimpleNamespace(app=Celery("plain")))
    assert result.exit_code == 2
    assert "celery -A must name a ProteanCelery app" in result.output
