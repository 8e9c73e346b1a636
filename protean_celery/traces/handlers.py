"""The ``task_prerun`` / ``task_postrun`` receivers that trace handler tasks (see :mod:`protean_celery.traces`).

A run opens Protean's span ``protean.engine.handle_message`` (child of the
message's ``traceparent``) in ``task_prerun`` and closes it in ``task_postrun``;
the task's state and return value there say how it ended: ``SUCCESS`` with the
handler task's outcome (``handled``, ``expired``, ``duplicate``), ``RETRY`` with
Celery's ``Retry`` (carrying the handler's error), ``FAILURE`` or ``REJECTED``
with the error. Receivers ignore other apps' tasks and every non-handler task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celery import signals
from protean.core.process_manager import BaseProcessManager
from protean.utils.telemetry import describe_exception, extract_context_from_traceparent, set_span_error

from protean_celery.traces.events import MessageFacts, emit, listening, resolved_handler, warn_once, worker_id

if TYPE_CHECKING:
    from celery import Celery

    from protean_celery.runtime import Runtime
    from protean_celery.topology import Route

__all__ = ["SPAN_NAME", "TaskTraces", "connect"]

#: The span Protean's engine handles a message in; a handler task opens the same one.
SPAN_NAME = "protean.engine.handle_message"


@dataclass
class _Run:
    """One handler task run between ``task_prerun`` and ``task_postrun``."""

    route: Route
    facts: MessageFacts | None
    handler: str
    worker_id: str
    started: float = field(default_factory=time.monotonic)
    announced: bool = False
    span: Any = None
    scope: ExitStack = field(default_factory=ExitStack)

    def duration_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 2)


class TaskTraces:
    """The ``task_prerun`` / ``task_postrun`` receivers that trace one app's handler tasks.

    Args:
        app: the ``ProteanCelery`` app (receivers ignore other apps' tasks).
        runtime: its runtime (domain, routes, retry policies).
    """

    def __init__(self, app: Celery, runtime: Runtime) -> None:
        self.app = app
        self.domain = runtime.domain
        self.policies = runtime.retry_policies
        self.routes = {route.task_name: route for route in runtime.topology.routes}
        # A task id → its runs (a stack: an eager retry runs the same id inside itself).
        self._runs: dict[str, list[_Run]] = {}

    def connect(self) -> None:
        """Connect the receivers (held by the app, so they live as long as it does)."""
        self.app._protean_traces = self  # type: ignore[attr-defined]
        signals.task_prerun.connect(self.prerun, weak=True)
        signals.task_postrun.connect(self.postrun, weak=True)

    def prerun(self, sender: Any = None, task_id: str = "", args: Any = (), **_: Any) -> None:
        """Open the task's span and emit ``handler.started`` (not for a command past its deadline)."""
        route = self.routes.get(getattr(sender, "name", ""))
        if route is None or getattr(sender, "app", None) is not self.app:
            return
        try:
            run = self._open(route, args[0] if args else None, sender)
        except Exception as exc:  # tracing never breaks the task
            warn_once("handler.started", exc)
            return
        self._runs.setdefault(task_id, []).append(run)

    def postrun(
        self, sender: Any = None, task_id: str = "", retval: Any = None, state: str | None = None, **_: Any
    ) -> None:
        """Emit how the run ended (see the module table) and close its span."""
        runs = self._runs.get(task_id)
        if not runs or getattr(sender, "app", None) is not self.app:
            return
        run = runs.pop()
        if not runs:
            del self._runs[task_id]
        try:
            if isinstance(retval, BaseException) and run.span is not None:
                set_span_error(run.span, getattr(retval, "exc", None) or retval)
            if run.facts is not None and listening(self.domain):
                self._ended(run, sender, state, retval)
        except Exception as exc:  # tracing never breaks the task
            warn_once("handler.completed", exc)
        finally:
            run.scope.close()

    def run_here(self, route: Route, message: Any, run: Callable[[], Any]) -> Any:
        """Trace a handler run a continuing task makes in its own process, as a task is traced.

        ``handler.started``, then ``handler.completed`` (or ``skipped``, and
        ``pm.transition``) or ``handler.failed``; returns what ``run`` returns and
        re-raises what it raises (:mod:`protean_celery.continuation`).
        """
        if not listening(self.domain):
            return run()
        try:
            traced = self._open(route, message.to_dict(), None)
        except Exception as exc:  # tracing never breaks the handler
            warn_once("handler.started", exc)
            return run()
        try:
            outcome = run()
        except Exception as error:
            self._ended_here(traced, None, error)
            raise
        self._ended_here(traced, str(getattr(outcome, "value", outcome)), None)
        return outcome

    def _ended_here(self, run: _Run, outcome: str | None, error: BaseException | None) -> None:
        try:
            if run.facts is None:
                return
            if outcome is not None:
                self._succeeded(run, outcome)
            elif run.announced:
                emit(self.domain, "handler.failed", run.facts, status="error", duration_ms=run.duration_ms(),
                     error=_described(error), handler=run.handler, worker_id=run.worker_id)
        except Exception as exc:  # tracing never breaks the handler
            warn_once("handler.completed", exc)
        finally:
            run.scope.close()

    def _open(self, route: Route, payload: Any, task: Any) -> _Run:
        facts = MessageFacts.of_payload(payload)
        handler = resolved_handler(route, facts.message_type) if facts else route.spec.name
        hostname = getattr(getattr(task, "request", None), "hostname", None)
        run = _Run(route, facts, handler, worker_id(hostname))
        parent = extract_context_from_traceparent(facts.traceparent()) if facts else None
        run.span = run.scope.enter_context(self.domain.tracer.start_as_current_span(
            SPAN_NAME, context=parent, record_exception=False, set_status_on_exception=False,
        ))
        try:
            run.span.set_attribute("protean.handler.name", handler)
            if facts is None or not listening(self.domain) or _expired(facts):
                return run
            run.span.set_attribute("protean.message.id", facts.message_id)
            run.announced = True
            emit(self.domain, "handler.started", facts, handler=handler, payload=_data(payload),
                 worker_id=run.worker_id)
            return run
        except BaseException:
            run.scope.close()  # no span may outlive a run nobody will end
            raise

    def _ended(self, run: _Run, task: Any, state: str | None, retval: Any) -> None:
        assert run.facts is not None
        facts, common = run.facts, {"handler": run.handler, "worker_id": run.worker_id}
        if state == "SUCCESS":
            self._succeeded(run, str(retval))
            emit(self.domain, "message.acked", facts, **common)
            return
        error = getattr(retval, "exc", None) or retval  # a Retry carries the handler's error
        if run.announced:
            emit(self.domain, "handler.failed", facts, status="error", duration_ms=run.duration_ms(),
                 error=_described(error), **common)
        if state == "RETRY":
            retries = int(getattr(task.request, "retries", 0) or 0)
            emit(self.domain, "message.nacked", facts, status="retry",
                 metadata={"retry_count": retries + 1, "max_retries": self._budget(run, error)}, **common)

    def _succeeded(self, run: _Run, outcome: str) -> None:
        assert run.facts is not None
        facts, common = run.facts, {"handler": run.handler, "worker_id": run.worker_id}
        if outcome == "expired":
            headers = run.facts.deadline()
            deadline = headers.deadline if headers else None
            emit(self.domain, "handler.skipped", facts, status="expired", **common,
                 metadata={"reason": "deadline_exceeded", "deadline": deadline.isoformat() if deadline else None})
        elif outcome == "duplicate":
            emit(self.domain, "handler.skipped", facts, status="duplicate", metadata={"reason": "already_handled"},
                 **common)
        else:
            duration = run.duration_ms()
            emit(self.domain, "handler.completed", facts, duration_ms=duration, **common)
            cls = run.route.spec.handler
            if isinstance(cls, type) and issubclass(cls, BaseProcessManager):
                emit(self.domain, "pm.transition", facts, duration_ms=duration, metadata={
                    "pm_type": cls.__name__, "pm_stream_category": getattr(cls.meta_, "stream_category", None),
                }, **common)

    def _budget(self, run: _Run, error: Any) -> int | None:
        from protean_celery.tasks.retry import classify  # deferred: the tasks package imports traces.events

        if run.facts is None or not isinstance(error, BaseException):
            return None
        return self.policies.for_message(run.route.spec, run.facts.message_type).budget(classify(error))


def connect(app: Celery, runtime: Runtime) -> TaskTraces:
    """Trace ``app``'s handler tasks and the runs its continuing tasks make (see :class:`TaskTraces`)."""
    traces = TaskTraces(app, runtime)
    traces.connect()
    runtime.continuation.traced = traces.run_here
    return traces


def _data(payload: Any) -> dict[str, Any] | None:
    data = payload.get("data") if isinstance(payload, Mapping) else None
    return dict(data) if isinstance(data, Mapping) else None


def _expired(facts: MessageFacts) -> bool:
    """Whether the message is a command past its deadline (Protean's ``MessageHeaders.is_expired``)."""
    headers = facts.deadline()
    return headers is not None and headers.is_expired()


def _described(error: Any) -> str | None:
    """The error as Protean's engine writes it into ``handler.failed`` (None when Celery gave none)."""
    if isinstance(error, BaseException):
        return describe_exception(error)
    return None if error is None else str(error)
