"""Celery's eager mode (``task_always_eager=True``): the relay runs handler tasks in this process.

Celery's ``send_task`` ignores eager mode (it warns ``AlwaysEagerIgnored`` and
publishes), so without this an eager app's ``app.process(command)`` would
leave the whole cascade in the broker. In eager mode the relay hands each task
message to this thread's :class:`EagerCascade` instead of publishing it, and
when the outermost relay call of the thread returns (``app.process``'s fast
path, ``app.relay()``, a drain, a relay tick) the cascade applies the tasks
with ``Task.apply``: the same task body, task id, inbox, retries (run at once)
and dead letters as a worker's, and the whole chain completes inside that call.

Order and bounds:

* **Breadth-first.** Tasks run in the order they were relayed (a FIFO per
  thread). A task's own relay calls only queue what it produced; the loop
  already running picks it up, so there is no recursion and no lock of the
  relay (a command cursor, a claim) is held while a handler runs.
* **After each task the relay runs once** (claim-based, every provider and
  command category), so what the task committed joins the queue even where
  the task's own after-commit nudge was suppressed (inside the fast path).
* **At most** :attr:`EagerCascade.max_tasks` tasks per cascade: a handler loop
  stops with :class:`~protean_celery.errors.EagerCascadeLimit`; what is still
  queued stays queued and runs at the thread's next relay call.

A failing handler does not raise out of the cascade (whatever
``task_eager_propagates`` says): it is retried at once and then dead-lettered,
as in :func:`protean_celery.testing.drain`.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from protean_celery.errors import EagerCascadeLimit

__all__ = ["EagerCascade", "settles"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _ThreadState:
    queue: deque[tuple[str, Any, str]] = field(default_factory=deque)
    depth: int = 0
    running: bool = False


class EagerCascade:
    """Applies relayed handler tasks in this process while the Celery app is eager.

    Args:
        celery: the Celery app; eager when ``conf.task_always_eager`` is true.
        after_task: called after each applied task (the runtime relays what it committed).
        max_tasks: the most tasks one cascade applies before it stops.
    """

    MAX_TASKS = 10_000

    def __init__(
        self, celery: Any, after_task: Callable[[], Any] = lambda: None, max_tasks: int = MAX_TASKS
    ) -> None:
        self.celery = celery
        self.after_task = after_task
        self.max_tasks = max_tasks
        self._local = threading.local()

    @property
    def enabled(self) -> bool:
        """Whether the app is in eager mode now (``task_always_eager``)."""
        return bool(self.celery.conf.task_always_eager)

    def defer(self, task_name: str, payload: Any, task_id: str) -> bool:
        """Queue a task message to apply here instead of publishing it.

        Returns:
            True when queued: the app is eager and a relay call of this thread
            is open (it applies the queue when it returns). False otherwise: the
            caller publishes the message as usual.
        """
        if not self.enabled:
            return False
        state = self._state()
        if state.depth == 0:
            return False
        state.queue.append((task_name, payload, task_id))
        return True

    def pending(self) -> int:
        """Task messages this thread queued and has not applied yet."""
        return len(self._state().queue)

    @contextmanager
    def scope(self) -> Iterator[None]:
        """A relay call: what it queues is applied when the outermost scope of this thread closes."""
        state = self._state()
        state.depth += 1
        try:
            yield
        finally:
            state.depth -= 1
            if state.depth == 0 and state.queue and not state.running:
                self._run(state)

    def _run(self, state: _ThreadState) -> None:
        state.running = True
        applied = 0
        try:
            while state.queue:
                if applied >= self.max_tasks:
                    raise EagerCascadeLimit(
                        f"Eager mode: the cascade applied {applied} tasks and still has {len(state.queue)} "
                        "queued (a handler loop?). They stay queued for this thread's next relay call; "
                        "for bounded in-process runs use protean_celery.testing.drain(app, max_cycles=...)."
                    )
                name, payload, task_id = state.queue.popleft()
                applied += 1
                self._apply(name, payload, task_id)
                with self.scope():  # what the task committed is queued behind what is already waiting
                    self.after_task()
        finally:
            state.running = False

    def _apply(self, name: str, payload: Any, task_id: str) -> None:
        result = self.celery.tasks[name].apply(args=(payload,), task_id=task_id, throw=False)
        if not result.successful():
            logger.warning(
                "eager mode: %s did not succeed on task %s (%s): %r", name, task_id, result.state, result.result
            )

    def _state(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _ThreadState()
        return state


def settles(method: F) -> F:
    """Decorate a relay method: in eager mode, the tasks it relays run when the outermost such call returns.

    The decorated object's ``cascade`` attribute is an :class:`EagerCascade` or None.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        cascade = getattr(self, "cascade", None)
        if cascade is None:
            return method(self, *args, **kwargs)
        with cascade.scope():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
