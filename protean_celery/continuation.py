"""In-process continuation: a handler task runs the messages its own commit produced.

A saga of nine handler invocations used to be nine tasks: each commit was
relayed to the broker, taken by a child, decoded, traced by Celery, and only
then handled. Most of that is plumbing. After a handler task commits, it now
looks at what the commit produced (the outbox rows it wrote and, where the event
store commits with the Unit of Work, the commands it appended, and its events
when the outbox is off) and handles, right here,
those messages whose handlers this worker consumes (``-Q``), then what those
produced, and so on, within a budget (``continuation_messages`` messages and
``CONTINUATION_SECONDS``). Only then is everything handed to the relay, which
publishes a task for every handler that did not run here and marks the rows and
moves the cursors as before.

Every guarantee holds because nothing changes about what is durable:

* a message handled here ran through :func:`~protean_celery.tasks.handle.run_handler`
  with the inbox, like a task: its marker commits with its Unit of Work, so a
  copy relayed anyway (the process died before the relay marked the row: beat
  relays it after ``relay_grace_seconds``; another process's command relay got
  there first) is absorbed as a duplicate;
* a handler that fails here is not retried here: its message is published as
  its first Celery retry (``retries=1``, after the handler's backoff), so retries,
  budgets and dead letters are those of a task;
* the budget leaves the rest to the relay, so one task never holds a child for long.

Handlers other workers consume (another ``-Q``) get their tasks as before. The
messages handled here are not Celery tasks: Flower shows the task that started
the chain; the inbox markers (``protean status``, metrics) count every handler run.
``continuation_messages = 0`` turns this off (one task per handler invocation).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from protean.exceptions import DeserializationError
from protean.utils.eventing import Message

from protean_celery.commits import Commits, Committed
from protean_celery.envelope import describe, message_key, metadata_of
from protean_celery.errors import OutOfTurn, UnknownHandlerError
from protean_celery.inbox import Inbox
from protean_celery.ordering import Ordering
from protean_celery.outbox.relay import Relay
from protean_celery.outbox.rows import outbox_message
from protean_celery.settings import CelerySettings
from protean_celery.tasks.handle import run_handler, serial_key
from protean_celery.tasks.retry import RetryPolicies, classify
from protean_celery.topology import Route, Topology

__all__ = ["Continuation", "CONTINUATION_SECONDS"]

logger = logging.getLogger(__name__)

#: How long one task may go on handling what its commits produced before it hands the rest to the relay.
CONTINUATION_SECONDS = 0.5


class Parts(Protocol):
    """What a continuation uses of the runtime (:class:`~protean_celery.runtime.Runtime` has it all)."""

    domain: Any
    settings: CelerySettings
    topology: Topology
    relay: Relay
    inbox: Inbox
    commits: Commits
    retry_policies: RetryPolicies
    transitions: Any
    ordering: Ordering


class Continuation:
    """Handles in this process what a handler task's commits produced, for the handlers this worker consumes.

    Args:
        runtime: the domain's runtime (commits, topology, relay, inbox, retry policies).
        consumed: the names of the queues this worker consumes (read when first needed).
    """

    def __init__(self, runtime: Parts, consumed: Any) -> None:
        self.runtime = runtime
        self._consumed_source = consumed
        self._consumed: frozenset[str] | None = None
        #: Wraps each run here (Protean's trace events: :mod:`protean_celery.traces` sets it).
        self.traced: Callable[[Route, Message, Callable[[], Any]], Any] = lambda route, message, run: run()

    def run(self) -> int:
        """Continue with what this thread committed, then hand it all to the relay; returns how many ran here."""
        runtime = self.runtime
        commits = runtime.commits
        done = Committed()
        budget = runtime.settings.continuation_messages
        deadline = time.monotonic() + CONTINUATION_SECONDS
        ran = 0
        with commits.deferred():
            while ran < budget and time.monotonic() < deadline:
                fresh = commits.take()
                if not fresh:
                    break
                for route, message in self._local_work(fresh):
                    if ran >= budget or time.monotonic() >= deadline:
                        break
                    ran += self._run(route, message, done)
                done.merge(fresh)
            done.merge(commits.take())
        commits.give_back(done)
        commits.committed()
        return ran

    def _local_work(self, fresh: Committed) -> Iterator[tuple[Route, Message]]:
        """Each (route, message) of ``fresh`` whose handler this worker consumes, in commit order."""
        internal = self.runtime.relay.internal_broker
        for row in fresh.rows:
            if row.target_broker != internal:
                continue
            try:
                entity = type(row).to_entity(row)
                message, category = outbox_message(entity)
            except Exception:  # the relay publishes it, or records why it cannot
                continue
            fresh.decoded[id(row)] = (entity, message, category)  # the relay publishes from these
            yield from self._routes(message, category, row.priority)
        for row in fresh.commands:  # appended rows: commands, and events with the outbox off
            try:
                message = Message.deserialize(row)
            except Exception:  # the event store relay dead-letters it
                continue
            fresh.decoded[id(row)] = (row, message, "")  # for settled(): decoded once
            domain_meta = metadata_of(message).domain
            if domain_meta is not None and not domain_meta.asynchronous:
                continue  # processed synchronously by its caller
            yield from self._routes(message, str(metadata_of(message).headers.stream).partition("-")[0])

    def _routes(self, message: Message, category: str, priority: Any = None) -> Iterator[tuple[Route, Message]]:
        lanes = self.runtime.topology.lanes
        if priority is None:
            priority = getattr(metadata_of(message).domain, "priority", None)
        if lanes is not None and lanes.backfill(priority):
            return  # backfill work waits its turn in its lane; interactive messages go first
        consumed = self.consumed()
        for route in self.runtime.topology.targets(category, str(metadata_of(message).headers.type)):
            if route.queue.name in consumed:
                yield route, message

    def settled(self, committed: Committed) -> set[str]:
        """The captured categories of ``committed`` whose every message every handler of this app ran here.

        The relay thread leaves those to the next beat tick, which moves their cursors
        for every task of the tick in one batch (the messages' markers say they ran).
        """
        capture = self.runtime.commits.capture
        candidates = {category for category in committed.categories if category in capture}
        if not candidates or not committed.handled:
            return set()
        for row in committed.commands:
            decoded = committed.decoded.get(id(row))
            try:
                message = decoded[1] if decoded is not None else Message.deserialize(row)
            except Exception:  # the command relay dead-letters it
                candidates.discard(_category(row))
                continue
            category = str(metadata_of(message).headers.stream).partition("-")[0]
            domain_meta = metadata_of(message).domain
            if category not in candidates or (domain_meta is not None and not domain_meta.asynchronous):
                continue  # another category's, or handled synchronously by its caller
            key = message_key(message)
            routes = self.runtime.topology.targets(category, str(metadata_of(message).headers.type))
            if not routes or any((route.task_name, key) not in committed.handled for route in routes):
                candidates.discard(category)
        return candidates

    def consumed(self) -> frozenset[str]:
        """The queues this worker consumes (Celery's ``-Q`` / ``-X`` selection; every queue by default)."""
        if self._consumed is None:
            self._consumed = frozenset(self._consumed_source())
        return self._consumed

    def _run(self, route: Route, message: Message, done: Committed) -> int:
        """Handle ``message`` with ``route``'s handler here; record the outcome in ``done``."""
        runtime = self.runtime
        pair = (route.task_name, message_key(message))
        if pair in done.handled or pair in done.retries:
            return 0
        policy = runtime.retry_policies.for_message(route.spec, str(metadata_of(message).headers.type))
        try:
            self.traced(route, message, lambda: run_handler(
                runtime.domain, route.spec, message, version_retries=policy.version_retries, inbox=runtime.inbox,
                lock=runtime.ordering.lock(route, message, serial_key(route, message)),
                transitions=runtime.transitions, turn=runtime.ordering.turn(route, message),
            ))
        except Exception as exc:
            failure = classify(exc)
            # Before its turn (ordering.py): its task is published as usual and waits there.
            if isinstance(exc, UnknownHandlerError | DeserializationError | OutOfTurn) or policy.budget(failure) < 1:
                logger.warning("%s: %s failed here; its task decides: %r", route.task_name, describe(message), exc)
            else:
                done.retries[pair] = policy.delay(failure, 0)
                logger.warning(
                    "%s: %s failed (attempt 1, %s error), retrying in %.2fs: %r",
                    route.task_name, describe(message), failure.value, done.retries[pair], exc,
                )
            return 1
        done.handled.add(pair)
        return 1


def _category(row: dict[str, Any]) -> str:
    stream = ((row.get("metadata") or {}).get("headers") or {}).get("stream") or ""
    return str(stream).partition("-")[0]
