"""SQL statements per saga, by kind: what each system asks of PostgreSQL (round trips).

    python benchmarks/sql_census.py [--orders 100] [--system celery|outbox_off|inline]

Starts a private PostgreSQL and Redis as ``compare.py`` does, turns on PostgreSQL's
statement log (``log_statement = 'all'``), runs one system's burst of ``--orders``
sagas, and counts the logged statements per ended saga, grouped by kind (``BEGIN``,
the empty ``;`` of a connection pre-ping, ``INSERT protean_celery_inbox`` ...). The
counts include the saga driver's own reads (placing orders and polling their status).
Statement counts do not depend on how busy the machine is, unlike timings.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.compare import _environment, _run_system  # noqa: E402
from protean_celery.testing.servers import PostgresServer, RedisServer  # noqa: E402

_LOGGED = re.compile(r"^\d+ \S* LOG:  (?:statement|execute [^:]*): (.*)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100, help="orders in the burst (100)")
    parser.add_argument("--system", default="celery", choices=["celery", "outbox_off", "inline"])
    parser.add_argument("--concurrency", "-c", type=int, default=2)
    parser.add_argument("--top", type=int, default=30, help="kinds to print (30)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer())
        postgres = stack.enter_context(PostgresServer())
        conn = postgres._connect()  # the server's own superuser connection
        conn.autocommit = True  # ALTER SYSTEM runs outside a transaction
        try:
            with conn.cursor() as cursor:
                cursor.execute("ALTER SYSTEM SET log_statement = 'all'")
                cursor.execute("ALTER SYSTEM SET log_line_prefix = '%p %d '")
                cursor.execute("SELECT pg_reload_conf()")
        finally:
            conn.close()
        logs = Path(tempfile.mkdtemp(prefix="census-"))
        env = _environment(args.system, redis, postgres, logs, 0)
        run = argparse.Namespace(orders=args.orders, light=0, timeout=600.0, concurrency=args.concurrency)
        result = _run_system(args.system, env, run, logs)
        burst = result.get("burst", {})
        ended = burst.get("completed", 0) + burst.get("compensated", 0)
        assert postgres.directory is not None
        counts = census((postgres.directory / "postgres.log").read_text(errors="replace"))
    _print(counts, ended, args.top)
    return 0


def census(log: str) -> Counter[str]:
    """Logged statements by kind, from a PostgreSQL log with ``log_statement = 'all'``."""
    statements: list[str] = []
    for line in log.splitlines():
        found = _LOGGED.match(line)
        if found:
            statements.append(found.group(1))
        elif statements and line.startswith("\t"):
            statements[-1] += " " + line.strip()
    return Counter(kind(statement) for statement in statements)


def kind(statement: str) -> str:
    """A statement's kind: its verb and table (``SELECT public.outbox``), ``;`` for a pre-ping."""
    text = re.sub(r"\s+", " ", statement).strip()
    verb = text.split(" ", 1)[0].upper() if text else ";"
    if verb in ("BEGIN", "COMMIT", "ROLLBACK", ";") or not text:
        return verb or ";"
    if "protean_celery_write" in text:
        return "SELECT protean_celery_write() (event store append)"
    table = re.search(r" (?:FROM|INTO|UPDATE) (\S+)", " " + text)
    name = table.group(1) if table else ""
    extras = [word for word, mark in (("count", "count("), ("FOR UPDATE", "FOR UPDATE"),
                                      ("+ advisory lock", "pg_advisory")) if mark in text]
    return " ".join([verb, name, *extras]).strip()


def _print(counts: Counter[str], ended: int, top: int) -> None:
    total = sum(counts.values())
    per = max(ended, 1)
    print(f"{ended} sagas ended; {total} statements, {total / per:.1f} per saga")
    for what, count in counts.most_common(top):
        print(f"  {count / per:6.1f}  {what}")


if __name__ == "__main__":
    sys.exit(main())
