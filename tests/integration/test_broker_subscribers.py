"""Broker subscribers through real workers: a Redis Streams stream fed by another process, handled once each.

``PartnerFeed`` (``tests/integration/partners_app.py``) reads stream ``partner_orders``
of a Protean ``redis`` broker. Another process publishes through Protean's own
broker adapter; beat ticks the bridge; a worker runs the subscriber. The worker is
killed with ``kill -9`` mid-run and started again: every message still ends in
exactly one receipt, the entries a killed bridge read and never acknowledged
included. A message the subscriber always raises on is retried, then
dead-lettered; a body that is not JSON and JSON that is not an object are
dead-lettered at once, with what was sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text

from protean_celery.deadletter import DeadLetter, DeadLetters
from protean_celery.testing.processes import BeatProcess, WorkerProcess
from tests.integration.orders import ROOT
from tests.integration.partners_app import MAX_RETRIES, STREAM
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

APP = "tests.integration.partners_app"
TASK = "protean.partners.PartnerFeed"
GROUP = f"{APP}.PartnerFeed"  # the consumer group: the subscriber's dotted path, as Protean's server names it
MESSAGES = 300

_PUBLISH = """
import sys
from tests.integration.partners_app import STREAM, domain

with domain.domain_context():
    broker = domain.brokers["partners"]
    for ref in sys.argv[1:]:
        broker.publish(STREAM, {"ref": ref, "metadata": {"domain": {"correlation_id": "c-" + ref}}})
"""


@pytest.fixture
def env(redis_server: Any, tmp_path: Path) -> dict[str, str]:
    base = redis_server.url.rsplit("/", 1)[0]
    for db in (9, 10):
        redis.Redis.from_url(f"{base}/{db}").flushdb()
    return {**os.environ, "CELERY_BROKER_URL": f"{base}/9", "PARTNER_REDIS_URL": f"{base}/10",
            "PROTEAN_CELERY_STATE": str(tmp_path), "PROTEAN_NO_AUTO_LOGGING": "1"}


@pytest.fixture
def beat(env: dict[str, str], tmp_path: Path) -> Iterator[BeatProcess]:
    setup = _celery(env, "protean", "db", "setup")
    assert setup.returncode == 0, setup.stderr
    with BeatProcess(APP, env=env, cwd=ROOT, log_path=tmp_path / "beat.log") as running:
        yield running  # type: ignore[misc]


def _celery(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celery", "-A", APP, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _publish(env: dict[str, str], refs: list[str]) -> None:
    """Publish ``{"ref": …}`` messages from another process, through Protean's redis broker."""
    result = subprocess.run([sys.executable, "-c", _PUBLISH, *refs], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _receipts(env: dict[str, str]) -> dict[str, int]:
    """Receipts saved, by ref."""
    engine = create_engine(f"sqlite:///{env['PROTEAN_CELERY_STATE']}/partners.db")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT ref, count(*) FROM receipt GROUP BY ref")).all()
        return {str(ref): int(count) for ref, count in rows}
    finally:
        engine.dispose()


def _attempts(env: dict[str, str], ref: str) -> int:
    engine = create_engine(f"sqlite:///{env['PROTEAN_CELERY_STATE']}/attempts.db")
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM attempts WHERE ref = :r"), {"r": ref}).scalar() or 0)
    except Exception:  # no attempt yet: no table
        return 0
    finally:
        engine.dispose()


def _state(env: dict[str, str], refs: list[str]) -> str:
    """What a failed wait left: refs without a receipt, stream entries pending, task messages queued or held."""
    missing = sorted(set(refs) - set(_receipts(env)))
    celery = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    return (f"no receipt for {len(missing)}: {missing[:10]}; stream entries pending: {_pending(env)}; "
            f"queued: {celery.llen(TASK)}; unacked: {celery.hlen('unacked')}")


def _dead_letters(env: dict[str, str]) -> list[DeadLetter]:
    engine = create_engine(f"sqlite:///{env['PROTEAN_CELERY_STATE']}/relay.db")
    try:
        return [entry for entry in DeadLetters(engine).list(task=TASK) if entry.task == TASK]
    finally:
        engine.dispose()


def _pending(env: dict[str, str]) -> int:
    """Entries of the stream the subscriber's consumer group read and did not acknowledge."""
    client = redis.Redis.from_url(env["PARTNER_REDIS_URL"])
    return int(client.xpending(STREAM, GROUP)["pending"])


def test_messages_from_another_process_are_handled_once_each_across_a_worker_kill(env, beat, tmp_path):
    refs = [f"order-{n}" for n in range(MESSAGES)]
    log = tmp_path / "worker.log"
    _publish(env, refs)
    # A bridge killed between reading and acknowledging: its entries stay pending under its consumer name.
    client = redis.Redis.from_url(env["PARTNER_REDIS_URL"])
    client.xgroup_create(STREAM, GROUP, id="0")
    held = client.xreadgroup(GROUP, "killed-bridge", {STREAM: ">"}, count=10)[0][1]
    assert len(held) == 10 and _pending(env) == 10
    worker = WorkerProcess(APP, concurrency=2, env=env, cwd=ROOT, log_path=log).start()
    wait_until(lambda: len(_receipts(env)) >= 20, "some receipts before the kill", worker=worker)
    worker.kill()  # kill -9 the main process and its children, mid-run
    handled_before_kill = len(_receipts(env))
    assert handled_before_kill < MESSAGES, "the kill came too late to prove anything"

    with WorkerProcess(APP, concurrency=2, env=env, cwd=ROOT, log_path=log) as again:
        try:
            receipts = wait_until(lambda: (found := _receipts(env)) and len(found) == MESSAGES and found,
                                  f"{MESSAGES} receipts", timeout=180, worker=again)
        except AssertionError as missing:
            raise AssertionError(f"{_state(env, refs)}\n{missing}") from None
        wait_until(lambda: _pending(env) == 0, "every stream entry acknowledged", worker=again)
    assert set(receipts) == set(refs)
    assert set(receipts.values()) == {1}, {ref: n for ref, n in receipts.items() if n != 1}
    assert _dead_letters(env) == []
    print(f"\nsubscriber: {MESSAGES} put, {len(receipts)} handled once each, {handled_before_kill} before kill -9")


def test_poison_messages_are_dead_lettered_with_the_reason_never_dropped(env, beat, tmp_path):
    client = redis.Redis.from_url(env["PARTNER_REDIS_URL"])
    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT, log_path=tmp_path / "worker.log") as worker:
        _publish(env, ["poison-1", "good-1"])
        client.xadd(STREAM, {"data": "{not json"})
        client.xadd(STREAM, {"data": json.dumps([1, 2, 3])})
        entries = wait_until(lambda: len(found := _dead_letters(env)) == 3 and found, "three dead letters",
                             worker=worker)
        wait_until(lambda: _pending(env) == 0, "every stream entry acknowledged", worker=worker)
    by_error = {entry.error.split(":")[0] + ":" + _what(entry): entry for entry in entries}
    poison = by_error["ValueError:poison-1"]
    assert poison.error == "ValueError: partner order poison-1 cannot be read"
    assert poison.attempts == MAX_RETRIES + 1 == _attempts(env, "poison-1")
    assert poison.payload["stream"] == STREAM and poison.payload["payload"]["ref"] == "poison-1"
    not_json = by_error["DecodeError:raw"]
    assert "empty or not JSON" in not_json.error and not_json.payload["raw"] == {"data": "{not json"}
    not_object = by_error["DecodeError:[1, 2, 3]"]
    assert "not an object (list)" in not_object.error
    assert _receipts(env) == {"good-1": 1}

    listed = _celery(env, "protean", "dlq", "list")
    assert listed.returncode == 0 and listed.stdout.count(TASK) == 3, listed.stdout + listed.stderr
    print(f"\nsubscriber: 4 put, 1 handled, {len(entries)} dead-lettered (1 after {poison.attempts} attempts)")


def _what(entry: DeadLetter) -> str:
    payload = entry.payload["payload"]
    if "raw" in entry.payload:
        return "raw"
    return str(payload.get("ref")) if isinstance(payload, dict) else str(payload)
