"""A recording stand-in for Protean's ``TraceEmitter``, for the unit tests of ``protean_celery.traces``."""

from __future__ import annotations

from typing import Any

import pytest

from protean_celery.traces import events
from tests.support.shop import PlaceOrder

#: The shop's command dispatcher task.
TASK = "protean.shop.commands.Order"


class Recorder:
    """Stands in for Protean's ``TraceEmitter``: keeps what ``emit`` is given."""

    def __init__(self, listening: bool = True, fail: bool = False) -> None:
        self.listening = listening
        self.fail = fail
        self.events: list[dict[str, Any]] = []

    def emit(self, **fields: Any) -> None:
        if self.fail:
            raise ConnectionError("trace redis is down")
        self.events.append(fields)

    def names(self, handler: str | None = None) -> list[str]:
        return [e["event"] for e in self.events if handler is None or e.get("handler") == handler]

    def first(self, event: str) -> dict[str, Any]:
        return next(e for e in self.events if e["event"] == event)


def record(app: Any, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Make ``app``'s domain emit into a new :class:`Recorder`, listening until told otherwise."""
    found = Recorder()
    monkeypatch.setattr(app.domain, "_trace_emitter", found)
    monkeypatch.setattr(events, "trace_listening", lambda emitter: emitter.listening)
    monkeypatch.setattr(events, "_warned", set())
    return found


def place(app: Any, order_id: str = "o1") -> Any:
    """Process ``PlaceOrder(order_id)`` and return the stored command."""
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id=order_id))
        return app.domain.event_store.store.read("shop::order:command")[-1]
