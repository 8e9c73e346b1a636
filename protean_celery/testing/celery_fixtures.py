"""Celery's own pytest fixtures (``celery_app``, ``celery_worker``) serving a ``ProteanCelery`` app.

Celery's fixtures (``celery.contrib.pytest``, registered by the ``pytest-celery``
package in the ``tests`` extra) build a bare test app with no Protean task on
it. Import these two overrides into your ``conftest.py``: they hand Celery's
fixtures the plugin's ``protean_celery_app`` (a ``ProteanCelery`` app on Kombu's
in-memory transport, its tables emptied after each test) instead::

    # conftest.py
    import pytest
    from protean_celery.testing.celery_fixtures import celery_app, celery_worker  # noqa: F401

    @pytest.fixture(scope="session")
    def protean_celery_domain():
        from myapp.domain import domain
        return domain

    # a test
    def test_order(celery_app, celery_worker):
        celery_app.process(PlaceOrder(...))   # a real worker thread handles the cascade
        ...wait on a condition...

``celery_config`` and ``@pytest.mark.celery(...)`` still apply (for the test,
restored after); ``celery_worker_pool`` (``solo``) and ``celery_worker_parameters``
still shape the worker. Celery's ping check is off by default (it needs a result
backend); pass ``perform_ping_check=True`` with a ``result_backend`` to turn it on.

pytest-celery's container fixtures (``celery_setup``, ``CeleryTestSetup``) need
Docker and are not wired to a ``ProteanCelery`` app.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

__all__ = ["celery_app", "celery_worker"]

_UNSET = object()


@pytest.fixture
def celery_app(
    request: pytest.FixtureRequest, protean_celery_app: Any, celery_config: Mapping[str, Any]
) -> Iterator[Any]:
    """The ``ProteanCelery`` test app (``protean_celery_app``) as Celery's ``celery_app``.

    ``celery_config`` and the test's ``@pytest.mark.celery(**settings)`` are applied
    to its ``conf`` for this test and restored afterwards.
    """
    from celery.contrib.testing.app import setup_default_app

    mark = request.node.get_closest_marker("celery")
    overrides = {**celery_config, **(mark.kwargs if mark else {})}
    app = protean_celery_app
    saved = {key: app.conf.get(key, _UNSET) for key in overrides}
    app.conf.update(overrides)
    try:
        with setup_default_app(app, use_trap=False):
            yield app
    finally:
        for key, value in saved.items():
            if value is _UNSET:
                app.conf.pop(key, None)
            else:
                app.conf[key] = value


@pytest.fixture
def celery_worker(
    celery_app: Any, celery_worker_pool: Any, celery_worker_parameters: Mapping[str, Any]
) -> Iterator[Any]:
    """An in-thread Celery worker (``celery.contrib.testing.worker.start_worker``) consuming ``celery_app``'s queues.

    Every handler queue and the relay queue of the topology are consumed; the
    task bodies are the ones a ``celery worker`` process runs.
    """
    from celery.contrib.testing.worker import start_worker

    parameters = {"perform_ping_check": False, **celery_worker_parameters}
    with _logging_restored(), start_worker(celery_app, pool=celery_worker_pool, **parameters) as worker:
        yield worker


@contextmanager
def _logging_restored() -> Iterator[None]:
    """Give the root logger its level and handlers back after the worker set up Celery's logging.

    ``start_worker`` configures logging as a worker does (root level ``error``, its own
    handler), which would hide later tests' warnings from ``caplog``.
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
