"""``celery -A app protean metrics --once``: Prometheus text, exit codes, one line per failed component."""

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from protean_celery.cli import protean

FULFILMENT = "protean.shop.Fulfilment"


@pytest.fixture
def app(sqlite_app):
    return sqlite_app


def _metrics(app, *args):
    return CliRunner().invoke(protean, ["metrics", *args], obj=SimpleNamespace(app=app))


def test_metrics_once_prints_prometheus_text_and_exits_0(app):
    result = _metrics(app, "--once")
    assert result.exit_code == 0, result.output
    assert "# TYPE protean_celery_queue_depth gauge" in result.stdout
    assert f'protean_celery_dead_letters{{task="{FULFILMENT}"}} 0.0' in result.stdout
    assert 'protean_celery_up{component="broker"} 1.0' in result.stdout


def test_metrics_once_with_the_broker_down_names_it_and_exits_1(app):
    app.conf.broker_url = "redis://:s3cret@127.0.0.1:1/0"
    result = _metrics(app, "--once", "--timeout", "3")
    assert result.exit_code == 1
    assert 'protean_celery_up{component="broker"} 0.0' in result.stdout
    assert result.stderr.startswith("metrics: broker: ") and len(result.stderr.strip().splitlines()) == 1
    assert "s3cret" not in result.output and "Traceback" not in result.output
