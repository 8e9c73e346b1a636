"""Crash survival: order sagas through real workers while a chaos driver breaks things.

While the orders are placed (and for a while after), the driver

* ``kill -9``s a worker pool child every few seconds (Celery replaces it);
* ``kill -9``s the worker main process once and starts a new worker;
* ``kill -9``s beat once, in the middle of its relay ticks, and restarts it;
* ``kill -9``s the broker once and restarts it (Redis on its append-only file,
  RabbitMQ on its durable queues);
* injects poison messages (a body of the wrong shape, a tampered checksum, an
  event sent to a command queue, whose type no handler there takes) that must
  end in the dead-letter store.

Like a process supervisor (systemd, Kubernetes), it restarts a worker whose main
process exits without being killed by the driver, and reports each such crash
("unplanned exits") with Celery's "Unrecoverable error" line.

Then it waits for every saga to end and reads back, with plain SQL, what a user
would check: every order completed or compensated (cancellations = declined
payments), the read model and the saga agree, the courier side effect ran
exactly once per shipped order, no outbox row is left unpublished, and the
dead letters are exactly the injected poison.

Run it with ``python benchmarks/chaos.py``; the test suite runs a small one.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from protean_celery.testing.processes import BeatProcess, WorkerProcess
from tests.examples.saga_facts import COMPENSATED, COMPLETED, saga_facts

APP = "tests.chaos.chaos_app"
ROOT = Path(__file__).resolve().parents[2]
POISON_TASK = "protean.orders.commands.Order"


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

    @property
    def ok(self) -> bool:
        """Every saga ended right, effects once, nothing stuck, only the poison dead-lettered."""
        return (
            self.completed + self.compensated == self.orders
            and self.compensated == self.declined
            and not self.wrong
            and self.courier_calls == self.completed
            and self.unpublished_outbox == 0
            and len(self.dead_letters) == self.poison
            and all(task == POISON_TASK for task, _ in self.dead_letters)
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
            f"task retries           {self.retried}",
            f"lost, republished      {self.redelivered}  (by the redelivery sweep)",
            f"held by no worker      {self.reclaimed}  (put back on their queues by the sweep)",
            f"unplanned exits        {len(self.crashes)}  (restarted, as a supervisor would) {self.crashes[:2]}",
            f"chaos                  {len(self.events)} events: {', '.join(_summary(self.events))}",
            f"wall time              {self.seconds:.0f} s",
            f"result                 {'OK' if self.ok else 'FAILED'}",
        ]


class Broker(Protocol):
    """A broker the driver can kill and restart: ``RedisServer(persistent=True)`` or ``RabbitMQServer``."""

    @property
    def url(self) -> str: ...

    def kill(self) -> None: ...

    def restart(self) -> None: ...


class ChaosRun:
    """One chaos run against a durable broker it owns and the database ``env`` names.

    Args:
        plan: sizes and pace.
        broker: a started durable broker; the driver kills and restarts it.
        env: environment of the workers and of this process's app (``PROTEAN_ENV``,
            ``DATABASE_URL`` or ``PROTEAN_CELERY_STATE``; the broker URL is added).
        state: directory for the logs.
    """

    def __init__(self, plan: ChaosPlan, broker: Broker, env: dict[str, str], state: Path) -> None:
        self.plan = plan
        self.broker = broker
        self.broker_name = "redis-server" if broker.url.startswith("redis") else "rabbitmq-server"
        self.state = state
        self.env = {**env, "CELERY_BROKER_URL": broker.url, "PROTEAN_NO_AUTO_LOGGING": "1"}
        os.environ.update(self.env)
        self.worker = WorkerProcess(APP, plan.concurrency, env=self.env, cwd=ROOT, log_path=state / "worker.log")
        self.beat = BeatProcess(APP, env=self.env, cwd=ROOT, log_path=state / "beat.log")
        self.report = ChaosReport(orders=plan.orders)
        self._placing = threading.Event()
        self._stop = threading.Event()
        self._supervising = threading.Lock()  # held while the driver itself kills and restarts the worker
        self._checked_log = 0
        self._rng = random.Random(plan.seed)

    def run(self) -> ChaosReport:
        """Place the orders under chaos, wait for the sagas, check what is left."""
        from protean_celery import storage
        from tests.chaos.chaos_app import app

        storage.setup(app.domain, app.runtime.state)
        started = time.monotonic()
        self.worker.start()
        self.beat.start()
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
            self.beat.stop()
            self.worker.stop()
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
                for _attempt in range(60):  # the database may be briefly busy; the broker need not be up
                    try:
                        app.process(command)
                        break
                    except Exception as exc:
                        self._log(f"placing {order_id} failed ({exc!r}), retrying")
                        time.sleep(0.5)
                placed[order_id] = declined
                time.sleep(1 / self.plan.rate)
        self.report.declined = sum(placed.values())
        return placed

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
            if now >= len(placed) * 0.8:
                self._stop.set()  # let the tail finish under a stable system
            if quiet:
                return
            self._supervise()
            time.sleep(1.0)
        self._log(f"timed out with {ended}/{len(placed)} sagas ended")

    def _supervise(self) -> None:
        """Restart the worker when its main process exited without the driver killing it, as systemd would.

        Such an exit is a crash (an upstream bug on a reconnect, say), not chaos: it is
        reported as an unplanned exit with Celery's "Unrecoverable error" line.
        """
        with self._supervising:
            process = self.worker.process
            if process is None or process.poll() is None:
                return
            log = self.worker.log()[self._checked_log:]
            self._checked_log += len(log)
            reason = next((line.strip()[:300] for line in log.splitlines() if "Unrecoverable error" in line),
                          f"exit code {process.returncode}")
            self.report.crashes.append(reason)
            self._log(f"worker main process exited on its own ({reason}); restarting it, as a supervisor would")
            self.worker.start(timeout=120)

    # -- chaos --------------------------------------------------------------------

    def _chaos(self) -> None:
        placing = self.plan.orders / self.plan.rate
        once = {0.25 * placing: self._kill_worker_main, 0.5 * placing: self._kill_beat}
        kills = self.plan.broker_kills
        for kill in range(kills):  # the first at 70% of the placing time, more spread up to 95%
            once[(0.7 + 0.25 * kill / max(kills - 1, 1)) * placing + 0.01 * kill] = self._restart_broker
        started = time.monotonic()
        next_child = started + self.plan.child_kill_every
        while not self._stop.is_set():
            elapsed = time.monotonic() - started
            for at in sorted(once):
                if elapsed >= at:
                    once.pop(at)()
                    break
            if time.monotonic() >= next_child:
                pid = self.worker.kill_child() if self.worker.process and self.worker.process.poll() is None else None
                if pid:
                    self._log(f"kill -9 worker child {pid}")
                next_child = time.monotonic() + self.plan.child_kill_every * (0.5 + self._rng.random())
            if not once and not self._placing.is_set() and elapsed > placing + 10:
                break
            self._supervise()
            time.sleep(0.1)

    def _kill_worker_main(self) -> None:
        with self._supervising:  # not mistaken for a crash
            self._log(f"kill -9 worker main {self.worker.pid}")
            self.worker.kill_main()
            time.sleep(1)
            self.worker.start(timeout=120)
            self._log(f"worker restarted as {self.worker.pid}")

    def _kill_beat(self) -> None:
        self.beat.wait_for("Sending due task", timeout=30, after=len(self.beat.log()))
        self._log(f"kill -9 beat {self.beat.pid} after a relay tick")
        self.beat.kill()
        time.sleep(1)
        self.beat.start(timeout=60)

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
            facts = saga_facts(orders_db, events_db, order_id)
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
            self.report.unpublished_outbox = int(
                conn.execute(sa.text("SELECT COUNT(*) FROM outbox WHERE status != 'published'")).scalar() or 0
            )
        self.report.dead_letters = [(entry.task, entry.error) for entry in app.runtime.dead_letters.list()]
        log = self.worker.log()
        self.report.duplicates = log.count("'duplicate'")
        self.report.retried = log.count(" retry: Retry in ")
        self.report.redelivered = log.count("no copy is left; republished")
        self.report.reclaimed = log.count("no worker holds it now; put back on its queue")


def _ended(app: Any) -> int:
    from workers.orders.domain import Order

    with app.domain.domain_context():
        dao = app.domain.repository_for(Order)._dao
        return int(dao.query.filter(status__in=["COMPLETED", "CANCELLED"]).all().total)


def _engines(app: Any) -> tuple[sa.Engine, sa.Engine]:
    config = app.domain.config
    return sa.create_engine(config["databases"]["default"]["database_uri"]), sa.create_engine(
        config["event_store"]["database_uri"]
    )


def _summary(events: list[str]) -> list[str]:
    kinds = [
        " ".join(word for word in event.split()[:4] if not word.isdigit())
        for event in events if not event.startswith(("placing", "progress"))
    ]
    return [f"{kind} x{kinds.count(kind)}" for kind in dict.fromkeys(kinds)]


def report_json(report: ChaosReport) -> str:
    """The report as JSON (for the test and for the closing note)."""
    return json.dumps({**asdict(report), "ok": report.ok}, default=str)
