"""The fast path from any process: relay what this process committed, right after the commit.

A message leaves at once, not at the next beat tick, whichever process commits
it: a handler task, ``app.process``, or a web API calling Protean's own
``domain.process(command)`` or running a command handler in its own Unit of
Work. Two moments mean "committed", and both are watched in every process
where a :class:`~protean_celery.app.ProteanCelery` app exists:

* **an event-store append outside any Unit of Work** (an asynchronous command
  from ``domain.process``): the append is its own transaction, so the relay
  runs as soon as the append returns, in the caller's thread;
* **the commit of a Unit of Work's database session** (SQLAlchemy's
  ``after_commit``): the handler's aggregate rows, outbox rows and, on a shared
  database, its events and commands are durable now. No SQL may run inside
  that event (Protean's session is mid-commit), so the categories go to a
  relay thread of this process, which relays them at once.

Inside :meth:`Commits.deferred` (a handler task, ``app.process``) nothing is
relayed by the hooks: the caller relays synchronously with :meth:`Commits.committed`
when its work is done, so task bodies and in-process drains stay deterministic.

Only categories this thread appended to since the last relay count (per
thread, so a web server's concurrent requests never take each other's
uncommitted appends); a commit that appended nothing costs nothing. Beat stays
the safety net: a relay that fails here (broker down right after the commit)
is logged once by the runtime and the rows wait for the next tick.

The append watch wraps the event store's ``_write`` (the one method every
Protean event store adapter implements), so it works for the SQL store and for
Protean's Message DB store alike.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

__all__ = ["Commits", "Committed"]

logger = logging.getLogger(__name__)

_installed = False
_watchers: weakref.WeakSet[Commits] = weakref.WeakSet()


@dataclass
class Committed:
    """What this thread committed since the last relay.

    Attributes:
        categories: the stream categories appended to.
        rows: the outbox rows (Protean's database models) the commits wrote,
            so the relay publishes them by id, without claiming them first.
        commands: the rows appended and committed to the captured categories
            (``Commits.capture``: commands, and events when the outbox is off) as
            ``data``, ``metadata``, ``position`` (Protean's ``Message.deserialize``
            reads them), recorded only where appends commit with the Unit of Work.
        handled: ``(task name, message key)`` pairs already handled in this process
            (:mod:`protean_celery.continuation`): the relay publishes no task for them.
        retries: pairs whose in-process attempt failed, with the countdown of their
            first retry: the relay publishes them as that retry.
        decoded: rows already turned into messages here, by ``id(row)``: an outbox
            row's ``(entity, message, category)``, an appended row's ``(row, message, "")``,
            so the relay does not decode them again.
    """

    categories: set[str] = field(default_factory=set)
    rows: list[Any] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    handled: set[tuple[str, str]] = field(default_factory=set)
    retries: dict[tuple[str, str], float] = field(default_factory=dict)
    decoded: dict[int, tuple[Any, Any, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.categories or self.rows)

    def merge(self, other: Committed) -> None:
        self.categories |= other.categories
        self.rows.extend(other.rows)
        self.commands.extend(other.commands)
        self.handled |= other.handled
        self.retries.update(other.retries)
        self.decoded.update(other.decoded)


class Commits:
    """Tracks what one domain's processes commit, and relays it once committed.

    Args:
        store: the domain's event store (``domain.event_store.store``).
        relay: called with what was committed since the last call; must not raise.
        outbox_models: the database model classes of the domain's outbox tables.
    """

    def __init__(
        self,
        store: Any,
        relay: Callable[[Committed], None],
        outbox_models: tuple[type, ...] = (),
        background: Callable[[], bool] = lambda: True,
    ) -> None:
        self._relay = relay
        self._models = outbox_models
        self._in_background = background
        self._key = f"protean_celery_outbox_{id(self)}"
        #: Categories whose appends are recorded (set by the runtime where appends
        #: commit with the Unit of Work's session: see ``Committed.commands``).
        self.capture: frozenset[str] = frozenset()
        self._local = threading.local()
        self._background = _RelayThread(relay)
        self._store = store
        self._same_database: dict[int, bool] = {}
        self._wrap(store)
        _watchers.add(self)
        _install()

    def take(self) -> Committed:
        """What this thread committed since the last call (and forget it)."""
        committed = getattr(self._local, "committed", None) or Committed()
        self._local.committed = Committed()
        return committed

    def appends(self, category: str) -> int:
        """How many appends to ``category`` this thread made so far (a process manager's transitions)."""
        return int((getattr(self._local, "appends", None) or {}).get(category, 0))

    def give_back(self, committed: Committed) -> None:
        """Put back what :meth:`take` returned (and more), for the next :meth:`committed` to relay."""
        self._pending().merge(committed)

    def _pending(self) -> Committed:
        committed = getattr(self._local, "committed", None)
        if committed is None:
            committed = self._local.committed = Committed()
        return committed

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Within the body the hooks relay nothing; the caller calls :meth:`committed` when done."""
        outer = getattr(self._local, "deferred", False)
        self._local.deferred = True
        if not outer:
            self._local.uncommitted = []  # left by a Unit of Work that never ended
        try:
            yield
        finally:
            self._local.deferred = outer

    def committed(self) -> None:
        """Relay what this thread appended and committed (never re-entered).

        On the relay thread when ``background()`` holds (a worker: the task is
        done and the child takes its next message while the thread publishes,
        and what several tasks committed meanwhile goes out in one batch: one
        mark per provider, one cursor move per category); else in this thread
        (Kombu's in-memory transport: drains stay deterministic).
        """
        if getattr(self._local, "relaying", False) or not self._pending():
            return
        if self._in_background():
            self._background.submit(self.take())
            return
        self._local.relaying = True
        try:
            self._relay(self.take())
        finally:
            self._local.relaying = False

    def flush(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` seconds for the relay thread to send what it was handed (worker child shutdown)."""
        self._background.finish(timeout)

    def _flushed(self, session: Session) -> None:
        if self._models:
            rows = [row for row in session.new if isinstance(row, self._models)]
            if rows:
                session.info.setdefault(self._key, []).extend(rows)

    def _session_ended(self, session: Session, committed: bool) -> None:
        rows = session.info.pop(self._key, None)
        commands = getattr(self._local, "uncommitted", None)
        if commands and not self._holds_commands(session):
            commands = None  # another provider's session: the commands commit with the store's
        elif commands:
            self._local.uncommitted = []
        if not committed:
            return  # rolled back: those rows and commands never existed
        if rows:
            self._pending().rows.extend(rows)
        if commands:
            self._pending().commands.extend(commands)
        if getattr(self._local, "deferred", False) or getattr(self._local, "relaying", False):
            return
        done = self.take()
        if done:
            self._background.submit(done)

    def _holds_commands(self, session: Session) -> bool:
        """Whether ``session`` is on the event store's database (its commit commits the captured commands)."""
        engine = getattr(self._store, "engine", None)
        try:
            bind = getattr(session.get_bind(), "engine", None)
        except Exception:
            return False
        if engine is None or bind is None:
            return False
        known = self._same_database.get(id(bind))
        if known is None:
            from protean_celery.event_store.store import same_database

            known = self._same_database[id(bind)] = same_database(bind, engine)
        return known

    def _wrap(self, store: Any) -> None:
        write = store._write
        if getattr(write, "_protean_celery_watch", None) is not None:
            write = write._protean_celery_watch  # a rebuilt app over the same store: wrap the original once

        def watched(stream_name: str, *args: Any, **kwargs: Any) -> Any:
            position = write(stream_name, *args, **kwargs)
            category = str(stream_name).partition("-")[0]
            self._pending().categories.add(category)
            counts = getattr(self._local, "appends", None)
            if counts is None:
                counts = self._local.appends = {}
            counts[category] = counts.get(category, 0) + 1
            in_uow = _in_unit_of_work()
            if category in self.capture:
                row = {"data": args[1] if len(args) > 1 else kwargs.get("data"), "position": position,
                       "metadata": args[2] if len(args) > 2 else kwargs.get("metadata")}
                if in_uow:  # durable once the Unit of Work's session commits
                    self._local.__dict__.setdefault("uncommitted", []).append(row)
                else:
                    self._pending().commands.append(row)
            if not in_uow and not getattr(self._local, "deferred", False):
                self.committed()  # its own transaction: durable already
            return position

        watched._protean_celery_watch = write  # type: ignore[attr-defined]
        store._write = watched


class _RelayThread:
    """A daemon thread of this process that relays categories handed to it.

    Started on first use (in a forked child too). At interpreter exit it gets
    up to ``EXIT_WAIT`` seconds to finish, so a script that commits and ends
    still sends its messages; what it cannot send waits for the beat tick.
    """

    EXIT_WAIT = 5.0

    def __init__(self, relay: Callable[[Committed], None]) -> None:
        self._relay = relay
        self._queue: queue.Queue[Committed] = queue.Queue()
        self._pid = 0
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._lock = threading.Lock()  # another thread of the parent may have held it at the fork

    def submit(self, committed: Committed) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue()
                thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="protean-celery-relay", daemon=True
                )
                thread.start()
                if not self._pid:
                    atexit.register(self.finish)
                self._pid = os.getpid()
            self._queue.put(committed)

    def _run(self, work: queue.Queue[Committed]) -> None:
        while True:
            committed, taken = work.get(), 1
            while not work.empty():  # one relay for everything committed meanwhile
                committed.merge(work.get_nowait())
                taken += 1
            try:
                self._relay(committed)
            except Exception:  # the thread must outlive any failure; beat relays what this left
                logger.exception("the relay thread failed; the next beat tick relays what it held")
            finally:
                for _ in range(taken):
                    work.task_done()

    def finish(self, timeout: float | None = None) -> None:
        """Wait (up to ``timeout``, default ``EXIT_WAIT`` seconds) until everything handed over was relayed."""
        if self._pid != os.getpid():
            return
        deadline = time.monotonic() + (self.EXIT_WAIT if timeout is None else timeout)
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)


def _in_unit_of_work() -> bool:
    from protean.utils.globals import current_uow

    uow = current_uow
    return bool(uow) and bool(uow.in_progress)


def _after_flush(session: Session, _context: Any) -> None:
    for watcher in list(_watchers):
        watcher._flushed(session)


def _after_commit(session: Session) -> None:
    for watcher in list(_watchers):
        watcher._session_ended(session, committed=True)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction ended without a commit: rolled back or closed
        for watcher in list(_watchers):
            watcher._session_ended(session, committed=False)


def _install() -> None:
    global _installed
    if not _installed:
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_transaction_end", _after_transaction_end)
        _installed = True
