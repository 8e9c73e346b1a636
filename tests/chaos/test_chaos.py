"""Crash survival in CI: sagas through real workers while workers, beat and Redis are killed.

Runs ``benchmarks/chaos.py`` (see ``tests/chaos/driver.py``) as a user would and
checks its report: every saga completed or compensated, courier side effects
once per shipped order, no outbox row left unpublished, and exactly the
injected poison in the dead letters.
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


def _assert_survived(result, data, orders):
    output = result.stdout[-3000:] + result.stderr[-2000:]
    assert data["wrong"] == [], output
    assert data["completed"] + data["compensated"] == orders, output
    assert data["compensated"] == data["declined"], output
    assert data["courier_calls"] == data["completed"], output
    assert data["unpublished_outbox"] == 0, output
    assert len(data["dead_letters"]) == data["poison"] == 3, output
    assert {task for task, _ in data["dead_letters"]} == {"protean.orders.commands.Order"}, output
    kinds = " ".join(data["events"])
    for event in ("kill -9 worker child", "kill -9 worker main", "kill -9 beat", "kill -9 broker"):
        assert event in kinds, output
    assert data["ok"] and result.returncode == 0, output


def test_sagas_survive_chaos_on_postgres(tmp_path):
    result, data = _chaos(tmp_path, "--orders", "100", "--rate", "5", "--profile", "postgres")
    _assert_survived(result, data, 100)


def test_sagas_survive_chaos_on_rabbitmq(tmp_path):
    result, data = _chaos(tmp_path, "--orders", "60", "--rate", "5", "--profile", "postgres", "--broker", "rabbitmq")
    _assert_survived(result, data, 60)


def test_sagas_survive_chaos_on_the_embedded_default(tmp_path):
    result, data = _chaos(tmp_path, "--orders", "40", "--rate", "4", "--profile", "sqlite")
    _assert_survived(result, data, 40)
