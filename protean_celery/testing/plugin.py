"""pytest plugin (``pytest11`` entry point ``protean_celery``).

Thin fixtures over the plain classes in ``protean_celery.testing``; importing
this module opens no connection and starts nothing.

* ``redis_server`` / ``postgres_server``: real servers on 127.0.0.1 (session scope).
* ``worker_factory``: start real ``celery worker`` processes, stopped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: runs real servers and real celery worker processes")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A real ``redis-server`` on a free loopback port (fails if none is installed)."""
    from protean_celery.testing.servers import RedisServer

    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL cluster on a free loopback port (fails if not installed)."""
    from protean_celery.testing.servers import PostgresServer

    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def worker_factory() -> Iterator[Any]:
    """``worker_factory(app, concurrency=2, env=...)`` starts a real prefork worker."""
    from protean_celery.testing.worker import WorkerProcess

    started: list[WorkerProcess] = []

    def start(app: str, **options: Any) -> WorkerProcess:
        worker = WorkerProcess(app, **options)
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
