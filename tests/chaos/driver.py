"""Crash survival: order sagas through real workers while a chaos driver breaks things.

While the orders are placed (and for a while after), the driver

* ``kill -9``s a worker pool child every few seconds (Celery replaces it);
* ``kill -9``s the worker main process once and starts a new worker (with
  several nodes, each node's main process once);
* ``kill -9``s beat once, in the middle of its relay ticks, and restarts it;
* ``kill -9``s the broker once and restarts it (Redis on its append-only file,
  RabbitMQ on its durable queues);
* crash-restarts PostgreSQL ``--db-kills`` times (``pg_ctl restart -m immediate``:
  every connection cut, crash recovery from the WAL), under the handlers'
  transactions, the outbox claims, the inbox markers and the sweep's ledger;
* on the embedded default, ``kill -9``s a pool child ``--writer-kills`` times while
  it holds a SQLite file's write lock in the middle of a transaction (found in
  ``/proc/locks``, stopped, checked to still hold it, then killed: see
  ``protean_celery.testing.sqlite_locks``);
* injects poison messages (a body of the wrong shape, a tampered checksum, an
  event sent to a command queue, whose type no handler there takes) that must
  end in the dead-letter store.

It can run several worker nodes and two beats at once (``tests/chaos/cluster.py``,
which also restarts, as a supervisor would, a node that exits on its own and
reports it as an "unplanned exit"). The driver itself is an API: it places orders
with ``app.process`` and reads them back; a database restart must cost it no error
it cannot recover from (a write is retried only when it did not commit).

Then it waits for every saga to end and reads back, with plain SQL, what a user
would check: every order completed or compensated (cancellations = declined
payments), the read model and the saga agree, the courier side effect ran
exactly once per shipped order, no outbox row is left unpublished, and the
dead letters are exactly the injected poison; on SQLite, that every file passes
``PRAGMA integrity_check``.

Run it with ``python benchmarks/chaos.py``; the test suite runs a small one.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from tests.chaos.cluster import Cluster
from tests.chaos.report import POISON_TASK, ChaosReport, integrity, reclaimed_from_live
from tests.examples.saga_facts import COMPENSATED, COMPLETED, saga_facts

APP = "tests.chaos.chaos_app"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ChaosPlan:
    """What to run and how hard to shake it."""

    orders: int = 100
    rate: float = 5.0  # orders placed per second
    concurrency: int = 2
    child_kill_every: float = 4.0
    decline_rate: float = 0.1
    timeout: float = 900.0
    seed: int = 7
    broker_kills: int = 1
    db_kills: int = 0
    writer_kills: int = 0
    nodes: int = 1
    beats: int = 1


class Broker(Protocol):
    """A broker the driver can kill and restart: ``RedisServer(persistent=True)`` or ``RabbitMQServer``."""

    @property
    def url(self) -> str: ...

    def kill(self) -> None: ...

    def restart(self) -> None: ...


class Database(Protocol):
    """A database server the driver can crash and restart: ``PostgresServer(crash_safe=True)``."""

    def crash_restart(self) -> None: ...


class ChaosRun:
    """One chaos run against a durable broker it owns and the database ``env`` names.

    Args:
        plan: sizes and pace.
        broker: a started durable broker; the driver kills and restarts it.
        env: environment of the workers and of this process's app (``PROTEAN_ENV``,
            ``DATABASE_URL`` or ``PROTEAN_CELERY_STATE``; the broker URL is added).
        state: directory for the logs.
        database: the server to crash-restart ``plan.db_kills`` times (PostgreSQL profiles).
        events_table: where the event store keeps messages, for the checks
            (``protean_events``, or ``message_store.messages`` for Message DB).
        sqlite_files: the SQLite files (embedded default) whose writers are killed
            ``plan.writer_kills`` times, and which are checked for corruption.
    """

    def __init__(self, plan: ChaosPlan, broker: Broker, env: dict[str, str], state: Path,
                 database: Database | None = None, events_table: str = "protean_events",
                 sqlite_files: list[Path] | None = None) -> None:
        self.plan = plan
        self.broker = broker
        self.broker_name = "redis-server" if broker.url.startswith("redis") else "rabbitmq-server"
        self.database = database
        self.events_table = events_table
        self.sqlite_files = sqlite_files or []
        self.state = state
        self.env = {**env, "CELERY_BROKER_URL": broker.url, "PROTEAN_NO_AUTO_LOGGING": "1"}
        os.environ.update(self.env)
        self.cluster = Cluster(APP, plan.nodes, plan.beats, plan.concurrency, self.env, ROOT, state)
        self.report = ChaosReport(orders=plan.orders, nodes=plan.nodes, beats=plan.beats)
        self._placing = threading.Event()
        self._stop = threading.Event()
        self._planned = threading.Event()  # every one-shot kill of the plan has happened
        self._rng = random.Random(plan.seed)
        self._writer_turns = itertools.count()

    def run(self) -> ChaosReport:
        """Place the orders under chaos, wait for the sagas, check what is left."""
        from protean_celery import storage
        from tests.chaos.chaos_app import app

        storage.setup(app.domain, app.runtime.state)
        started = time.monotonic()
        self.cluster.start()
        chaos = threading.Thread(target=self._chaos, name="chaos", daemon=True)
        try:
            self._placing.set()
            chaos.start()
            placed = self._place(app)
            self._placing.clear()
            self._inject_poison(app, next(iter(placed)))
            self._wait(app, placed, started)
        finally:
            self._stop.set()
            chaos.join(timeout=120)
            self.report.seconds = time.monotonic() - started
            self.cluster.stop()
        self._check(app, placed)
        return self.report

    # -- load ---------------------------------------------------------------------

    def _place(self, app: Any) -> dict[str, bool]:
        from workers.orders.domain import PlaceOrder

        placed: dict[str, bool] = {}
        with app.domain.domain_context():
            for number in range(self.plan.orders):
                order_id = f"chaos-{number:05d}-{uuid.uuid4().hex[:6]}"
                declined = self._rng.random() < self.plan.decline_rate
                command = PlaceOrder(order_id=order_id, customer=f"c{number % 13}", amount=5.0 + number,
                                     sku=f"sku-{number % 7}", quantity=1 + number % 2, declined=declined)
                self._place_one(app, command, order_id)
                placed[order_id] = declined
                time.sleep(1 / self.plan.rate)
        self.report.declined = sum(placed.values())
        return placed

    def _place_one(self, app: Any, command: Any, order_id: str) -> None:
        """``app.process(command)`` as an API would: retried only when it did not commit.

        The broker need not be up (the outbox holds the command). A database crash
        during the call may have cut it before or after its commit: the command is
        looked up once the database answers, and placed again only when missing.
        """
        for _attempt in range(120):
            try:
                if _attempt and _stored(app, order_id):
                    return
                app.process(command)
                return
            except Exception as exc:
                self.report.api_retries += 1
                self._log(f"placing {order_id} failed ({_short(exc)}), retrying")
                time.sleep(0.5)
        raise RuntimeError(f"could not place {order_id} in 60 s")

    def _inject_poison(self, app: Any, order_id: str) -> None:
        from protean_celery.envelope import encode

        with app.domain.domain_context():
            store = app.domain.event_store.store
            command = next(m for m in store.read("orders::order:command") if m.data.get("order_id") == order_id)
            event = next(m for m in store.read(f"orders::order-{order_id}"))
        tampered = encode(command)
        tampered["data"]["amount"] = 1_000_000.0
        # A genuine event sent to the command dispatcher: no handler takes its type.
        unknown = encode(event)
        route = app.topology.route(POISON_TASK)
        poison = [{"not": "a protean message"}, tampered, unknown]
        for number, payload in enumerate(poison):
            for _attempt in range(120):  # the broker may be down (killed and restarting) right now
                try:
                    app.send_task(POISON_TASK, args=(payload,), task_id=f"chaos-poison-{number}",
                                  exchange=route.exchange, routing_key="orders::order:command", declare=[route.queue])
                    break
                except Exception as exc:  # a copy that did get through is parked once: same key and payload
                    self._log(f"injecting poison {number} failed ({exc!r}), retrying")
                    time.sleep(0.5)
        self.report.poison = len(poison)

    def _wait(self, app: Any, placed: dict[str, bool], started: float) -> None:
        from protean_celery.backlog import backlog

        deadline = started + self.plan.timeout
        ended = -1
        while time.monotonic() < deadline:
            try:
                now = _ended(app)
                quiet = now >= len(placed) and backlog(app).quiescent
            except Exception as exc:  # the broker may be down for a moment
                self._log(f"progress check failed: {exc!r}")
                now, quiet = ended, False
            if now != ended:
                print(f"  {now}/{len(placed)} sagas ended", flush=True)
                ended = now
            # Every planned kill happens, however fast the sagas end (one-shot kills can lag the plan).
            planned = self._planned.is_set()
            if now >= len(placed) * 0.8 and planned:
                self._stop.set()  # let the tail finish under a stable system
            if quiet and planned:
                return
            self._supervise()
            time.sleep(1.0)
        self._log(f"timed out with {ended}/{len(placed)} sagas ended")

    def _supervise(self) -> None:
        """Restart nodes that exited without the driver killing them (a crash, not chaos: reported)."""
        for reason in self.cluster.supervise():
            self.report.crashes.append(reason)
            self._log(f"worker main process exited on its own ({reason}); restarted it, as a supervisor would")

    # -- chaos --------------------------------------------------------------------

    def _chaos(self) -> None:
        placing = self.plan.orders / self.plan.rate
        once = {0.5 * placing: self._kill_beat}
        nodes = self.plan.nodes
        for node in range(nodes):  # each node's main process once, from 15% to 60% of the placing time
            once[(0.15 + 0.45 * node / max(nodes - 1, 1)) * placing + 0.011 * node] = _bind(self._kill_node, node)
        kills = self.plan.broker_kills
        for kill in range(kills):  # the first at 70% of the placing time, more spread up to 95%
            once[(0.7 + 0.25 * kill / max(kills - 1, 1)) * placing + 0.01 * kill] = self._restart_broker
        writers = self.plan.writer_kills
        for kill in range(writers):  # from 20% to 85% of the placing time
            once[(0.2 + 0.65 * kill / max(writers - 1, 1)) * placing + 0.017 * kill] = self._kill_writer
        crashes = self.plan.db_kills
        for kill in range(crashes):  # the first at 40% of the placing time, more spread up to 90%
            once[(0.4 + 0.5 * kill / max(crashes - 1, 1)) * placing + 0.013 * kill] = self._restart_database
        started = time.monotonic()
        next_child = started + self.plan.child_kill_every
        while not self._stop.is_set():
            if not once:
                self._planned.set()
            elapsed = time.monotonic() - started
            for at in sorted(once):
                if elapsed >= at:
                    once.pop(at)()
                    break
            if time.monotonic() >= next_child:
                pid = self.cluster.kill_child(self._rng)
                if pid:
                    self._log(f"kill -9 worker child {pid}")
                next_child = time.monotonic() + self.plan.child_kill_every * (0.5 + self._rng.random())
            if not once and not self._placing.is_set() and elapsed > placing + 10:
                break
            self._supervise()
            time.sleep(0.1)

    def _kill_node(self, index: int) -> None:
        old, new = self.cluster.kill_node(index)
        self._log(f"kill -9 worker main {old}; restarted as {new}")

    def _kill_beat(self) -> None:
        beat = self.cluster.beats[0]
        beat.wait_for("Sending due task", timeout=30, after=len(beat.log()))
        self._log(f"kill -9 beat {beat.pid} after a relay tick")
        beat.kill()
        time.sleep(1)
        beat.start(timeout=60)

    def _restart_database(self) -> None:
        if self.database is None:
            return
        started = time.monotonic()
        self.database.crash_restart()
        self.report.db_restarts += 1
        self.report.db_down_seconds.append(round(time.monotonic() - started, 2))
        self._log(f"restart postgres -m immediate; back after {self.report.db_down_seconds[-1]} s")

    def _kill_writer(self) -> None:
        """Each kill in turn looks first at one file (the relay's too: its writers are rarer), then at any."""
        turn = next(self._writer_turns) % max(len(self.sqlite_files), 1)
        preferred = self.sqlite_files[turn:turn + 1]
        killed = self.cluster.kill_writer(preferred, timeout=15) or self.cluster.kill_writer(self.sqlite_files, 30)
        if killed is None:
            self._log("no SQLite writer caught holding the write lock within 45 s")
            return
        self.report.writer_kills += 1
        self._log(f"kill -9 SQLite writer {killed.pid} (a worker child holding the write lock of "
                  f"{killed.database.name} mid-transaction)")

    def _restart_broker(self) -> None:
        self._log(f"kill -9 broker {self.broker_name}")
        self.broker.kill()
        time.sleep(1)
        self.broker.restart()
        self._log(f"broker {self.broker_name} restarted on its durable state")

    def _log(self, text: str) -> None:
        self.report.events.append(text)
        print(f"  chaos: {text}", flush=True)

    # -- checks -------------------------------------------------------------------

    def _check(self, app: Any, placed: dict[str, bool]) -> None:
        orders_db, events_db = _engines(app)
        for order_id, declined in placed.items():
            facts = saga_facts(orders_db, events_db, order_id, self.events_table)
            facts.pop("saga_steps")
            expected = COMPENSATED if declined else COMPLETED
            if facts == expected:
                self.report.completed += not declined
                self.report.compensated += declined
            else:
                self.report.wrong.append(f"{order_id}: {facts}")
        with orders_db.connect() as conn:
            self.report.courier_calls = int(
                conn.execute(sa.text("SELECT COALESCE(SUM(attempts), 0) FROM courier_call")).scalar() or 0
            )
            has_outbox = sa.inspect(conn).has_table("outbox")  # no table with the outbox off
            self.report.unpublished_outbox = int(
                conn.execute(sa.text("SELECT COUNT(*) FROM outbox WHERE status != 'published'")).scalar() or 0
            ) if has_outbox else 0
        self.report.dead_letters = [(entry.task, entry.error) for entry in app.runtime.dead_letters.list()]
        log = self.cluster.log()
        self.report.transient_retries = log.count("transient error), retrying in")
        self.report.duplicates = log.count("'duplicate'")
        self.report.retried = log.count(" retry: Retry in ")
        self.report.redelivered = log.count("no copy is left; republished")
        self.report.reclaimed = log.count("no worker holds it now; put back on its queue")
        self.report.reclaimed_from_live = reclaimed_from_live([worker.log() for worker in self.cluster.workers])
        self.report.locked_errors = log.count("database is locked")
        self.report.corrupted = [f"{path.name}: {verdict}" for path in self.sqlite_files
                                 if (verdict := integrity(path)) != "ok"]


def _ended(app: Any) -> int:
    from workers.orders.domain import Order

    with app.domain.domain_context():
        dao = app.domain.repository_for(Order)._dao
        return int(dao.query.filter(status__in=["COMPLETED", "CANCELLED"]).all().total)


def _stored(app: Any, order_id: str) -> bool:
    """Whether the ``PlaceOrder`` for ``order_id`` is in the event store (it committed)."""
    with app.domain.domain_context():
        store = app.domain.event_store.store
        return any(m.data.get("order_id") == order_id for m in store.read(f"orders::order:command-{order_id}"))


def _bind(method: Any, *args: Any) -> Any:
    return lambda: method(*args)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


def _engines(app: Any) -> tuple[sa.Engine, sa.Engine]:
    config = app.domain.config
    return sa.create_engine(config["databases"]["default"]["database_uri"]), sa.create_engine(
        config["event_store"]["database_uri"]
    )
