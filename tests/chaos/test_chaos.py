"""Crash survival in CI: sagas through real workers while workers, beat, Redis, PostgreSQL and SQLite writers die.

Runs ``benchmarks/chaos.py`` (see ``tests/chaos/driver.py``) as a user would and
checks its report: every saga completed or compensated, courier side effects
once per shipped order, no outbox row left unpublished, and exactly the
injected poison in the dead letters, and nothing reclaimed from a live node.
Short runs only (the 1,000-saga runs are benchmarks: docs/guides/operations.md).
"""

import json
import subprocess
import sys

import pytest

from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration


def _chaos(tmp_path, *args):
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/chaos.py", "--json", str(report), "--timeout", "600", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    return result, json.loads(report.read_text())


def _assert_survived(result, data, orders, db_kills=0):
    output = result.stdout[-3000:] + result.stderr[-2000:]
    assert data["wrong"] == [], output
    assert data["completed"] + data["compensated"] == orders, output
    assert data["compensated"] == data["declined"], output
    assert data["courier_calls"] == data["completed"], output
    assert data["unpublished_outbox"] == 0, output
    assert len(data["dead_letters"]) == data["poison"] == 3, output
    assert {task for task, _ in data["dead_letters"]} == {"protean.orders.commands.Order"}, output
    assert data["reclaimed_from_live"] == [], output
    assert data["db_restarts"] == db_kills, output
    kinds = " ".join(data["events"])
    for event in ("kill -9 worker child", "kill -9 worker main", "kill -9 beat", "kill -9 broker"):
        assert event in kinds, output
    assert data["ok"] and result.returncode == 0, output


def test_sagas_survive_chaos_and_a_database_crash_on_postgres(tmp_path):
    result, data = _chaos(tmp_path, "--orders", "100", "--rate", "5", "--profile", "postgres", "--db-kills", "1")
    _assert_survived(result, data, 100, db_kills=1)


def test_sagas_survive_chaos_on_three_nodes_and_two_beats(tmp_path):
    result, data = _chaos(tmp_path, "--orders", "50", "--rate", "5", "--profile", "postgres", "--nodes", "3",
                          "--beats", "2", "--db-kills", "1")
    _assert_survived(result, data, 50, db_kills=1)
    assert (data["nodes"], data["beats"]) == (3, 2)
    assert " ".join(data["events"]).count("kill -9 worker main") == 3  # each node's main process once


def test_sagas_survive_chaos_on_rabbitmq(tmp_path):
    result, data = _chaos(tmp_path, "--orders", "60", "--rate", "5", "--profile", "postgres", "--broker", "rabbitmq")
    _assert_survived(result, data, 60)


def test_sagas_survive_chaos_and_killed_sqlite_writers_on_the_embedded_default(tmp_path):
    result, data = _chaos(tmp_path, "--orders", "40", "--rate", "4", "--profile", "sqlite", "--writer-kills", "2")
    _assert_survived(result, data, 40)
    assert data["writer_kills"] == 2, result.stdout[-3000:]  # each killed holding the write lock mid-transaction
    assert data["corrupted"] == [] and data["locked_errors"] == 0, result.stdout[-3000:]
