"""Drive the feeds test domain from other processes and read back what it left (``tests/integration/feeds``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from tests.integration.orders import ROOT, rows

APP = "tests.integration.feeds_app"

_OPEN = """
import sys
mode, prefix, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode != "no-app":
    from tests.integration.feeds_app import app   # the API process builds the app: its commits leave at once
    from protean_celery import storage
    storage.setup(app.domain, app.runtime.state)
else:
    import protean_celery
    from protean_celery import prepare_databases
    from tests.integration.feeds import domain
    prepare_databases(domain.config)
    domain.init(traverse=False)
from tests.integration.feeds import OpenTicket, domain
with domain.domain_context():
    for number in range(first, first + count):
        domain.process(OpenTicket(ticket_id=f"{prefix}{number}"), asynchronous=mode == "async")
"""


def feeds_env(state: Path, broker_url: str, partners_url: str, domain: str = "feeds") -> dict[str, str]:
    """The environment of every process of the feeds app ``domain``, its state under ``state``."""
    return {**os.environ, "CELERY_BROKER_URL": broker_url, "FEEDS_PARTNERS_URL": partners_url,
            "FEEDS_DOMAIN": domain, "PROTEAN_CELERY_STATE": str(state), "PROTEAN_NO_AUTO_LOGGING": "1"}


def open_tickets(env: dict[str, str], mode: str, first: int = 0, count: int = 0, prefix: str = "t") -> None:
    """Open tickets ``<prefix><first>`` … in another process.

    ``mode``: ``setup`` (only create the tables), ``sync`` (handled in an API process
    that builds the app: its fast path), ``no-app`` (handled by Protean alone: only
    beat relays its rows), ``async`` (commands for the worker).
    """
    subprocess.run([sys.executable, "-c", _OPEN, mode, prefix, str(first), str(count)], cwd=ROOT, env=env,
                   check=True, timeout=120)


def outbox(state: Path) -> list[Any]:
    """Every row of the outbox table in ``feeds.db``, whichever domain wrote it."""
    engine = sa.create_engine(f"sqlite:///{state}/feeds.db")
    try:
        return rows(engine, "SELECT type, target_broker, status, message_id, stream_name FROM outbox")
    finally:
        engine.dispose()


def handled(state: Path, domain: str = "feeds") -> int:
    """How many events ``Desk`` of ``domain`` handled (one ``Handled`` row per event, written by the handler)."""
    engine = sa.create_engine(f"sqlite:///{state}/feeds.db")
    try:
        return int(rows(engine, "SELECT count(*) FROM handled WHERE message_id LIKE :prefix",
                        prefix=f"{domain}::%")[0][0])
    finally:
        engine.dispose()


def deliveries(state: Path, task: str) -> Counter[str]:
    """How many copies of each message reached the handler task ``task`` (see ``feeds_app``).

    A message a continuing task handled in-process (``continuation_messages``) is not a task: it is not counted.
    """
    path = state / "deliveries"
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(line.split(" ", 1)[1] for line in lines if line.startswith(f"{task} "))


def external_messages(url: str, stream: str) -> list[dict[str, Any]]:
    """Every message in the Redis stream ``stream`` (Protean's redis broker: ``{"data": <json>}``)."""
    client = redis.Redis.from_url(url)
    return [json.loads(fields[b"data"]) for _, fields in client.xrange(stream)]
