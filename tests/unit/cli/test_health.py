"""``celery -A app protean health`` and ``check``'s connectivity: exit codes and one-line output."""

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from protean_celery.cli import protean

CLOSED = "redis://:s3cret@127.0.0.1:1/0"


@pytest.fixture
def app(sqlite_app):
    return sqlite_app


def _health(app, *args):
    return CliRunner().invoke(protean, ["health", *args], obj=SimpleNamespace(app=app))


def test_health_needs_a_probe(app):
    result = _health(app)
    assert result.exit_code == 2 and "--liveness or --readiness" in result.output


def test_health_liveness_exit_codes(app):
    assert _health(app, "--liveness", "--timeout", "1").exit_code == 0
    app.conf.broker_url = CLOSED
    result = _health(app, "--liveness", "--timeout", "2")
    assert result.exit_code == 1
    assert result.output.startswith("unhealthy (liveness): broker: cannot reach redis://:***@127.0.0.1:1/0")
    assert len(result.output.strip().splitlines()) == 1 and "s3cret" not in result.output


def test_health_readiness_json_names_every_check(app):
    result = _health(app, "--readiness", "--timeout", "1", "--json")
    assert result.exit_code == 1  # no worker answers here
    document = json.loads(result.output)
    assert document["probe"] == "readiness" and document["ok"] is False
    assert {check["name"]: check["ok"] for check in document["checks"]}["database"] is True


def test_check_reports_an_unreachable_broker(app):
    app.conf.broker_url = CLOSED
    result = CliRunner().invoke(protean, ["check"], obj=SimpleNamespace(app=app))
    assert result.exit_code == 1
    assert "PROBLEM  broker: cannot reach redis://:***@127.0.0.1:1/0" in result.output
    assert "s3cret" not in result.output
