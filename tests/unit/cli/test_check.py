"""``protean check``: problems that break a guarantee, warnings that weaken one, and the exit code."""

from types import SimpleNamespace

from click.testing import CliRunner

from protean_celery.cli import protean
from protean_celery.cli.check import problems, warnings


def test_check_reports_an_amqp_broker_without_publisher_confirms(shop_app):
    shop_app.conf.broker_url = "amqp://guest:guest@127.0.0.1:5672//"
    assert not [line for line in problems(shop_app) if "confirm_publish" in line]  # the default is on
    shop_app.conf.broker_transport_options = {"visibility_timeout": 3600}
    assert [line for line in problems(shop_app) if "confirm_publish" in line]


def test_check_warns_when_nothing_would_republish_a_message_redis_lost(shop_app):
    shop_app.conf.broker_url = "redis://127.0.0.1:6379/0"
    assert not shop_app.runtime.sweep.enabled  # the memory provider keeps no inbox markers
    assert [line for line in warnings(shop_app) if "redelivery sweep is off" in line]
    shop_app.conf.broker_url = "amqp://guest:guest@127.0.0.1:5672//"
    assert not [line for line in warnings(shop_app) if "redelivery sweep" in line]


def test_check_exits_1_and_names_each_problem(shop_app):
    shop_app.conf.task_acks_late = False
    result = CliRunner().invoke(protean, ["check"], obj=SimpleNamespace(app=shop_app))
    assert result.exit_code == 1
    assert "PROBLEM  Celery setting task_acks_late = False weakens a guarantee" in result.output


def test_check_says_what_an_event_store_apart_from_the_aggregates_still_guarantees(shop_app):
    apart = [line for line in warnings(shop_app) if "not in a database of [databases]" in line]  # memory store
    assert len(apart) == 1
    assert "reuses them for state-based aggregates" in apart[0] and "event-sourced aggregate" in apart[0]


def test_check_does_not_warn_when_events_commit_with_the_aggregates(sqlite_app):
    assert not [line for line in warnings(sqlite_app) if "not in a database of [databases]" in line]  # one file


def test_check_warns_about_backfill_queues_the_running_workers_leave_out(memory_shop, monkeypatch):
    from protean_celery.broker import workers

    app = memory_shop(server={"default_subscription_type": "stream", "priority_lanes": {"enabled": True}})
    everything = {queue.name for queue in app.topology.queues}
    left_out = everything - {"protean.shop.Notifier.backfill"}
    monkeypatch.setattr(workers, "consumed_queues", lambda celery, timeout: left_out)
    result = CliRunner().invoke(protean, ["check"], obj=SimpleNamespace(app=app))
    assert "WARNING  Backfill queue(s) protean.shop.Notifier.backfill are not consumed" in result.output

    monkeypatch.setattr(workers, "consumed_queues", lambda celery, timeout: everything)
    assert not [line for line in warnings(app) if "Backfill" in line]
    monkeypatch.setattr(workers, "consumed_queues", lambda celery, timeout: None)  # no worker answered
    assert not [line for line in warnings(app) if "Backfill" in line]
