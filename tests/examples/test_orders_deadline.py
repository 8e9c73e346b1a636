"""The orders saga's payment deadline, tested in milliseconds with the fake clock (drain, no worker)."""

from datetime import timedelta

import sqlalchemy as sa

from protean_celery.deadlines import DeadlineStore
from protean_celery.testing import drain, process_and_wait
from tests.examples.saga_facts import COMPENSATED, saga_facts

TIMED_OUT_STEPS = ["on_order_placed", "on_inventory_reserved", "on_payment_timed_out"]


def _place(order_id, unpaid=False):
    from workers.orders.domain import PlaceOrder, domain

    with domain.domain_context():
        return PlaceOrder(order_id=order_id, customer="c", amount=12.5, sku="sku-1", quantity=2, unpaid=unpaid)


def _domain_db(app):
    state = app.runtime.state.engine.url.database.rsplit("/", 1)[0]
    return sa.create_engine(f"sqlite:///{state}/domain.db")


def _facts(app, order_id):
    engine = _domain_db(app)
    return saga_facts(engine, engine, order_id)


def _commands(app, order_id, aggregate="payment"):
    with app.domain.domain_context():
        stream = app.domain.event_store.store.read(f"orders::{aggregate}:command-{order_id}")
    return [m.metadata.headers.type.split(".")[1] for m in stream]


def _payment_status(app, order_id):
    with _domain_db(app).connect() as conn:
        return conn.execute(sa.text("SELECT status FROM payment WHERE order_id = :o"), {"o": order_id}).scalar()


def test_an_unpaid_order_is_cancelled_when_its_15_minute_deadline_fires(protean_celery_app, protean_celery_clock):
    app, clock = protean_celery_app, protean_celery_clock
    started = clock.now()
    process_and_wait(app, _place("o-unpaid", unpaid=True))
    [deadline] = DeadlineStore(app.domain).list()
    assert (deadline.key, deadline.message_type) == ("payment-o-unpaid", "Orders.TimeOutPayment.v1")
    assert deadline.due_at == started + timedelta(minutes=15)

    clock.advance(timedelta(minutes=14, seconds=59))
    assert drain(app).satisfied
    assert _facts(app, "o-unpaid")["order"] == "PLACED"
    assert DeadlineStore(app.domain).count() == 1

    clock.advance(timedelta(seconds=1))
    assert drain(app).satisfied
    assert _facts(app, "o-unpaid") == {**COMPENSATED, "saga_steps": TIMED_OUT_STEPS}
    assert _payment_status(app, "o-unpaid") == "TIMED_OUT"
    assert _commands(app, "o-unpaid") == ["RequestPayment", "TimeOutPayment"]
    assert DeadlineStore(app.domain).list() == []


def test_a_payment_cancels_the_deadline_so_it_never_fires(protean_celery_app, protean_celery_clock):
    app, clock = protean_celery_app, protean_celery_clock
    process_and_wait(app, _place("o-paid"))
    assert DeadlineStore(app.domain).list() == []
    clock.advance(timedelta(hours=1))
    assert drain(app).satisfied
    assert _facts(app, "o-paid")["order"] == "COMPLETED"
    assert _payment_status(app, "o-paid") == "CONFIRMED"
    assert _commands(app, "o-paid") == ["RequestPayment"]


def test_a_deadline_cancelled_from_the_cli_never_fires(protean_celery_app, protean_celery_clock):
    app, clock = protean_celery_app, protean_celery_clock
    process_and_wait(app, _place("o-kept", unpaid=True))
    DeadlineStore(app.domain).cancel("payment-o-kept")
    clock.advance(timedelta(hours=1))
    assert drain(app).satisfied
    assert _facts(app, "o-kept")["saga_status"] == "paying"
    assert _commands(app, "o-kept") == ["RequestPayment"]
