"""Side-by-side saga benchmark: inline, `protean server`, protean-celery, in one run.

    python benchmarks/compare.py [--orders 200] [--light 20] [--concurrency 2]
                                 [--skip server,outbox_off,embedded] [--quick] [--json out.json]

Starts one private redis-server and PostgreSQL on loopback and runs the orders
saga (workers/orders) through each system in turn:

- ``inline``: the saga synchronously inside ``domain.process`` in one process,
  no transport (PROTEAN_ENV=bench_inline): the inline limit;
- ``server``: ``protean server --workers N`` (PROTEAN_ENV=bench_server: Message
  DB event store, outbox to Redis Streams, stream subscriptions, sync commands);
- ``celery``: ``celery -A workers.orders.app worker -c N`` + beat on PostgreSQL
  with the SQL event store (PROTEAN_ENV=production);
- ``outbox_off``: the same in Protean's default delivery (PROTEAN_ENV=outbox_off: no
  outbox rows, events relayed from the event store, continued in-process like commands);
- ``embedded``: the same on the embedded default (SQLite files), burst only.

Each system gets a burst of ``--orders`` (sagas/s, handler invocations/s) and
``--light`` orders one at a time (p50/p95 saga latency; protean-celery placed
with ``domain.process`` and with ``app.process``). A system whose sagas do not
all end is reported as invalid. Prints one table and the ratios of issue 9;
asserts nothing. Every process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.compare_processes import ProteanServerProcess, celery_processes  # noqa: E402
from benchmarks.compare_report import render  # noqa: E402
from protean_celery.errors import ServerError  # noqa: E402
from protean_celery.testing.servers import PostgresServer, RedisServer  # noqa: E402

SYSTEMS = ("inline", "server", "celery", "outbox_off", "embedded")
DRIVER = str(ROOT / "benchmarks" / "saga_driver.py")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    unknown = skip - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"--skip takes a comma list of {', '.join(SYSTEMS)}; unknown: {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {}
    cpu: dict[str, float] = {}
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer())
        postgres = stack.enter_context(PostgresServer())
        logs = Path(tempfile.mkdtemp(prefix="compare-"))
        print(f"redis {redis.url}, postgres port {postgres.port}, logs in {logs}", flush=True)
        for number, system in enumerate(SYSTEMS):
            if system in skip:
                continue
            print(f"== {system}", flush=True)
            started = time.monotonic()
            env = _environment(system, redis, postgres, logs, number)
            busy = _busy_seconds()
            try:
                results[system] = _run_system(system, env, args, logs)
            except (RuntimeError, ServerError, subprocess.TimeoutExpired) as exc:
                results[system] = {"error": str(exc)}
            ended = sum(p.get("completed", 0) + p.get("compensated", 0) for p in results[system].values()
                        if isinstance(p, dict))
            if ended:
                cpu[system] = (_busy_seconds() - busy) / ended * 1000
            print(f"   {time.monotonic() - started:.0f} s: {json.dumps(results[system])}", flush=True)
    print(render(results, args.concurrency, cpu))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (``/proc/stat``: everything but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, help="orders in the burst (default 200; --quick: 10)")
    parser.add_argument("--light", type=int, help="orders placed one at a time (default 20; --quick: 3)")
    parser.add_argument("--concurrency", "-c", type=int, default=2, help="worker processes per system (2)")
    parser.add_argument("--skip", default="", help=f"comma list of systems to skip: {', '.join(SYSTEMS)}")
    parser.add_argument("--quick", action="store_true", help="a short sanity run (10 orders, 3 light)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one phase's sagas (600)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.orders is None:
        args.orders = 10 if args.quick else 200
    if args.light is None:
        args.light = 3 if args.quick else 20
    return args


def _environment(system: str, redis: RedisServer, postgres: PostgresServer, logs: Path,
                 number: int) -> dict[str, str]:
    """The environment of one system: its profile, its own databases and Redis db number."""
    broker = f"redis://127.0.0.1:{redis.port}/{number + 1}"
    env = {"PROTEAN_NO_AUTO_LOGGING": "1", "PROTEAN_LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": broker,
           "REDIS_URL": broker, "PROTEAN_CELERY_STATE": str(logs / f"{system}-state")}
    if system == "embedded":
        return env
    env["DATABASE_URL"] = postgres.create_database(f"compare_{system}")
    env["PROTEAN_ENV"] = {"inline": "bench_inline", "server": "bench_server", "celery": "production",
                          "outbox_off": "outbox_off"}[system]
    if system == "server":
        from protean_celery.testing.message_db import install_message_db

        env["MESSAGE_DB_URL"] = postgres.create_database("compare_server_mdb")
        install_message_db(env["MESSAGE_DB_URL"])
    return env


def _run_system(system: str, env: dict[str, str], args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """Set up the tables, start the system's processes, drive the orders, stop everything."""
    kind = "celery" if system in ("embedded", "outbox_off") else system
    _drive(kind, env, ["--setup"], timeout=120)
    options = ["--orders", str(args.orders), "--timeout", str(args.timeout)]
    if system == "embedded":
        options += ["--light", "0", "--place-with", ""]
    elif kind == "celery":
        options += ["--light", str(args.light), "--place-with", "domain,app"]
    else:
        options += ["--light", str(args.light), "--place-with", "domain"]
    phases = 3 * args.timeout + 60
    with ExitStack() as stack:
        if system == "server":
            stack.enter_context(ProteanServerProcess(args.concurrency, env, logs / "protean-server.log"))
        elif kind == "celery":
            for process in celery_processes(args.concurrency, env, logs / system):
                stack.callback(process.stop)  # also when start() fails with the process half up
                process.start()
        return _drive(kind, env, options, timeout=phases)


def _drive(kind: str, env: dict[str, str], options: list[str], timeout: float) -> dict[str, Any]:
    """Run the saga driver in the system's environment; its last stdout line is JSON."""
    command = [sys.executable, DRIVER, "--system", kind, *options]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"saga driver failed ({result.returncode}): {result.stderr.strip()[-1500:]}")
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every process the benchmark started is stopped", file=sys.stderr)
        sys.exit(130)
