"""What ``benchmarks/soak.py`` reads once per window: sagas ended, memory, table sizes, load.

Each reading is what an operator would look at: the orders that reached an end
state (``COMPLETED`` or ``CANCELLED``), the resident memory of the worker's pool
children, Redis's own ``used_memory`` (``INFO memory``), and ``COUNT(*)`` of the
tables maintenance must keep bounded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import psutil
import sqlalchemy as sa

from protean_celery.testing.processes import WorkerProcess

__all__ = ["Probe", "Sample", "TABLES", "rss_bytes"]

#: Label -> table name, for the tables maintenance must keep bounded.
TABLES = {
    "inbox": "protean_celery_inbox",
    "ledger": "protean_celery_redeliveries",
    "outbox": "outbox",
    "dead_letters": "protean_celery_dead_letters",
}


@dataclass(frozen=True)
class Sample:
    """One window's reading.

    Attributes:
        elapsed: seconds since the steady load started, at the end of the window.
        placed: orders placed so far.
        ended: sagas ended so far.
        throughput: sagas ended per second during this window.
        rss_mb: resident memory of the worker's pool children, summed (MiB).
        children: how many pool children were running.
        redis_mb: Redis ``used_memory`` (MiB).
        queued: messages waiting in the handler queues or delivered and not yet acknowledged
            (what a backlog adds to Redis's memory).
        rows: ``COUNT(*)`` per label of :data:`TABLES`.
        load: the machine's 1-minute load average.
    """

    elapsed: float
    placed: int
    ended: int
    throughput: float
    rss_mb: float
    children: int
    redis_mb: float
    queued: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    load: float = 0.0


class Probe:
    """Reads samples of one soak run.

    Args:
        app: the soak's ``ProteanCelery`` app (its domain and state database).
        worker: the running ``celery worker``.
        redis_url: the broker's URL.
    """

    def __init__(self, app: Any, worker: WorkerProcess, redis_url: str) -> None:
        import redis

        self.app = app
        self.worker = worker
        self.redis = redis.Redis.from_url(redis_url)
        self._engines = {
            "inbox": app.runtime.inbox.engine,
            "outbox": app.runtime.inbox.engine,  # the default provider's database holds both
            "ledger": app.runtime.state.engine,
            "dead_letters": app.runtime.state.engine,
        }

    def sample(self, elapsed: float, placed: int, previous: Sample | None, base: int = 0) -> Sample:
        """Read everything once; ``throughput`` is measured since ``previous`` (or since the start).

        Args:
            elapsed: seconds since the load started.
            placed: orders placed since then.
            previous: the window before, if any.
            base: sagas that had ended before the load started (left out of ``ended``).
        """
        ended = self.ended() - base
        since = previous.elapsed if previous else 0.0
        before = previous.ended if previous else 0
        children = self.worker.children()
        return Sample(
            elapsed=elapsed,
            placed=placed,
            ended=ended,
            throughput=(ended - before) / max(elapsed - since, 1e-9),
            rss_mb=sum(rss_bytes(pid) for pid in children) / 2**20,
            children=len(children),
            redis_mb=int(self.redis.info("memory")["used_memory"]) / 2**20,
            queued=self._queued(),
            rows={label: self._count(label) for label in TABLES},
            load=os.getloadavg()[0],
        )

    def ended(self) -> int:
        """Sagas that reached ``COMPLETED`` or ``CANCELLED``."""
        from workers.orders.domain import Order

        with self.app.domain.domain_context():
            dao = self.app.domain.repository_for(Order)._dao
            return int(dao.query.filter(status__in=["COMPLETED", "CANCELLED"]).all().total)

    def _queued(self) -> int:
        from protean_celery.backlog import backlog

        waiting = backlog(self.app)
        return sum(waiting.queued.values()) + waiting.in_flight

    def _count(self, label: str) -> int:
        with self._engines[label].connect() as conn:
            return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {TABLES[label]}")).scalar_one())


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` in bytes; 0 once it is gone."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0
