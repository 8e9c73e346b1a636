"""What a chaos run left behind, and the verdict (see ``tests/chaos/driver.py``)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa

POISON_TASK = "protean.orders.commands.Order"


@dataclass
class ChaosReport:
    """What the run left behind."""

    orders: int = 0
    declined: int = 0
    completed: int = 0
    compensated: int = 0
    wrong: list[str] = field(default_factory=list)
    courier_calls: int = 0
    unpublished_outbox: int = 0
    dead_letters: list[tuple[str, str]] = field(default_factory=list)
    poison: int = 0
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    duplicates: int = 0
    retried: int = 0
    redelivered: int = 0
    reclaimed: int = 0
    crashes: list[str] = field(default_factory=list)
    reclaimed_from_live: list[str] = field(default_factory=list)
    db_restarts: int = 0
    db_down_seconds: list[float] = field(default_factory=list)
    transient_retries: int = 0
    api_retries: int = 0
    writer_kills: int = 0
    locked_errors: int = 0
    corrupted: list[str] = field(default_factory=list)
    nodes: int = 1
    beats: int = 1

    @property
    def ok(self) -> bool:
        """Every saga ended right, effects once, nothing stuck, only the poison dead-lettered, no file corrupted."""
        return (
            self.completed + self.compensated == self.orders
            and self.compensated == self.declined
            and not self.wrong
            and self.courier_calls == self.completed
            and self.unpublished_outbox == 0
            and len(self.dead_letters) == self.poison
            and all(task == POISON_TASK for task, _ in self.dead_letters)
            and not self.reclaimed_from_live
            and not self.corrupted
        )

    def lines(self) -> list[str]:
        """The report as printed."""
        return [
            f"orders placed          {self.orders}",
            f"sagas completed        {self.completed}",
            f"sagas compensated      {self.compensated}  (declined payments: {self.declined})",
            f"sagas wrong            {len(self.wrong)}  {self.wrong[:5]}",
            f"courier side effects   {self.courier_calls}  (one per completed saga: {self.completed})",
            f"outbox not published   {self.unpublished_outbox}",
            f"dead letters           {len(self.dead_letters)}  (poison injected: {self.poison})",
            f"duplicates absorbed    {self.duplicates}",
            f"task retries           {self.retried}  (of a transient error: {self.transient_retries})",
            f"lost, republished      {self.redelivered}  (by the redelivery sweep)",
            f"held by no worker      {self.reclaimed}  (put back on their queues by the sweep)",
            f"reclaimed from a live  {len(self.reclaimed_from_live)}  (a node was running it: must be 0) "
            f"{self.reclaimed_from_live[:3]}",
            f"unplanned exits        {len(self.crashes)}  (restarted, as a supervisor would) {self.crashes[:2]}",
            f"database restarts      {self.db_restarts}  (down {_seconds(self.db_down_seconds)})",
            f"API calls retried      {self.api_retries}  (the driver's own, after a failed call that did not commit)",
            f"SQLite writers killed  {self.writer_kills}  (pool children holding the write lock mid-transaction)",
            f"database is locked     {self.locked_errors}  (in the workers' logs)",
            f"integrity check        {'; '.join(self.corrupted) or 'ok'}",
            f"nodes, beats           {self.nodes}, {self.beats}",
            f"chaos                  {len(self.events)} events: {', '.join(_summary(self.events))}",
            f"wall time              {self.seconds:.0f} s",
            f"result                 {'OK' if self.ok else 'FAILED'}",
        ]


_EVENT = re.compile(
    r"^\[(?P<at>[\d-]+ [\d:,]+): [^\]]*\] (?:redelivery sweep: )?(?:Task )?\S+\[(?P<id>[0-9a-f-]{36})\] "
    r"(?P<what>received|succeeded|retry:|raised|rejected|was taken by a worker)",
    re.MULTILINE,
)


def reclaimed_from_live(node_logs: list[str]) -> list[str]:
    """Task ids the sweep put back on their queue while a live node was running or holding them.

    A node's log shows each delivery it took (``received``) and how it ended
    (``succeeded``, ``retry:``, ``raised``, ``rejected``); a delivery still open when
    the sweep reclaimed its id, and closed after by the same process, was held by a
    live node. A node that restarts (``ready.``) leaves its open deliveries behind.
    """
    events = [(log, [match.groupdict() for match in _EVENT.finditer(log)]) for log in node_logs]
    reclaims: dict[str, list[str]] = {}
    for _log, found in events:
        for event in found:
            if event["what"] == "was taken by a worker":
                reclaims.setdefault(event["id"], []).append(event["at"])
    wrong = []
    for log, _found in events:
        started: dict[str, str] = {}
        for line in log.splitlines():
            if " ready." in line:
                started.clear()
            match = _EVENT.match(line)
            if match is None or match["what"] == "was taken by a worker":
                continue
            if match["what"] == "received":
                started[match["id"]] = match["at"]
            elif (begun := started.pop(match["id"], None)) is not None:
                if any(begun < at < match["at"] for at in reclaims.get(match["id"], [])):
                    wrong.append(match["id"])
    return wrong


def integrity(path: Path) -> str:
    """SQLite's ``PRAGMA integrity_check`` of the file ``path`` (``ok`` when nothing is corrupted)."""
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return "; ".join(str(row) for row in conn.exec_driver_sql("PRAGMA integrity_check").scalars())
    finally:
        engine.dispose()


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.1f} s" for value in values) or "-"


def _summary(events: list[str]) -> list[str]:
    kinds = [
        " ".join(word for word in event.split()[:4] if not word.isdigit())
        for event in events if not event.startswith(("placing", "progress"))
    ]
    return [f"{kind} x{kinds.count(kind)}" for kind in dict.fromkeys(kinds)]


def report_json(report: ChaosReport) -> str:
    """The report as JSON (for the test and for the closing note)."""
    return json.dumps({**asdict(report), "ok": report.ok}, default=str)
