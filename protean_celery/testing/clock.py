"""A fake clock for tests: move a domain's time forward instead of waiting (Temporal's time skipping).

Protean reads the time from ``domain.clock`` (a ``now()`` method): command
expiry, event times, the outbox, and protean-celery's deadlines. Put a
:class:`FakeClock` there and a 15-minute deadline is due after one ``advance``::

    clock = FakeClock.install(app.domain)
    app.process(PlaceOrder(...)); drain(app)         # the saga schedules a deadline
    clock.advance(timedelta(minutes=15)); drain(app)  # it fires, and the saga compensates
    clock.uninstall()

The ``protean_celery_clock`` fixture does this around a test. The clock stands
still between calls to ``advance`` (time does not pass on its own), so a test
decides exactly what is due.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["FakeClock"]


class FakeClock:
    """A ``Clock`` (Protean's protocol) that moves only when told to.

    Args:
        start: the time it shows first (timezone-aware; default: the real time now).
    """

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("FakeClock(start=...) must be timezone-aware, e.g. datetime(2026, 1, 1, tzinfo=UTC).")
        self._now = start if start is not None else datetime.now(UTC)
        self._domain: Any = None
        self._replaced: Any = None

    def now(self) -> datetime:
        """The time it shows."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the time forward by ``delta``; returns the new time.

        Raises:
            ValueError: ``delta`` is negative (time does not go back: a deadline
                that fired stays fired).
        """
        if delta < timedelta(0):
            raise ValueError(f"FakeClock.advance() moves forward only, got {delta}.")
        self._now += delta
        return self._now

    @classmethod
    def install(cls, domain: Any, start: datetime | None = None) -> FakeClock:
        """A new fake clock put on ``domain.clock`` (:meth:`uninstall` puts the old one back)."""
        clock = cls(start)
        clock._domain, clock._replaced = domain, domain.clock
        domain.clock = clock
        return clock

    def uninstall(self) -> None:
        """Give the domain back the clock :meth:`install` replaced."""
        if self._domain is not None:
            self._domain.clock = self._replaced
            self._domain = None
