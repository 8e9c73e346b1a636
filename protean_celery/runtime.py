"""The composition root: what the tasks of one domain share, built once per app.

``Runtime`` builds, from the domain and its settings, the topology, the state
database (:mod:`protean_celery.state`: cursors, dead letters, ledger), the relay,
the inbox, the redelivery sweep, the commits that feed the fast path, and the
retry policies. Tasks, maintenance, the worker's consumer and the lifecycle
receivers hold it and import it for annotations only, so no import cycle runs
through it (`scripts/import_graph` checks).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from celery import Celery

from protean_celery.commits import Commits, Committed
from protean_celery.continuation import Continuation
from protean_celery.eager import EagerCascade
from protean_celery.envelope import task_id as message_task_id
from protean_celery.errors import DeadLetterError, PayloadTooLarge
from protean_celery.event_store.orphans import adopt_orphans, commits_apart
from protean_celery.event_store.outbox_streams import skip_outbox_streams
from protean_celery.event_store.store import SQLEventStore, shared_provider
from protean_celery.flower import argsrepr
from protean_celery.inbox import Inbox
from protean_celery.lanes import read_lanes
from protean_celery.ordering import Ordering
from protean_celery.outbox import Relay
from protean_celery.protean_api import known_types, provider_engines, reset_client
from protean_celery.redelivery import Sweep, Watch
from protean_celery.registry import read_handlers
from protean_celery.settings import CelerySettings
from protean_celery.sql import tune_sqlite
from protean_celery.state import StateDatabase
from protean_celery.tasks.retry import RetryPolicies
from protean_celery.topology import Topology, build_topology

if TYPE_CHECKING:
    from protean.domain import Domain

    from protean_celery.deadletter import DeadLetter

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)


class Runtime:
    """What the tasks of one domain share: domain, settings, topology, state, relay, inbox, sweep.

    Args:
        celery: the app the relay and the sweep publish with.
        domain: the initialised Protean domain.
        settings: protean-celery settings.
        state: the state database (cursors, dead letters, ledger; see :mod:`protean_celery.state`).

    Raises:
        TopologyError: handlers that cannot be mapped onto tasks and queues.
    """

    def __init__(self, celery: Celery, domain: Domain, settings: CelerySettings, state: StateDatabase) -> None:
        self.domain = domain
        self.settings = settings
        self.topology: Topology = build_topology(
            domain.normalized_name,
            read_handlers(domain),
            prefix=settings.queue_prefix,
            known_types=known_types(domain),
            lanes=read_lanes(domain.config),
        )
        self.state = state
        self.cursors = state.cursors
        self.dead_letters = state.dead_letters
        self.ledger = state.ledger
        self.relay = Relay(celery, domain, self.topology, settings, self.cursors, self.dead_letters)
        self.retry_policies = RetryPolicies(domain, settings, (route.spec for route in self.topology.routes))
        # Appends to these categories never create outbox rows: commands and
        # process-manager transitions.
        self._quiet = {*self.topology.command_categories(), *_transition_categories(domain)}
        self.inbox = Inbox(domain)
        self.ordering = Ordering(domain, settings, self.topology, self.inbox)  # ordered lanes (ordering.py)
        self.sweep = Sweep(self.relay, state, self.inbox)
        # A real broker and no eager mode (read when used: the app's conf is completed later).
        def real_broker() -> bool:
            return not str(celery.conf.broker_url or "").startswith("memory") and not celery.conf.task_always_eager

        if commits_apart(domain):  # a redelivery reuses the events its killed attempt left; wrapped before Commits
            adopt_orphans(domain.event_store.store)
        skip_outbox_streams(domain)  # an outbox row loaded is not a read of the event store
        self.commits = Commits(
            domain.event_store.store, self._relay_committed, self.relay.outbox_models(), background=real_broker,
        )
        # Eager mode: the relay applies tasks here; after each, the relay runs for what it committed.
        self.relay.cascade = EagerCascade(celery, lambda: (self.commits.take(), self.relay.run()))
        # Process-manager transitions that commit with the inbox marker need no stream read up front.
        self.transitions = self.commits.appends if _transitions_with_marker(domain, self.inbox) else None
        if _store_shares_default(domain):  # appends commit with the Unit of Work: a task may continue with them
            # Commands, and events where they travel through the event store (the outbox is off: events.py).
            self.commits.capture = frozenset(self.topology.command_categories()) | set(self.relay.event_categories())
        self.continuation = Continuation(self, lambda: celery.amqp.queues.consume_from.keys())
        self._continues = lambda: settings.continuation_messages > 0 and settings.nudge and real_broker()
        if settings.continuation_messages > 0 and self.commits.capture:
            self.relay.markers = self.inbox.handled  # commands a continuing task handled are not published again
        tune_sqlite(domain)
        reset_client(domain.event_store.store)  # Message DB: a pool that survives a database restart

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

    def _replay_parked_command(self, entry: DeadLetter, celery: Celery) -> str:
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

    def handled(self) -> None:
        """A handler task committed: go on with what it produced (:mod:`protean_celery.continuation`), or relay it."""
        if self._continues():
            self.continuation.run()
        else:
            self.nudge()

    def _relay_committed(self, committed: Committed) -> None:
        """Relay what was just committed; a failure only delays it to the next tick.

        Outbox rows the commits wrote are published by id, without a claim; the
        commands (and events, with the outbox off) are relayed past their cursors,
        except in categories where every message ran in this process (their cursors
        move at the next tick, in one batch). A handler that produced nothing for the relay (a projector, say)
        costs no query.
        """
        if not self.settings.nudge:
            return
        touched = committed.categories
        settled = self.continuation.settled(committed)  # every command ran here: the tick moves the cursor
        commands = [c for c in self.topology.command_categories() if c in touched and c not in settled]
        stored = [c for c in self.relay.event_categories() if c in touched and c not in settled]  # outbox off
        # Outbox rows the hooks could not see (a provider without database sessions) are claimed instead.
        events = not committed.rows and any(c not in self._quiet for c in touched)
        try:
            if committed.rows:
                self.relay.publish_committed(committed.rows, committed)
            if commands or events or stored:
                self.relay.run(
                    events=events, commands=commands, stored_events=stored, max_batches=1, done=committed
                )
        except Exception as exc:  # beat's next tick relays it; never fail the committing caller
            logger.warning("relay right after a commit failed, the next beat tick will relay: %r", exc)

    def after_fork(self) -> None:
        """Make connections inherited from the parent safe in a prefork child."""
        for engine in provider_engines(self.domain).values():
            engine.dispose(close=False)
        store = self.domain.event_store.store
        if isinstance(store, SQLEventStore):
            store.dispose(close=False)
        else:
            reset_client(store)  # Message DB: a new lazy pool, opened on first use
        self.state.dispose(close=False)

    def close(self) -> None:
        """Send what the relay thread still holds, then release the domain's connections (worker child shutdown)."""
        self.commits.flush()
        self.domain.close()


def _transitions_with_marker(domain: Domain, inbox: Inbox) -> bool:
    store = domain.event_store.store
    shared = isinstance(store, SQLEventStore) and shared_provider(domain, store.engine) == inbox.provider
    return inbox.enabled and shared


def _store_shares_default(domain: Domain) -> bool:
    store = domain.event_store.store
    return isinstance(store, SQLEventStore) and shared_provider(domain, store.engine) == "default"


def _transition_categories(domain: Domain) -> set[str]:
    return {str(record.cls.meta_.stream_category) for record in domain.registry.process_managers.values()}
