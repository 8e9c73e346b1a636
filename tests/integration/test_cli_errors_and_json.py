"""User errors on the CLI read as one line that names the fix; --json reads as data. Real `celery` processes."""

import json
import os
import subprocess
import sys

import pytest

from protean_celery.deadletter import DeadLetters
from protean_celery.sql import make_engine
from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration

APP = "workers.orders.app"


@pytest.fixture
def env(redis_server, tmp_path):
    return {**os.environ, "CELERY_BROKER_URL": redis_server.url.rsplit("/", 1)[0] + "/5",
            "PROTEAN_CELERY_STATE": str(tmp_path / "state"), "PROTEAN_NO_AUTO_LOGGING": "1",
            "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}


def celery(env, *args, app=APP):
    return subprocess.run([sys.executable, "-m", "celery", "-A", app, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _bad_setting(tmp_path):
    (tmp_path / "bad_setting_app.py").write_text(
        "from workers.orders.domain import domain\n"
        "domain.config['custom']['celery']['relay_interval'] = 'soon'\n"
        "from workers.orders.app import app\n"
    )
    return "bad_setting_app"


def _misplaced_table(tmp_path):
    (tmp_path / "misplaced" / "orders").mkdir(parents=True)
    (tmp_path / "misplaced" / "domain.toml").write_text("[celery]\nrelay_interval = 2\n")
    (tmp_path / "misplaced_app.py").write_text(
        "from workers.orders.domain import domain\n"
        f"domain.root_path = {str(tmp_path / 'misplaced' / 'orders')!r}\n"
        "from workers.orders.app import app\n"
    )
    return "misplaced_app"


def _no_broker(env):
    env.pop("CELERY_BROKER_URL")


def _dead_broker(env):
    env["CELERY_BROKER_URL"] = "redis://:s3cret@127.0.0.1:1/0"


# case: (prepare env, make app module, set up tables first, command, what the line says)
CASES = {
    "no broker": (_no_broker, None, True, ["status"], "No broker URL: set Celery's broker_url"),
    "broker unreachable": (_dead_broker, None, True, ["status"], "Cannot reach the broker at redis://:***@127.0.0.1:1/0"),
    "missing tables, dlq": (None, None, False, ["dlq", "list"], f"run `celery -A {APP} protean db setup`"),
    "missing tables, outbox": (
        None, None, False, ["outbox", "list", "--json"], f"run `celery -A {APP} protean db setup`"
    ),
    "unknown dead letter": (None, None, True, ["dlq", "inspect", "no-such-id"], f"`celery -A {APP} protean dlq list`"),
    "bad [custom.celery] value": (
        None, _bad_setting, False, ["topology"], "relay_interval must be a number, got 'soon'"
    ),
    "top-level [celery]": (None, _misplaced_table, False, ["check"], "move it to [custom.celery]"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_user_error_is_one_line_that_names_the_fix(env, tmp_path, case):
    prepare, make_app, setup, command, says = CASES[case]
    if setup:
        assert celery(env, "protean", "db", "setup").returncode == 0
    if prepare:
        prepare(env)
    app = make_app(tmp_path) if make_app else APP
    result = celery(env, "protean", *command, app=app)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], result.stderr
    assert "s3cret" not in result.stderr


def test_a_usage_error_exits_2(env):
    result = celery(env, "protean", "outbox", "requeue")
    assert result.returncode == 2 and "Give row ids, --all-abandoned or --all-stuck." in result.stderr
    assert "Traceback" not in result.stderr


def test_help_builds_no_app_and_creates_no_files(env, tmp_path):
    for command in (["protean", "--help"], ["protean", "status", "--help"], ["worker", "--help"]):
        result = celery(env, *command)
        assert result.returncode == 0 and "Usage:" in result.stdout, result.stderr
    assert not (tmp_path / "state").exists()


def test_json_outputs_carry_what_a_user_needs(env, tmp_path):
    assert celery(env, "protean", "db", "setup").returncode == 0
    payload = {"data": {"card": "4111"}, "metadata": {"headers": {
        "type": "Orders.OrderPlaced.v1", "id": "m-1", "stream": "orders::order-o1"}}}
    entry = DeadLetters(make_engine(f"sqlite:///{tmp_path}/state/relay.db", "test")).park(
        "protean.orders.OrderFulfillment", payload, ValueError("boom"))

    def read(*command):
        result = celery(env, "protean", *command, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    status = read("status")
    assert status["unrelayed"] == 0 and status["in_flight"] == 0
    assert status["queues"]["protean.orders.OrderFulfillment"] == 0
    assert status["dead_letters"] == {"protean.orders.OrderFulfillment": 1}
    assert status["outbox"]["default"]["pending"] == 0

    topology = read("topology")
    fulfilment = next(t for t in topology["tasks"] if t["task"] == "protean.orders.OrderFulfillment")
    assert fulfilment["kind"] == "process_manager" and "orders::order" in fulfilment["bindings"]
    assert fulfilment["queue"] == "protean.orders.OrderFulfillment"
    assert "sweep" in topology["relay"]["tasks"]

    listed = read("dlq", "list")
    assert [(e["id"], e["task"], e["message_type"], e["attempts"]) for e in listed] == [
        (entry, "protean.orders.OrderFulfillment", "Orders.OrderPlaced.v1", 1)]
    assert listed[0]["error"] == "ValueError: boom" and "payload" not in listed[0]

    inspected = read("dlq", "inspect", entry)
    assert inspected["payload"] == payload and "ValueError: boom" in inspected["traceback"]
    assert inspected["first_failed_at"].startswith("20")

    assert read("outbox", "status") == {"default": {"pending": 0, "processing": 0, "failed": 0, "stuck": 0,
                                                    "abandoned": 0, "published": 0}}
    assert read("outbox", "list", "--status", "published") == []

    check = read("check")
    assert check["ok"] is True and check["problems"] == [] and check["handler_tasks"] == len(topology["tasks"])


def test_check_json_lists_the_problem_and_exits_1(env):
    env.pop("CELERY_BROKER_URL")
    result = celery(env, "protean", "check", "--json")
    assert result.returncode == 1
    found = json.loads(result.stdout)
    assert found["ok"] is False and any(p.startswith("No broker URL") for p in found["problems"])
