"""Place orders into one configured system and measure its sagas (child of ``compare.py``).

    python benchmarks/saga_driver.py --system inline|server|celery --setup
    python benchmarks/saga_driver.py --system celery --orders 200 --light 20 --place-with domain,app

Runs in the environment ``compare.py`` gives it (``PROTEAN_ENV``, database and
broker URLs), so the orders domain reads that system's profile of
``workers/orders/domain.toml``. ``--setup`` creates the tables and exits.
Otherwise it places a burst of ``--orders`` (throughput), then ``--light``
orders one at a time, each after the previous saga ended (latency), and prints
one JSON line. A saga ends when its ``Order`` is COMPLETED or CANCELLED; its
end time is the ``time`` header of ``OrderCompleted``/``OrderCancelled``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cpu import tree_by_role  # noqa: E402
from workers.orders.metrics import percentile  # noqa: E402

ENDED = ("COMPLETED", "CANCELLED")
END_EVENTS = ("Orders.OrderCompleted.v1", "Orders.OrderCancelled.v1")
# Handler invocations per saga, read off the saga in workers/orders/domain:
# completed: 6 commands, 4 process-manager steps, 1 courier call, 6 projector updates;
# compensated: 5 commands, 3 process-manager steps, 5 projector updates.
INVOCATIONS = {"COMPLETED": 17, "CANCELLED": 13}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    domain, app = _init(args.system)
    if args.setup:
        _setup(args.system, domain, app)
        return 0
    rng = random.Random(42)
    result: dict[str, Any] = {}
    with domain.domain_context():
        if args.orders > 0:
            placer = _placer(domain, app, "app" if args.system == "celery" else "domain")
            result["burst"] = _burst(domain, placer, args.orders, rng, args.timeout, inline=args.system == "inline")
        if args.system != "inline":
            for how in filter(None, args.place_with.split(",")):
                result[f"light_{how}"] = _light(domain, _placer(domain, app, how), args.light, rng, args.timeout)
    print(json.dumps(result))
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=["inline", "server", "celery"], required=True)
    parser.add_argument("--setup", action="store_true", help="create the tables and exit")
    parser.add_argument("--orders", type=int, default=200, help="orders in the burst (0: none)")
    parser.add_argument("--light", type=int, default=20, help="orders placed one at a time")
    parser.add_argument("--place-with", default="domain", help="comma list of domain, app (light load)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for a phase's sagas")
    return parser.parse_args(argv)


def _init(system: str) -> tuple[Any, Any]:
    if system == "celery":
        from workers.orders.app import app

        return app.domain, app
    import protean_celery  # noqa: F401  (registers the SQL event store before init)
    from protean_celery import prepare_databases
    from workers.orders.domain import domain

    prepare_databases(domain.config)
    domain.init(traverse=False)
    return domain, None


def _setup(system: str, domain: Any, app: Any) -> None:
    from protean_celery import storage

    storage.setup(domain, app.runtime.state if app is not None else None)
    if system == "server":
        storage.setup_outbox(domain)


def _placer(domain: Any, app: Any, how: str) -> Callable[[Any], Any]:
    if how == "app":
        if app is None:
            raise SystemExit("--place-with app needs --system celery")
        return app.process
    if how != "domain":
        raise SystemExit(f"--place-with takes domain or app, not {how!r}")
    return domain.process


def _order(rng: random.Random, number: int) -> Any:
    from workers.orders.domain import PlaceOrder

    return PlaceOrder(
        order_id=f"order-{number:05d}-{uuid.uuid4().hex[:6]}",
        customer=f"customer-{number % 17}",
        amount=10.0 + number,
        sku=f"sku-{number % 5}",
        quantity=1 + number % 3,
        declined=rng.random() < 0.1,
    )


def _burst(domain: Any, place: Callable[[Any], Any], count: int, rng: random.Random, timeout: float,
           inline: bool) -> dict[str, Any]:
    """Place ``count`` orders at once; sagas/s from the first placement to the last saga's end."""
    commands = [_order(rng, number) for number in range(count)]
    root = os.getppid()  # compare.py: the databases, workers and this driver all run below it
    cpu = tree_by_role(root)
    started = time.time()
    durations = []
    for command in commands:
        before = time.perf_counter()
        place(command)
        durations.append((time.perf_counter() - before) * 1000)
    ids = [c.order_id for c in commands]
    statuses = _wait(domain, ids, timeout)
    after = tree_by_role(root)
    spent = {role: after.get(role, 0.0) - cpu.get(role, 0.0) for role in after}
    if inline:
        span = time.time() - started
    else:
        ends = _end_times(domain, set(ids))
        span = (max(ends.values()) - started) if ends else 0.0
    figures = _counts(statuses, len(ids))
    ended = figures["completed"] + figures["compensated"]
    figures["sagas_per_s"] = ended / span if span > 0 else 0.0
    figures["handlers_per_s"] = figures["invocations"] / span if span > 0 else 0.0
    figures["cpu_ms_per_saga"] = sum(spent.values()) / ended * 1000 if ended else 0.0
    figures["cpu_ms_by_role"] = {role: round(s / ended * 1000, 1) for role, s in spent.items() if ended and s > 0}
    if inline:  # every saga ran inside its own domain.process call
        figures.update(p50_ms=percentile(durations, 50), p95_ms=percentile(durations, 95))
    return figures


def _light(domain: Any, place: Callable[[Any], Any], count: int, rng: random.Random,
           timeout: float) -> dict[str, Any]:
    """Place ``count`` orders one at a time, each once the previous saga ended; p50/p95 latency."""
    latencies, statuses = [], {}
    for number in range(count):
        command = _order(rng, 10_000 + number)
        placed_at = time.time()
        place(command)
        statuses.update(_wait(domain, [command.order_id], timeout, poll=0.01))
        end = _end_times(domain, {command.order_id}).get(command.order_id)
        if end is not None:
            latencies.append((end - placed_at) * 1000)
    figures = _counts(statuses, count)
    figures.update(p50_ms=percentile(latencies, 50), p95_ms=percentile(latencies, 95))
    return figures


def _wait(domain: Any, ids: list[str], timeout: float, poll: float = 0.2) -> dict[str, str]:
    """Statuses of the orders in ``ids`` once all ended (or at the timeout)."""
    deadline = time.monotonic() + timeout
    statuses = _statuses(domain, ids)
    waiting = [order_id for order_id in ids if statuses.get(order_id) not in ENDED]
    while waiting and time.monotonic() < deadline:  # only the sagas still running: polling costs the system's CPU
        time.sleep(poll)
        statuses.update(_statuses(domain, waiting))
        waiting = [order_id for order_id in waiting if statuses.get(order_id) not in ENDED]
    return statuses


def _statuses(domain: Any, ids: list[str]) -> dict[str, str]:
    from workers.orders.domain import Order

    dao = domain.repository_for(Order)._dao
    return {order.order_id: order.status for order in dao.query.filter(order_id__in=ids).limit(None).all().items}


def _end_times(domain: Any, ids: set[str]) -> dict[str, float]:
    """Epoch seconds of each saga's end event, for the orders in ``ids``."""
    store = domain.event_store.store
    ends = {}
    for order_id in ids:
        for message in store.read(f"orders::order-{order_id}"):
            if message.metadata.headers.type in END_EVENTS:
                ends[order_id] = _epoch(message.metadata.headers.time)
    return ends


def _epoch(value: Any) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _counts(statuses: dict[str, str], placed: int) -> dict[str, Any]:
    completed = sum(status == "COMPLETED" for status in statuses.values())
    compensated = sum(status == "CANCELLED" for status in statuses.values())
    return {
        "placed": placed,
        "completed": completed,
        "compensated": compensated,
        "invocations": completed * INVOCATIONS["COMPLETED"] + compensated * INVOCATIONS["CANCELLED"],
    }


if __name__ == "__main__":
    sys.exit(main())
