"""Run calls that may block on the network, and stop waiting for them at a deadline (I/O).

A probe must answer within its timeout even when a broker or database never
answers (a black-holed port, a driver that retries forever). ``within`` runs
each call in a daemon thread and waits for all of them until one shared
deadline; a call still running then is reported as timed out and left to
finish on its own (a daemon thread never keeps the process alive).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Outcome", "within"]


@dataclass
class Outcome:
    """What one call did before the deadline.

    Attributes:
        value: what it returned (``None`` unless ``done`` and no ``error``).
        error: what it raised.
        done: whether it finished before the deadline.
    """

    value: Any = None
    error: BaseException | None = None
    done: bool = False


def within(calls: Mapping[str, Callable[[], Any]], timeout: float) -> dict[str, Outcome]:
    """Run every call of ``calls`` at once and wait for them all, ``timeout`` seconds at most.

    Args:
        calls: the calls to run, by name.
        timeout: seconds to wait, in total, for all of them.

    Returns:
        One outcome per name; a call still running at the deadline is not ``done``.
    """
    outcomes = {name: Outcome() for name in calls}
    threads = []
    for name, call in calls.items():
        thread = threading.Thread(target=_run, args=(call, outcomes[name]), name=f"probe-{name}", daemon=True)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + max(timeout, 0.0)
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    return {name: _copy(outcome) for name, outcome in outcomes.items()}


def _run(call: Callable[[], Any], outcome: Outcome) -> None:
    try:
        value = call()
    except BaseException as error:  # reported to the caller, never raised in the thread
        outcome.error = error
    else:
        outcome.value = value
    outcome.done = True


def _copy(outcome: Outcome) -> Outcome:
    """A snapshot, so a call that finishes after the deadline changes nothing the caller holds."""
    if not outcome.done:
        return Outcome()
    return Outcome(outcome.value, outcome.error, True)
