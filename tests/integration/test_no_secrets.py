"""No password in any output: the app, a worker and every CLI command, right and wrong credentials.

A Redis with ``requirepass`` and a PostgreSQL whose user has a password serve
the orders example (``PROTEAN_ENV=production``: aggregates, event store and
relay state in PostgreSQL). Each scenario builds the app, runs a real ``celery
worker`` briefly and every ``celery -A app protean …`` command, and searches
all their output for the passwords, the right ones and the wrong ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from protean_celery.errors import ServerError
from protean_celery.testing.processes import WorkerProcess
from protean_celery.testing.servers import PostgresServer, RedisServer, free_port
from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration

APP = "workers.orders.app"
REDIS_SECRET, PG_SECRET, WRONG_SECRET = "redis-Pw-4711", "pg-Pw-0815", "wrong-Pw-1234"
SECRETS = (REDIS_SECRET, PG_SECRET, WRONG_SECRET)
COMMANDS = [
    ["protean", "db", "setup"], ["protean", "check"], ["protean", "status"], ["protean", "topology"],
    ["protean", "dlq", "list"], ["protean", "outbox", "status"], ["protean", "metrics", "--once"],
    ["protean", "health", "--liveness"], ["protean", "health", "--readiness"],
]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[RedisServer, PostgresServer]]:
    with RedisServer(password=REDIS_SECRET) as broker, PostgresServer(password=PG_SECRET) as database:
        yield broker, database


def _env(broker: str, database: str, state: Path) -> dict[str, str]:
    return {**os.environ, "CELERY_BROKER_URL": broker, "DATABASE_URL": database, "PROTEAN_ENV": "production",
            "PROTEAN_CELERY_STATE": str(state)}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _cli(env: dict[str, str], command: list[str]) -> subprocess.CompletedProcess[str]:
    return _run(env, "-m", "celery", "-A", APP, *command)


def _outputs(env: dict[str, str], worker_log: Path, worker_ready: str) -> dict[str, tuple[int, str]]:
    """Exit code and stdout + stderr of the app build, every CLI command and a brief worker.

    The build and ``db setup`` run first; the other commands only read, so they run
    side by side (each one is mostly its interpreter starting, or waiting on a refused
    connection), then the worker starts.
    """
    setup, *readers = COMMANDS
    found = {"build": _run(env, "-c", f"import {APP}"), " ".join(setup): _cli(env, setup)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = pool.map(lambda command: _cli(env, command), readers)
        found.update({" ".join(command): result for command, result in zip(readers, done, strict=True)})
    outputs = {name: (done.returncode, done.stdout + done.stderr) for name, done in found.items()}
    worker = WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT, log_path=worker_log)
    worker.ready_text = worker_ready
    try:
        worker.start(timeout=60)
        code = 0
    except ServerError:
        code = 1
    finally:
        worker.stop()
    outputs["worker"] = (code, worker.log())
    return outputs


def _leaks(outputs: dict[str, tuple[int, str]]) -> list[str]:
    return [f"{name}: {secret}" for name, (_code, text) in outputs.items() for secret in SECRETS if secret in text]


def test_right_credentials_leave_no_password_in_any_output(servers, tmp_path):
    broker, database = servers
    env = _env(broker.url, database.create_database("orders_secrets"), tmp_path)
    outputs = _outputs(env, tmp_path / "worker.log", " ready.")
    assert _leaks(outputs) == []
    no_worker_yet = ("protean check", "protean health --readiness")  # the worker starts after the commands
    failed = {name: text for name, (code, text) in outputs.items() if code != 0 and name not in no_worker_yet}
    assert failed == {}
    assert "redis://:**" in outputs["worker"][1]  # Celery's banner names the broker, masked


@pytest.mark.parametrize("wrong", ["database password", "database port", "broker password"])
def test_wrong_credentials_fail_with_errors_that_quote_no_password(servers, tmp_path, wrong):
    broker, database = servers
    database_url = database.create_database("orders_wrong")
    broker_url = broker.url
    if wrong == "database password":
        database_url = database_url.replace(PG_SECRET, WRONG_SECRET)
    elif wrong == "database port":
        database_url = database_url.replace(f":{database.port}/", f":{free_port()}/")
    else:
        broker_url = broker_url.replace(REDIS_SECRET, WRONG_SECRET)
    ready = "Cannot connect to" if wrong == "broker password" else " ready."
    outputs = _outputs(_env(broker_url, database_url, tmp_path), tmp_path / "worker.log", ready)
    assert _leaks(outputs) == []
    if wrong.startswith("database"):
        assert all(code != 0 for code, _text in outputs.values()), outputs
        assert "ConfigurationError: Preparing the databases failed: OperationalError" in outputs["build"][1]
        assert all("Preparing the databases failed: OperationalError" in text for _code, text in outputs.values())
    else:
        assert outputs["build"][0] == 0 and outputs["protean topology"][0] == 0
        code, output = outputs["protean status"]
        assert code == 1
        assert output.startswith("Error: Cannot reach the broker") and "invalid username-password pair" in output
        assert "Cannot connect to redis://:**@" in outputs["worker"][1]
