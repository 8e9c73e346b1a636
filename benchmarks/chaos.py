"""Crash-survival run: order sagas through real workers under kill -9 chaos.

    python benchmarks/chaos.py [--orders 1000] [--rate 5] [--concurrency 2]
                               [--profile postgres|outbox_off|message_db|sqlite]
                               [--broker redis|rabbitmq] [--broker-kills 1] [--db-kills 0]
                               [--writer-kills 0]
                               [--nodes 1] [--beats 1]

Starts a durable broker (redis-server with an append-only file fsynced always, or a
RabbitMQ node) and, for the postgres profile, PostgreSQL on loopback; runs `celery worker` and `celery beat`;
places the orders while killing worker children every few seconds, the worker
main process once (each node's, with --nodes), beat once and the broker once (or --broker-kills times),
crash-restarting PostgreSQL --db-kills times (postgres: the SQL event store; outbox_off: the same in
Protean's default delivery, events relayed from the event store; message_db: Protean's
Message DB store, in a database of its own on the same server); for the sqlite profile (the embedded
default) kills a worker child --writer-kills times while it holds a SQLite file's write lock
mid-transaction, and checks the files with PRAGMA integrity_check at the end; injects three poison messages;
then prints what a user would check (see tests/chaos/driver.py). Exits 1 when a
saga ended wrong, a side effect ran twice, an outbox row is stuck, or the dead
letters are not exactly the poison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protean_celery.testing.rabbitmq import RabbitMQServer  # noqa: E402
from protean_celery.testing.servers import PostgresServer, RedisServer  # noqa: E402
from tests.chaos.driver import ChaosPlan, ChaosRun  # noqa: E402
from tests.chaos.report import report_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=5.0, help="orders placed per second")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--child-kill-every", type=float, default=4.0, help="seconds between pool-child kills")
    parser.add_argument("--profile", choices=["postgres", "outbox_off", "message_db", "sqlite"],
                        default="postgres")
    parser.add_argument("--broker", choices=["redis", "rabbitmq"], default="redis")
    parser.add_argument("--broker-kills", type=int, default=1, help="times the broker is killed and restarted")
    parser.add_argument("--db-kills", type=int, default=0, help="times PostgreSQL is crash-restarted")
    parser.add_argument("--writer-kills", type=int, default=0,
                        help="times a worker child is killed holding the SQLite write lock (sqlite profile)")
    parser.add_argument("--nodes", type=int, default=1, help="worker nodes (-n a@%%h, -n b@%%h, ...)")
    parser.add_argument("--beats", type=int, default=1, help="beat processes running at once")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    if args.db_kills and args.profile == "sqlite":
        parser.error("--db-kills crash-restarts PostgreSQL: use --profile postgres, outbox_off or message_db")
    if args.writer_kills and args.profile != "sqlite":
        parser.error("--writer-kills kills the writer of the SQLite files: use --profile sqlite")
    plan = ChaosPlan(orders=args.orders, rate=args.rate, concurrency=args.concurrency,
                     child_kill_every=args.child_kill_every, timeout=args.timeout, broker_kills=args.broker_kills,
                     db_kills=args.db_kills, writer_kills=args.writer_kills, nodes=args.nodes, beats=args.beats)
    state = Path(tempfile.mkdtemp(prefix="chaos-"))
    with ExitStack() as stack:
        broker = stack.enter_context(RedisServer(persistent=True) if args.broker == "redis" else RabbitMQServer())
        postgres, events_table, sqlite_files = None, "protean_events", None
        if args.profile == "sqlite":
            env = {"PROTEAN_CELERY_STATE": str(state)}
            sqlite_files = [state / "orders.db", state / "relay.db"]
        else:
            postgres = stack.enter_context(PostgresServer(crash_safe=True))
            env = {"PROTEAN_ENV": "production", "DATABASE_URL": postgres.create_database("chaos")}
        if args.profile == "outbox_off":  # Protean's default delivery: events relayed from the event store
            env.update(PROTEAN_ENV="outbox_off")
        if args.profile == "message_db":
            env.update(PROTEAN_ENV="messagedb", MESSAGE_DB_URL=_message_db(postgres))
            events_table = "message_store.messages"
        print(f"chaos run: {plan.orders} orders at {plan.rate}/s, -c {plan.concurrency}, {args.profile}, "
              f"{args.broker}, {plan.nodes} node(s), {plan.beats} beat(s), {plan.db_kills} database crash(es), "
              f"{plan.writer_kills} SQLite writer kill(s); "
              f"logs in {state}")
        report = ChaosRun(plan, broker, env, state, database=postgres, events_table=events_table,
                          sqlite_files=sqlite_files).run()
    print()
    print("\n".join(report.lines()))
    if args.json:
        Path(args.json).write_text(report_json(report))
    return 0 if report.ok else 1


def _message_db(postgres: PostgresServer) -> str:
    from protean_celery.testing.message_db import install_message_db

    url = postgres.create_database("chaos_mdb")
    install_message_db(url)
    return url


if __name__ == "__main__":
    sys.exit(main())
