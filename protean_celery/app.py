"""``ProteanCelery(domain)``: a ``celery.Celery`` wired from a Protean domain.

Building the app is import-time deterministic: every prefork child and beat
derives the same tasks, queues and schedule from the same domain, so nothing
depends on what the parent process did after import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from celery import Celery

from protean_celery import lifecycle
from protean_celery.commits import Commits, Committed
from protean_celery.config_file import refuse_misplaced_celery_table
from protean_celery.deadletter import DeadLetters
from protean_celery.eager import EagerCascade
from protean_celery.envelope import task_id as message_task_id
from protean_celery.errors import ConfigurationError, DeadLetterError, PayloadTooLarge
from protean_celery.flower import argsrepr
from protean_celery.inbox import Inbox
from protean_celery.outbox import Relay, beat_entries
from protean_celery.outbox.admin import providers as outbox_providers
from protean_celery.outbox.cursor import CursorStore, SQLCursorStore
from protean_celery.redelivery import Ledger, Sweep, Watch
from protean_celery.registry import read_handlers
from protean_celery.settings import CelerySettings, load_settings
from protean_celery.sql import tune_sqlite
from protean_celery.tasks import register_tasks
from protean_celery.tasks.retry import RetryPolicies
from protean_celery.topology import Topology, build_topology

__all__ = ["ProteanCelery", "Runtime", "guarantee_defaults"]

logger = logging.getLogger(__name__)


class Runtime:
    """What the tasks of one domain share: domain, settings, topology and relay."""

    def __init__(self, celery: Celery, domain: Any, settings: CelerySettings, cursors: CursorStore) -> None:
        self.domain = domain
        self.settings = settings
        self.topology: Topology = build_topology(
            domain.normalized_name,
            read_handlers(domain),
            prefix=settings.queue_prefix,
            known_types=_known_types(domain),
        )
        self.cursors = cursors
        state = _state_engine(cursors)
        self.dead_letters = DeadLetters(state)
        self.relay = Relay(celery, domain, self.topology, settings, cursors, self.dead_letters)
        self.retry_policies = RetryPolicies(domain, settings, (route.spec for route in self.topology.routes))
        # Appends to these categories never create outbox rows: commands and
        # process-manager transitions.
        self._quiet = {*self.topology.command_categories(), *_transition_categories(domain)}
        self.inbox = Inbox(domain)
        self.ledger = Ledger(state)
        self.sweep = Sweep(
            celery, domain, self.topology, settings, cursors, self.inbox, self.dead_letters, self.relay, self.ledger
        )
        self.commits = Commits(
            domain.event_store.store, self._relay_committed, self.relay.outbox_models(),
            background=lambda: not str(celery.conf.broker_url or "").startswith("memory")
            and not celery.conf.task_always_eager,
        )
        # Eager mode: the relay applies tasks here; after each, the relay runs for what it committed.
        self.relay.cascade = EagerCascade(celery, lambda: (self.commits.take(), self.relay.run()))
        # Process-manager transitions that commit with the inbox marker need no stream read up front.
        self.transitions = self.commits.appends if _transitions_with_marker(domain, self.inbox) else None
        tune_sqlite(domain)

    def replay(self, entry_id: str, celery: Celery) -> str:
        """Republish a dead letter to its handler's queue and forget it; returns the new task id.

        The copy gets the message's usual task id and, with the redelivery sweep on,
        a ledger entry: a copy the broker loses is republished like any other.
        """
        entry = self.dead_letters.get(entry_id)
        if entry.task == self.topology.relay_tasks["commands"]:
            return self._replay_parked_command(entry, celery)
        try:
            route = self.topology.route(entry.task)
        except KeyError:
            raise DeadLetterError(
                f"Dead letter {entry_id} is for task {entry.task!r}, which this app does not have: "
                "deploy that handler and replay it then, or purge it."
            ) from None
        category = entry.category or route.spec.categories[0]
        task_id = message_task_id(route.task_name, entry.message_id) if entry.message_id else f"replay-{entry.id}"
        celery.send_task(
            route.task_name, args=(entry.payload,), task_id=task_id, exchange=route.exchange,
            routing_key=category, declare=[route.queue], argsrepr=argsrepr(entry.payload), kwargsrepr="{}",
        )
        self.dead_letters.remove(entry.id)
        if entry.message_id and self.sweep.enabled:
            self.ledger.watch([Watch(route.task_name, entry.message_id, category, entry.payload, datetime.now(UTC))])
        return task_id

    def _replay_parked_command(self, entry: Any, celery: Celery) -> str:
        """Publish a command the command relay parked (its event store row) to its handler, once the cause is fixed.

        Raises:
            DeadLetterError: the row still cannot be read as a command, or is still above
                ``max_payload_bytes``; the dead letter stays.
        """
        from protean.utils.eventing import Message

        from protean_celery.envelope import encode, message_key, metadata_of

        try:
            message = Message.deserialize(entry.payload)
            category = entry.category or str(metadata_of(message).headers.stream).partition("-")[0]
            routes = self.topology.targets(category, str(metadata_of(message).headers.type))
        except Exception as exc:
            raise DeadLetterError(
                f"Dead letter {entry.id} holds an event store row the command relay could not read, and it still "
                f"cannot be read as a Protean command ({exc!r}): purge it and send the command again."
            ) from exc
        if not routes:
            raise DeadLetterError(
                f"Dead letter {entry.id}: no handler of this app takes {metadata_of(message).headers.type} from "
                f"{category!r}; deploy its command handler, or purge the entry."
            )
        try:
            with celery.producer_or_acquire() as producer:
                self.relay.publish(message, category, producer)
        except PayloadTooLarge as exc:
            raise DeadLetterError(
                f"Dead letter {entry.id} is still too large to publish ({exc}); raise [custom.celery] "
                "max_payload_bytes (and the broker's own limit) first, or purge it."
            ) from exc
        self.dead_letters.remove(entry.id)
        key = message_key(message)
        if self.sweep.enabled:
            now = datetime.now(UTC)
            payload = encode(message)
            self.ledger.watch([Watch(route.task_name, key, category, payload, now) for route in routes])
        return message_task_id(routes[0].task_name, key)

    def nudge(self) -> None:
        """Relay what this thread committed (see :mod:`protean_celery.commits`).

        Called when a handler task or ``app.process`` is done; their commits
        are deferred to this call so the relay runs after the task's own work
        (on the process's relay thread, except on Kombu's in-memory transport).
        """
        self.commits.committed()

    def _relay_committed(self, committed: Committed) -> None:
        """Relay what was just committed; a failure only delays it to the next tick.

        Outbox rows the commits wrote are published by id, without a claim; the
        commands are relayed past their cursors. A handler that produced nothing
        for the relay (a projector, say) costs no query.
        """
        if not self.settings.nudge:
            return
        touched = committed.categories
        commands = [c for c in self.topology.command_categories() if c in touched]
        # Outbox rows the hooks could not see (a provider without database sessions) are claimed instead.
        events = not committed.rows and any(c not in self._quiet for c in touched)
        try:
            if committed.rows:
                self.relay.publish_committed(committed.rows)
            if commands or events:
                self.relay.run(events=events, commands=commands, max_batches=1)
        except Exception as exc:  # beat's next tick relays it; never fail the committing caller
            logger.warning("relay right after a commit failed, the next beat tick will relay: %r", exc)

    def after_fork(self) -> None:
        """Make connections inherited from the parent safe in a prefork child."""
        for name in self.domain.providers:
            engine = getattr(self.domain.providers[name], "_engine", None)
            if engine is not None:
                engine.dispose(close=False)
        store = self.domain.event_store.store
        if hasattr(store, "dispose"):
            store.dispose(close=False)
        elif hasattr(store, "_client"):
            store._client = None  # Message DB: a lazy pool, rebuilt on first use
        if hasattr(self.cursors, "dispose"):
            self.cursors.dispose(close=False)

    def close(self) -> None:
        """Send what the relay thread still holds, then release the domain's connections (worker child shutdown)."""
        self.commits.flush()
        self.domain.close()


class ProteanCelery(Celery):
    """A Celery app that runs a Protean domain's handlers, process managers and relay.

    Args:
        domain: an initialised Protean domain (``domain.init()`` was called).
        config: Celery settings (``broker_url``, ``worker_concurrency`` …), applied
            with ``conf.update``; ``config_from_object`` works as usual too.
        cursors: where the command relay keeps its cursors (default: a SQL table
            in ``[custom.celery] state_database_uri``, else the default database).
        **overrides: protean-celery settings, above ``[custom.celery]``.

    Raises:
        ConfigurationError: the domain is not initialised or has no handlers, a
            setting is wrong, or no broker URL is configured.
        TopologyError: handlers that cannot be mapped onto tasks and queues.

    Example::

        domain.init(traverse=False)
        app = ProteanCelery(domain)   # celery -A module.app worker
    """

    def __init__(
        self,
        domain: Any,
        *,
        config: Mapping[str, Any] | None = None,
        cursors: CursorStore | None = None,
        **overrides: Any,
    ) -> None:
        refuse_misplaced_celery_table(domain)
        settings = load_settings(domain.config, overrides)
        super().__init__(f"protean.{domain.normalized_name}")
        self.domain = domain
        self.settings = settings
        self.runtime = Runtime(self, domain, settings, cursors or _cursor_store(domain, settings))
        self.add_defaults(lambda: guarantee_defaults(self.runtime, outbox_providers(domain)))
        if config:
            self.conf.update(dict(config))
        register_tasks(self, self.runtime)
        lifecycle.connect(self)

    @property
    def topology(self) -> Topology:
        """The domain's exchanges, queues, bindings and tasks."""
        return self.runtime.topology

    def process(self, command: Any, **kwargs: Any) -> Any:
        """``domain.process(command)`` inside the domain's context.

        The command leaves at once, as it does from Protean's own ``domain.process``
        in any process with an app (:mod:`protean_celery.commits`).
        """
        with self.runtime.commits.deferred(), self.domain.domain_context():
            result = self.domain.process(command, **kwargs)
        self.runtime.nudge()
        return result

    def relay(self) -> Any:
        """Relay every pending outbox row and command now; returns a ``RelayReport``."""
        return self.runtime.relay.run()


def guarantee_defaults(runtime: Runtime, providers: list[str]) -> dict[str, Any]:
    """The Celery settings protean-celery's guarantees rely on (lowest precedence).

    ``celery -A app protean check`` names each one a user setting weakens.
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
        ),
    }
    if broker:
        defaults["broker_url"] = broker
    return defaults


def require_broker(celery: Celery) -> str:
    """The configured broker URL.

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


def _cursor_store(domain: Any, settings: CelerySettings) -> CursorStore:
    uri = settings.state_database_uri
    if not uri:
        default = domain.config["databases"]["default"]
        if default.get("provider") == "memory":
            raise ConfigurationError(
                "The default database is Protean's memory provider, which prefork worker "
                "processes cannot share: configure [databases.default] with sqlite or postgresql, "
                "or set [custom.celery] state_database_uri."
            )
        uri = default["database_uri"]
    return SQLCursorStore(str(uri))


def _state_engine(cursors: CursorStore) -> Any:
    engine = getattr(cursors, "engine", None)
    if engine is not None:
        return engine
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    # In-process tests with memory cursors keep dead letters in a private SQLite memory database.
    memory = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    DeadLetters(memory).setup()
    Ledger(memory).setup()
    return memory


def _transitions_with_marker(domain: Any, inbox: Inbox) -> bool:
    from protean_celery.event_store.store import SQLEventStore, shared_provider

    store = domain.event_store.store
    shared = isinstance(store, SQLEventStore) and shared_provider(domain, store.engine) == inbox.provider
    return inbox.enabled and shared


def _transition_categories(domain: Any) -> set[str]:
    return {str(record.cls.meta_.stream_category) for record in domain.registry.process_managers.values()}


def _known_types(domain: Any) -> set[str]:
    return {str(name) for name in getattr(domain, "_events_and_commands", {})}
