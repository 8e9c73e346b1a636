"""Waiting on state, not on time: poll a condition until it holds, and read whether a broker is idle."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

T = TypeVar("T")


def wait_until(probe: Callable[[], T], what: str = "condition", timeout: float = 90.0, worker: Any = None) -> T:
    """``probe()``'s first truthy value, polled until ``timeout`` seconds.

    Args:
        probe: reads the state waited for.
        what: names the condition in the failure.
        timeout: seconds before failing.
        worker: a ``WorkerProcess``: fail at once if it exits, and show its log's tail on failure.

    Raises:
        AssertionError: the condition did not hold in time, or the worker exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if worker is not None and worker.process is not None and worker.process.poll() is not None:
            code = worker.process.returncode
            raise AssertionError(f"the worker exited ({code}) while waiting for {what}:\n{worker.tail()}")
        if time.monotonic() >= deadline:
            tail = f":\n{worker.tail()}" if worker is not None else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{tail}")
        time.sleep(0.05)


def broker_idle(url: str) -> bool:
    """Nothing queued and nothing unacknowledged in the Redis database at ``url``."""
    client = redis.Redis.from_url(url)
    queued = sum(client.llen(key) for key in client.keys("protean.*") if client.type(key) == b"list")
    return queued == 0 and client.hlen("unacked") == 0
