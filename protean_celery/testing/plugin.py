"""pytest plugin (``pytest11`` entry point ``protean_celery``).

Thin fixtures over the plain classes in ``protean_celery.testing``; importing
this module opens no connection and starts nothing.

* ``redis_server`` / ``postgres_server``: real servers on 127.0.0.1 (session scope).
* ``worker_factory``: start real ``celery worker`` processes, stopped after the test.
* ``protean_celery_clock``: a :class:`~protean_celery.testing.clock.FakeClock` on the
  test app's domain; ``protean_celery_clock.advance(timedelta(minutes=15))`` makes a
  15-minute deadline due at once.
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
def rabbitmq_server() -> Iterator[Any]:
    """A real RabbitMQ node on a free loopback port (fails if Debian's rabbitmq-server is not installed)."""
    from protean_celery.testing.rabbitmq import RabbitMQServer

    server = RabbitMQServer().start()
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
    from protean_celery.testing.processes import WorkerProcess

    started: list[WorkerProcess] = []

    def start(app: str, **options: Any) -> WorkerProcess:
        worker = WorkerProcess(app, **options)
        started.append(worker)
        worker.start()
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def protean_celery_settings() -> dict[str, Any]:
    """Override me: protean-celery settings for the test app (``[custom.celery]`` keys)."""
    return {}


@pytest.fixture(scope="session")
def protean_celery_domain() -> Any:
    """Override me (session scope): the Protean domain under test, not yet initialised."""
    raise pytest.UsageError(
        "Define a session-scoped fixture protean_celery_domain that returns your Protean domain "
        "(not yet initialised) to use protean_celery_app."
    )


@pytest.fixture(scope="session")
def protean_celery_testbed(protean_celery_domain: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The session's :class:`~protean_celery.testing.testbed.Testbed` (SQLite files, memory transport)."""
    from protean_celery.testing.testbed import Testbed

    bed = Testbed(protean_celery_domain, tmp_path_factory.mktemp("protean-celery"))
    try:
        yield bed
    finally:
        if bed.app is not None:
            bed.teardown()


@pytest.fixture
def protean_celery_app(protean_celery_testbed: Any, protean_celery_settings: dict[str, Any]) -> Iterator[Any]:
    """A ``ProteanCelery`` app on ``memory://``; every table, stream and queue is emptied after the test."""
    bed = protean_celery_testbed
    if bed.app is None:
        bed.settings.update(protean_celery_settings)
        bed.setup()
    try:
        yield bed.app
    finally:
        bed.reset()


@pytest.fixture
def protean_celery_drain(protean_celery_app: Any) -> Any:
    """``drain(until=None, **options)`` bound to the test app."""
    from functools import partial

    from protean_celery.testing.drain import drain

    return partial(drain, protean_celery_app)


@pytest.fixture
def protean_celery_clock(protean_celery_app: Any) -> Iterator[Any]:
    """A fake clock on the test app's domain (``advance(timedelta)`` moves it); the real one is back after."""
    from protean_celery.testing.clock import FakeClock

    clock = FakeClock.install(protean_celery_app.domain)
    try:
        yield clock
    finally:
        clock.uninstall()
