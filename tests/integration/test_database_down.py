"""A database down for longer than the transient-retry budget: dead-lettered, then replayed once it is back.

``JobRunner`` (``tests/integration/flaky_app.py`` with ``FLAKY_DATABASE_URL``) keeps its
jobs and inbox on PostgreSQL, with ``[custom.celery.handlers.JobRunner]
transient_retries = 2``; the dead letters live in SQLite. PostgreSQL is stopped
(``pg_ctl stop -m immediate``) under a running worker: the message is tried three
times as a transient error, then dead-lettered. Once PostgreSQL is back,
``protean dlq replay`` runs it to completion.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from protean_celery.testing.processes import WorkerProcess
from protean_celery.testing.servers import PostgresServer
from tests.integration.flaky import APP, celery, dead_letter, flaky_env, job_payloads, send, wait_until
from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with PostgresServer(crash_safe=True) as started:
        yield started


@pytest.fixture(scope="module")
def env(redis_server: Any, server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = flaky_env(redis_server.url.rsplit("/", 1)[0] + "/7", tmp_path_factory.mktemp("dbdown"))
    env["FLAKY_DATABASE_URL"] = server.create_database("dbdown")
    setup = celery(env, "protean", "db", "setup")
    assert setup.returncode == 0, setup.stderr
    return env


def _saved(url: str, job_id: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text("SELECT count(*) FROM job WHERE job_id = :id"), {"id": job_id}).scalar())
    finally:
        engine.dispose()


def test_a_message_dead_lettered_while_the_database_was_down_is_replayed_once_it_is_back(env, server):
    payload = job_payloads(env, {"down-1": 0})["down-1"]
    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT):
        server.kill()
        try:
            send(env, payload, "down-1")
            wait_until(lambda: dead_letter(env, "down-1") is not None, timeout=120, what="the dead letter")
        finally:
            server.restart()
        entry = dead_letter(env, "down-1")
        assert entry is not None and entry.attempts == 3  # the first try and its 2 transient retries
        assert entry.error.startswith("OperationalError"), entry.error
        assert not _saved(env["FLAKY_DATABASE_URL"], "down-1")

        replay = celery(env, "protean", "dlq", "replay", entry.id)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        wait_until(lambda: _saved(env["FLAKY_DATABASE_URL"], "down-1"), timeout=120, what="the replayed job")
    assert dead_letter(env, "down-1") is None
