"""``ProteanCelery(domain)``: a ``celery.Celery`` wired from a Protean domain.

Building the app is import-time deterministic: every prefork child and beat
derives the same tasks, queues and schedule from the same domain, so nothing
depends on what the parent process did after import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from celery import Celery

from protean_celery import lifecycle
from protean_celery.config_file import refuse_misplaced_celery_table
from protean_celery.cut_reads import retry_cut_reads
from protean_celery.lifecycle import require_broker
from protean_celery.outbox import beat_entries
from protean_celery.outbox.admin import providers as outbox_providers
from protean_celery.outbox.cursor import CursorStore
from protean_celery.runtime import Runtime
from protean_celery.settings import load_settings
from protean_celery.signing import enable_signing
from protean_celery.state import state_database
from protean_celery.subscribers import Subscribers
from protean_celery.subscriptions import refuse_unhonoured
from protean_celery.tasks import register_tasks
from protean_celery.topology import Topology

if TYPE_CHECKING:
    from protean.domain import Domain

__all__ = ["ProteanCelery", "Runtime", "guarantee_defaults", "require_broker"]


class ProteanCelery(Celery):
    """A Celery app that runs a Protean domain's handlers, process managers and relay.

    Args:
        domain: an initialised Protean domain (``domain.init()`` was called).
        config: Celery settings (``broker_url``, ``worker_concurrency`` …), applied
            with ``conf.update``; ``config_from_object`` works as usual too.
        cursors: where the command relay keeps its cursors (default: a SQL table
            in the state database, ``[custom.celery] state_database_uri``, else the
            default database; see :mod:`protean_celery.state`).
        **overrides: protean-celery settings, above ``[custom.celery]``.

    Raises:
        ConfigurationError: the domain is not initialised or has no handlers, a
            setting is wrong, or no broker URL is configured.
        SubscriptionSettingError: a per-handler subscription setting that has no
            meaning under Celery (see :mod:`protean_celery.subscriptions`).
        TopologyError: handlers that cannot be mapped onto tasks and queues.

    Example::

        domain.init(traverse=False)
        app = ProteanCelery(domain)   # celery -A module.app worker
    """

    def __init__(
        self,
        domain: Domain,
        *,
        config: Mapping[str, Any] | None = None,
        cursors: CursorStore | None = None,
        **overrides: Any,
    ) -> None:
        refuse_misplaced_celery_table(domain)
        refuse_unhonoured(domain)  # per-handler subscription settings with no meaning here
        settings = load_settings(domain.config, overrides)
        super().__init__(f"protean.{domain.normalized_name}")
        self.domain = domain
        self.settings = settings
        self.runtime = Runtime(self, domain, settings, state_database(domain, settings, cursors))
        retry_cut_reads(domain)  # repositories: a read cut mid-statement runs again on a fresh connection
        self.subscribers = Subscribers(self, self.runtime)
        self.add_defaults(lambda: guarantee_defaults(self.runtime, outbox_providers(domain), self.subscribers))
        if config:
            self.conf.update(dict(config))
        enable_signing(self, settings)
        register_tasks(self, self.runtime)
        lifecycle.connect(self, self.runtime)

    @property
    def topology(self) -> Topology:
        """The domain's exchanges, queues, bindings and tasks."""
        return self.runtime.topology

    def process(self, command: Any, **kwargs: Any) -> Any:
        """``domain.process(command)`` inside the domain's context.

        The command leaves at once, as it does from Protean's own ``domain.process``
        in any process with an app (:mod:`protean_celery.commits`).

        Raises:
            UnknownHandlerError: no command handler of this app takes the command's
                type; nothing was stored (Protean would store it, and the relay would
                dead-letter it).
        """
        refuse_unhandled(self.topology, command)
        with self.runtime.commits.deferred(), self.domain.domain_context():
            result = self.domain.process(command, **kwargs)
        self.runtime.nudge()
        return result

    def relay(self) -> Any:
        """Relay every pending outbox row and command now; returns a ``RelayReport``."""
        return self.runtime.relay.run()


def refuse_unhandled(topology: Topology, command: Any) -> None:
    """Raise when no command handler of ``topology`` takes ``command``'s type (a registered command).

    Raises:
        UnknownHandlerError: naming the command and what to register.
    """
    from protean.utils import DomainObjects

    from protean_celery.errors import UnknownHandlerError

    message_type = getattr(type(command), "__type__", None)
    if getattr(type(command), "element_type", None) is not DomainObjects.COMMAND or message_type is None:
        return  # not a registered command: Protean's own error says so
    if not topology.takes_command(message_type):
        raise UnknownHandlerError(
            f"No command handler of this app takes {message_type} ({type(command).__name__}); nothing was stored. "
            "Register one: a @domain.command_handler(part_of=<its aggregate>) method decorated "
            f"@handle({type(command).__name__}).",
            message_type=message_type,
        )


def guarantee_defaults(
    runtime: Runtime, providers: list[str], subscribers: Subscribers | None = None
) -> dict[str, Any]:
    """The Celery settings protean-celery's guarantees rely on (lowest precedence).

    ``celery -A app protean check`` names each one a user setting weakens.
    ``subscribers`` adds the broker subscribers' queues, routes and bridge ticks.
    """
    settings = runtime.settings
    topology = runtime.topology
    broker = os.environ.get("CELERY_BROKER_URL") or settings.broker_url
    defaults: dict[str, Any] = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_queues": list(topology.queues),
        "task_routes": topology.task_routes(),
        "task_default_queue": topology.relay_queue.name,
        "task_default_exchange": topology.relay_queue.name,
        # visibility_timeout: Redis. confirm_publish: AMQP; a publish returns only once the
        # broker has the message (without it one sent on a connection that just died is lost
        # while the relay marks it published).
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout, "confirm_publish": True},
        "broker_connection_retry_on_startup": True,
        # Celery's consumer, but undecodable bodies land in the dead letters.
        "worker_consumer": "protean_celery.worker.consumer:Consumer",
        # Celery's prefork pool, but a reconnect does not trip over a child that just exited.
        "worker_pool": "protean_celery.worker.pool:TaskPool",
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "beat_schedule": beat_entries(
            topology.relay_tasks, topology.relay_queue.name, providers, settings.relay_interval,
            maintenance_interval=settings.maintenance_interval, sweep_interval=settings.sweep_interval,
            deadline_interval=settings.deadline_interval,
        ),
    }
    if subscribers is not None:
        defaults["task_queues"] += list(subscribers.queues)
        defaults["task_routes"].update(subscribers.task_routes())
        defaults["beat_schedule"].update(subscribers.beat_entries())
    if broker:
        defaults["broker_url"] = broker
    return defaults
