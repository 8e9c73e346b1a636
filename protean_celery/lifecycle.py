"""Celery signal receivers that keep a Protean domain safe under prefork.

* ``worker_process_init`` (in each child, right after fork): dispose inherited SQL
  pools with ``close=False`` (closing would cut the parent's sockets), drop the
  event store's cached client. The domain is never re-initialised in the child.
* ``worker_process_shutdown``: close the domain's connections.
* ``celeryd_init`` / ``beat_init``: stop at start when no broker is configured.
* ``celeryd_after_setup`` (``-Q`` applied): warn, naming them, about backfill queues
  (:mod:`protean_celery.lanes`) this worker leaves out while it takes their handler queues.
* ``task_unknown`` / ``task_rejected``: dead-letter what the consumer turns away
  (see :mod:`protean_celery.worker.consumer`).
* ``task_prerun`` / ``task_postrun``: Protean's trace events of handler tasks
  (see :mod:`protean_celery.traces`).

Protean's ``Engine`` is never run inside a worker: its shutdown closes the domain.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from celery import Celery, signals

from protean_celery import traces
from protean_celery.errors import ConfigurationError
from protean_celery.lanes import left_out_warning
from protean_celery.worker import consumer

if TYPE_CHECKING:
    from protean_celery.runtime import Runtime

__all__ = ["connect", "require_broker"]

logger = logging.getLogger(__name__)


def connect(app: Celery, runtime: Runtime) -> None:
    """Connect ``app``'s receivers (held by the app, so they live as long as it does).

    Args:
        app: the ``ProteanCelery`` app.
        runtime: its runtime (what a prefork child resets after fork and closes at shutdown).
    """

    def process_init(**_: Any) -> None:
        runtime.after_fork()

    def process_shutdown(**_: Any) -> None:
        try:
            runtime.close()
        except Exception:  # shutting down anyway; say why
            logger.exception("closing the domain failed")

    def check_broker(sender: Any = None, **_: Any) -> None:
        try:
            require_broker(app)
        except ConfigurationError as error:
            # Celery logs and swallows an Exception raised by a signal receiver;
            # SystemExit stops the worker or beat before it starts.
            raise SystemExit(f"protean-celery: {error}") from error

    def check_queues(sender: Any = None, instance: Any = None, **_: Any) -> None:
        if getattr(instance, "app", None) is not app:
            return
        left_out = runtime.topology.backfill_left_out(instance.app.amqp.queues.consume_from.keys())
        if left_out:
            logger.warning("protean-celery: %s", left_out_warning(left_out, "this worker's -Q"))

    app._protean_receivers = (  # type: ignore[attr-defined]
        process_init, process_shutdown, check_broker, check_queues,
    )
    signals.worker_process_init.connect(process_init, weak=True)
    signals.worker_process_shutdown.connect(process_shutdown, weak=True)
    signals.celeryd_init.connect(check_broker, weak=True)
    signals.beat_init.connect(check_broker, weak=True)
    signals.celeryd_after_setup.connect(check_queues, weak=True)
    consumer.connect(app, runtime)
    traces.connect(app, runtime)


def require_broker(celery: Celery) -> str:
    """The configured broker URL (checked when a worker or beat starts; re-exported by ``protean_celery.app``).

    Raises:
        ConfigurationError: none is configured anywhere.
    """
    url = celery.conf.broker_url
    if not url:
        raise ConfigurationError(
            "No broker URL: set Celery's broker_url (celeryconfig.py, app.conf or the "
            "CELERY_BROKER_URL environment variable) or broker_url under [custom.celery] in domain.toml."
        )
    return str(url)
