"""Run the orders example as a user would and read back what it left behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from protean_celery.deadletter import DeadLetter, DeadLetters
from protean_celery.envelope import decode, message_key

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    """One ``python -m workers.orders.run`` and its state."""

    output: str
    returncode: int
    state: Path

    def figure(self, label: str) -> int:
        match = re.search(rf"^{label}\s+(\d+)", self.output, re.M)
        assert match, f"{label!r} missing from:\n{self.output}"
        return int(match.group(1))


def run_orders(state: Path, orders: int, broker: str | None = None, env: dict[str, str] | None = None,
               timeout: float = 600, extra: list[str] | None = None) -> Run:
    command = [sys.executable, "-m", "workers.orders.run", "--orders", str(orders), "--state", str(state),
               *(extra or [])]
    if broker:
        command += ["--broker", broker]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True,
                            text=True, timeout=timeout)
    return Run(result.stdout + result.stderr, result.returncode, state)


def rows(engine: sa.Engine, query: str, **params: object) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(query), params))


def dead_letters(state: str | Path) -> list[DeadLetter]:
    """The orders app's dead letters (``relay.db`` under ``PROTEAN_CELERY_STATE``), newest first."""
    engine = sa.create_engine(f"sqlite:///{state}/relay.db")
    try:
        return DeadLetters(engine).list(limit=10_000)
    finally:
        engine.dispose()


def handled(state: str | Path, payload: dict[str, Any]) -> bool:
    """Whether a handler of the orders app recorded ``payload``'s message in its inbox (``orders.db``)."""
    engine = sa.create_engine(f"sqlite:///{state}/orders.db")
    try:
        key = message_key(decode(payload))
        return bool(rows(engine, "SELECT 1 FROM protean_celery_inbox WHERE message_key = :key", key=key))
    finally:
        engine.dispose()


# Real encoded PlaceOrder commands, built by the example app itself (in a child process,
# so this process never imports the example app with another test's environment).
_PAYLOADS = """
import json, sys
from protean.utils.eventing import Message
from protean_celery.envelope import encode
from workers.orders.app import app
from workers.orders.domain import PlaceOrder

with app.domain.domain_context():
    out = []
    for order_id in sys.argv[1:]:
        command = app.domain._enrich_command(
            PlaceOrder(order_id=order_id, customer="c", amount=10.0, sku="s", quantity=1), True
        )
        out.append(encode(Message.from_domain_object(command)))
print(json.dumps(out))
"""


def place_order_payloads(env: dict[str, str], order_ids: list[str]) -> dict[str, dict[str, object]]:
    """Task payloads of PlaceOrder commands, one per order id, encoded by ``workers.orders.app``."""
    result = subprocess.run([sys.executable, "-c", _PAYLOADS, *order_ids], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return dict(zip(order_ids, json.loads(result.stdout), strict=True))
