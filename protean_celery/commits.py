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
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

__all__ = ["Commits"]

_installed = False
_watchers: weakref.WeakSet[Commits] = weakref.WeakSet()


class Commits:
    """Tracks the categories one domain's event store appended to, and relays them once committed.

    Args:
        store: the domain's event store (``domain.event_store.store``).
        relay: called with the categories appended to since the last call, once
            they are committed; must not raise.
    """

    def __init__(self, store: Any, relay: Callable[[set[str]], None]) -> None:
        self._relay = relay
        self._local = threading.local()
        self._background = _RelayThread(relay)
        self._wrap(store)
        _watchers.add(self)
        _install()

    def take(self) -> set[str]:
        """The categories this thread appended to since the last call (and forget them)."""
        touched: set[str] = getattr(self._local, "touched", set())
        self._local.touched = set()
        return touched

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Within the body the hooks relay nothing; the caller calls :meth:`committed` when done."""
        outer = getattr(self._local, "deferred", False)
        self._local.deferred = True
        try:
            yield
        finally:
            self._local.deferred = outer

    def committed(self) -> None:
        """Relay, in this thread, what this thread appended and committed (never re-entered)."""
        if getattr(self._local, "relaying", False) or not getattr(self._local, "touched", None):
            return
        self._local.relaying = True
        try:
            self._relay(self.take())
        finally:
            self._local.relaying = False

    def _session_committed(self) -> None:
        if getattr(self._local, "deferred", False) or getattr(self._local, "relaying", False):
            return
        touched = self.take()
        if touched:
            self._background.submit(touched)

    def _wrap(self, store: Any) -> None:
        write = store._write
        if getattr(write, "_protean_celery_watch", None) is not None:
            write = write._protean_celery_watch  # a rebuilt app over the same store: wrap the original once

        def watched(stream_name: str, *args: Any, **kwargs: Any) -> Any:
            position = write(stream_name, *args, **kwargs)
            touched = getattr(self._local, "touched", None)
            if touched is None:
                touched = self._local.touched = set()
            touched.add(str(stream_name).partition("-")[0])
            if not _in_unit_of_work() and not getattr(self._local, "deferred", False):
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

    def __init__(self, relay: Callable[[set[str]], None]) -> None:
        self._relay = relay
        self._queue: queue.Queue[set[str]] = queue.Queue()
        self._pid = 0
        self._lock = threading.Lock()

    def submit(self, touched: set[str]) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue()
                threading.Thread(target=self._run, args=(self._queue,), name="protean-celery-relay", daemon=True).start()
                if not self._pid:
                    atexit.register(self._finish)
                self._pid = os.getpid()
            self._queue.put(touched)

    def _run(self, work: queue.Queue[set[str]]) -> None:
        while True:
            touched, taken = work.get(), 1
            while not work.empty():  # one relay for everything committed meanwhile
                touched |= work.get_nowait()
                taken += 1
            try:
                self._relay(touched)
            finally:
                for _ in range(taken):
                    work.task_done()

    def _finish(self) -> None:
        if self._pid != os.getpid():
            return
        deadline = time.monotonic() + self.EXIT_WAIT
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)


def _in_unit_of_work() -> bool:
    from protean.utils.globals import current_uow

    uow = current_uow
    return bool(uow) and bool(uow.in_progress)


def _after_commit(_session: Session) -> None:
    for watcher in list(_watchers):
        watcher._session_committed()


def _install() -> None:
    global _installed
    if not _installed:
        event.listen(Session, "after_commit", _after_commit)
        _installed = True
