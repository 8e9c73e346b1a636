"""Orders-saga benchmark through real workers on Redis + PostgreSQL.

    python benchmarks/saga.py [--orders 200] [--concurrency 2] [--light 30] [--store sqlalchemy|message_db]

Starts a real redis-server and PostgreSQL on loopback, then runs the orders
example twice with `celery worker -c N` and beat: all orders at once
(throughput: sagas/s, handler tasks/s) and a light load of one order every
1 s (latency: p50/p95 per saga). Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protean_celery.testing.servers import PostgresServer, RedisServer  # noqa: E402
from tests.integration.orders import run_orders  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--light", type=int, default=30, help="orders in the light-load run (0: skip)")
    parser.add_argument("--light-rate", type=float, default=1.0, help="orders per second in the light-load run")
    parser.add_argument("--store", choices=["sqlalchemy", "message_db"], default="sqlalchemy")
    args = parser.parse_args()
    with RedisServer() as redis, PostgresServer() as postgres:
        for label, count, rate in (("throughput", args.orders, 0), ("light load", args.light, args.light_rate)):
            if count <= 0:
                continue
            env = _profile(postgres, args.store, label.replace(" ", "_"))
            state = Path(tempfile.mkdtemp(prefix="bench-"))
            extra = ["--rate", str(rate), "--concurrency", str(args.concurrency)]
            run = run_orders(state, count, broker=redis.url, env=env, extra=extra)
            print(f"== {label}: {count} orders, -c {args.concurrency}, store {args.store}")
            print("\n".join(line for line in run.output.splitlines() if line and not line.startswith("  ")))


def _profile(postgres: PostgresServer, store: str, name: str) -> dict[str, str]:
    url = postgres.create_database(f"bench_{name}")
    if store == "message_db":
        from protean_celery.testing.message_db import install_message_db

        store_url = postgres.create_database(f"bench_{name}_mdb")
        install_message_db(store_url)
        return {"PROTEAN_ENV": "messagedb", "DATABASE_URL": url, "MESSAGE_DB_URL": store_url}
    return {"PROTEAN_ENV": "production", "DATABASE_URL": url}


if __name__ == "__main__":
    main()
