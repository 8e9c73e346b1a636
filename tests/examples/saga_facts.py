"""What one order's saga left behind, read with plain SQL: the same facts for a
drained in-process run and for a real-worker run."""

from __future__ import annotations

import json

import sqlalchemy as sa


def saga_facts(
    orders_db: sa.Engine, events_db: sa.Engine, order_id: str, events_table: str = "protean_events"
) -> dict[str, object]:
    with orders_db.connect() as conn:
        order = conn.execute(sa.text('SELECT status FROM "order" WHERE order_id = :o'), {"o": order_id}).scalar()
        summary = conn.execute(sa.text("SELECT status FROM order_summary WHERE order_id = :o"),
                               {"o": order_id}).scalar()
        calls = conn.execute(sa.text("SELECT attempts FROM courier_call WHERE order_id = :o"),
                             {"o": order_id}).scalar()
        inventory = conn.execute(sa.text("SELECT status FROM inventory WHERE order_id = :o"),
                                 {"o": order_id}).scalar()
    with events_db.connect() as conn:
        transitions = [
            json.loads(data) if isinstance(data, str) else data
            for (data,) in conn.execute(
                sa.text(f"SELECT data FROM {events_table} WHERE stream_name = :s ORDER BY position"),
                {"s": f"orders::order_fulfillment-{order_id}"},
            )
        ]
    return {
        "order": order,
        "summary": summary,
        "courier_calls": calls,
        "inventory": inventory,
        "saga_steps": [t["handler_name"] for t in transitions],
        "saga_status": transitions[-1]["state"]["status"] if transitions else None,
        "saga_complete": bool(transitions and transitions[-1]["is_complete"]),
    }


COMPLETED = {
    "order": "COMPLETED",
    "summary": "COMPLETED",
    "courier_calls": 1,
    "inventory": "RESERVED",
    "saga_status": "completed",
    "saga_complete": True,
}

COMPENSATED = {
    "order": "CANCELLED",
    "summary": "CANCELLED",
    "courier_calls": None,
    "inventory": "RELEASED",
    "saga_status": "compensated",
    "saga_complete": True,
}
