"""The CLI and bad input, through real `celery` processes on a real Redis."""

import os
import subprocess
import sys

import pytest

from protean_celery.testing.processes import WorkerProcess
from tests.integration.orders import ROOT, dead_letters
from tests.support.waiting import broker_idle, wait_until

pytestmark = pytest.mark.integration

APP = "workers.orders.app"


@pytest.fixture
def env(redis_server, tmp_path):
    return {**os.environ, "CELERY_BROKER_URL": redis_server.url.rsplit("/", 1)[0] + "/3",
            "PROTEAN_CELERY_STATE": str(tmp_path), "PROTEAN_NO_AUTO_LOGGING": "1"}


def celery(env, *args, input_text=None):
    return subprocess.run([sys.executable, "-m", "celery", "-A", APP, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, input=input_text)


def check_app(env, tmp_path, changes):
    """``protean check`` on the orders app with ``changes`` applied to ``app`` first."""
    (tmp_path / "changed_app.py").write_text(f"from workers.orders.app import app\n{changes}")
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "changed_app", "protean", "check"], cwd=ROOT, capture_output=True,
        text=True, timeout=120, env={**env, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"},
    )


def test_topology_lists_every_handler_with_its_bindings(env):
    out = celery(env, "protean", "topology").stdout
    assert "task     protean.orders.OrderFulfillment  [process_manager]" in out
    for category in ("orders::order", "orders::inventory", "orders::payment", "orders::shipment"):
        assert f"  binding  {category}\n" in out
    assert "task     protean.orders.commands.Order  [command_dispatcher]" in out


def test_check_passes_then_fails_on_a_weakened_guarantee(env, tmp_path):
    assert celery(env, "protean", "check").returncode == 0
    weak = check_app(env, tmp_path, "app.conf.task_acks_late = False\n")
    assert weak.returncode == 1, weak.stdout + weak.stderr
    assert "task_acks_late = False weakens a guarantee" in weak.stdout


def test_check_fails_naming_each_declared_feature_it_does_not_honour(env, tmp_path):
    result = check_app(env, tmp_path, (
        "app.domain.config['server']['subscriptions'] = {'OrderFulfillment': {'circuit_breaker_threshold': 3}}\n"
        "app.domain.config['outbox'] = {**app.domain.config.get('outbox', {}), 'external_brokers': ['analytics']}\n"
    ))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PROBLEM  [server.subscriptions.OrderFulfillment] circuit_breaker_threshold: not honoured by " \
        "protean-celery: there is no circuit breaker" in result.stdout
    assert "PROBLEM  [outbox] external_brokers names 'analytics', which is not a broker in [brokers] " \
        "(configured: default). Add a [brokers.analytics] table" in result.stdout
    assert "guarantees in force" not in result.stdout


def test_an_app_declaring_a_subscription_key_without_meaning_here_is_refused_at_build(env, tmp_path):
    result = check_app(env, tmp_path, (
        "from protean_celery import ProteanCelery\n"
        "app.domain.config['server']['subscriptions'] = {'OrderFulfillment': {'messages_per_tick': 5}}\n"
        "app = ProteanCelery(app.domain)\n"
    ))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Remove the per-handler settings protean-celery cannot honour: [server.subscriptions.OrderFulfillment] " \
        "messages_per_tick: workers take one message at a time" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_setup_creates_the_tables_and_drop_asks_first(env, tmp_path):
    assert celery(env, "protean", "db", "setup").returncode == 0
    assert {"orders.db", "relay.db"} <= {p.name for p in tmp_path.iterdir()}
    refused = celery(env, "protean", "db", "drop", input_text="n\n")
    assert refused.returncode != 0 and "Are you sure?" in refused.stdout


def test_a_worker_without_a_broker_says_where_to_set_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(PROTEAN_CELERY_STATE=str(tmp_path), PROTEAN_NO_AUTO_LOGGING="1")
    result = celery(env, "worker", "-c", "1")
    assert result.returncode != 0
    assert "No broker URL" in result.stderr and "[custom.celery]" in result.stderr


def test_poison_payloads_and_unknown_tasks_neither_crash_nor_vanish(env):
    assert celery(env, "protean", "db", "setup").returncode == 0
    with WorkerProcess(APP, concurrency=1, env=env) as worker:
        from celery import Celery

        client = Celery(broker=env["CELERY_BROKER_URL"])
        client.send_task("protean.orders.commands.Order", args=({"not": "a message"},),
                         task_id="poison-1", queue="protean.orders.commands.Order")
        client.send_task("protean.orders.NoSuchHandler", args=({},), task_id="unknown-1",
                         queue="protean.orders.commands.Order")
        state = env["PROTEAN_CELERY_STATE"]
        wait_until(lambda: len(dead_letters(state)) == 2, "both messages dead-lettered", timeout=30, worker=worker)
        wait_until(lambda: broker_idle(env["CELERY_BROKER_URL"]), "the broker idle", timeout=30, worker=worker)
        assert worker.process.poll() is None  # still consuming
    # Each message dead-lettered once, never requeued in a loop (Celery still says "ignored and discarded").
    entries = {entry.task: entry for entry in dead_letters(state)}
    assert len(dead_letters(state)) == 2
    assert entries["protean.orders.commands.Order"].payload == {"not": "a message"}
    assert entries["protean.orders.commands.Order"].error.startswith("DecodeError: Task payload is not a Protean")
    assert entries["protean.orders.NoSuchHandler"].error.startswith("UnknownHandlerError: ")


def test_the_domain_is_found_from_protean_domain(env):
    auto = {**env, "PROTEAN_DOMAIN": "workers.orders.domain:domain", "PROTEAN_CELERY_TRAVERSE": "0"}
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "protean_celery.auto", "protean", "topology"],
                            cwd=ROOT, env=auto, capture_output=True, text=True, timeout=120)
    assert "task     protean.orders.OrderFulfillment" in result.stdout, result.stderr
    missing = subprocess.run([sys.executable, "-m", "celery", "-A", "protean_celery.auto", "protean", "topology"],
                             cwd=ROOT, env={**env, "PROTEAN_DOMAIN": "no.such.module"}, capture_output=True,
                             text=True, timeout=120)
    assert "No Protean domain found" in missing.stderr


def test_the_event_store_registers_through_the_entry_point_alone(tmp_path):
    code = (
        "from protean import Domain\n"
        f"d = Domain(name='ep')\nd.config['event_store'] = {{'provider': 'sqlalchemy', "
        f"'database_uri': 'sqlite:///{tmp_path}/e.db'}}\n"
        "d.init(traverse=False)\n"
        "print(type(d.event_store.store).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.stdout.strip() == "SQLEventStore", out.stderr  # nobody imported protean_celery


def test_redelivered_events_run_the_side_effect_once(env):
    assert celery(env, "protean", "db", "setup").returncode == 0
    with WorkerProcess(APP, concurrency=2, env=env) as worker:
        result = subprocess.run([sys.executable, "tests/integration/redeliver.py"], cwd=ROOT, capture_output=True,
                                text=True, timeout=180, env={**env, "PYTHONPATH": str(ROOT)})
        assert "courier attempts 1" in result.stdout, result.stdout + result.stderr + worker.tail()
    # The process manager made no second transition and requested no second payment; the ten copies
    # left the broker (the script waits for it to be idle) and none was dead-lettered.
    saga = result.stdout.split("saga before ")[1].split()
    assert saga[0:2] == saga[3:5] and saga[0] == "(1,", result.stdout
    assert dead_letters(env["PROTEAN_CELERY_STATE"]) == []


def test_poison_ends_in_the_dead_letter_queue_and_the_cli_shows_it(env):
    assert celery(env, "protean", "db", "setup").returncode == 0
    with WorkerProcess(APP, concurrency=1, env=env) as worker:
        from celery import Celery
        from protean.utils.eventing import MessageEnvelope

        client = Celery(broker=env["CELERY_BROKER_URL"])
        signed = {"checksum": MessageEnvelope.compute_checksum({})}  # signed, but no data Protean can rebuild
        poison = {"data": {}, "metadata": {"headers": {}, "envelope": signed}}
        client.send_task("protean.orders.OrderFulfillment", args=(poison,),
                         task_id="poison-2", queue="protean.orders.OrderFulfillment")
        wait_until(lambda: dead_letters(env["PROTEAN_CELERY_STATE"]), "the dead letter", timeout=30, worker=worker)
    listed = celery(env, "protean", "dlq", "list", "--task", "protean.orders.OrderFulfillment").stdout
    assert "1 dead letter(s)." in listed and "DeserializationError" in listed
    entry_id = listed.split()[0]
    inspected = celery(env, "protean", "dlq", "inspect", entry_id).stdout
    assert "task       protean.orders.OrderFulfillment" in inspected and "Traceback" in inspected
    assert "dead letters  1" in celery(env, "protean", "status").stdout
    assert "Replayed" in celery(env, "protean", "dlq", "replay", entry_id).stdout
    assert "0 dead letter(s)." in celery(env, "protean", "dlq", "list").stdout
    purged = celery(env, "protean", "dlq", "purge", "--yes").stdout
    assert "Purged 0 dead letter(s)." in purged
