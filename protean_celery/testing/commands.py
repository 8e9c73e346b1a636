"""``process_and_wait``: process a command and drain until its chain is done.

Same name, keywords and result as ``protean.testing.process_and_wait``, with the
``ProteanCelery`` app first: the command runs through the same relay and task
bodies a worker runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protean.testing import ProcessResult
from protean.utils.eventing import new_correlation_id

from protean_celery.protean_api import events_for_correlation
from protean_celery.testing.drain import drain

__all__ = ["process_and_wait", "ProcessResult"]


def process_and_wait(
    app: Any,
    command: Any,
    until: Callable[[], bool] | None = None,
    *,
    timeout: float = 60.0,
    max_cycles: int = 1000,
) -> ProcessResult:
    """Process ``command``, drain, and return the result, the chain's events and any error.

    Args:
        app: a ``ProteanCelery`` app on ``memory://`` (the ``protean_celery_app`` fixture).
        command: the command to process.
        until: stop draining as soon as this returns true.
        timeout: seconds the drain may take.
        max_cycles: relay-and-consume passes the drain may make.

    Returns:
        Protean's ``ProcessResult``: ``result`` (the enqueue position for an async
        command), ``events`` (every event of the command's correlation chain, in
        order) and ``error`` (a submission error, or the first handler failure).
    """
    domain = app.domain
    correlation_id = new_correlation_id()
    result: Any = None
    error: Exception | None = None
    with domain.domain_context():
        try:
            result = domain.process(command, correlation_id=correlation_id)
        except Exception as exc:  # surfaced in the result, as Protean does
            error = exc
    if error is None:
        report = drain(app, until, timeout=timeout, max_cycles=max_cycles, raise_errors=False)
        if report.failures:
            error = report.failures[0].error if isinstance(report.failures[0].error, Exception) else None
    with domain.domain_context():
        events = events_for_correlation(domain, correlation_id)
    return ProcessResult(result=result, events=events, error=error)
