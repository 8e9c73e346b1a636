"""Loading outbox rows reads nothing from the event store (their streams never hold an event)."""

from protean_celery.protean_api import outbox_query
from tests.support.shop import Order


def test_outbox_rows_load_without_a_read_of_the_event_store(sqlite_app, monkeypatch):
    app = sqlite_app
    with app.domain.domain_context():
        order = Order(order_id="o1")
        order.place()  # its event gets an outbox row
        app.domain.repository_for(Order).add(order)
    store = app.domain.event_store.store
    streams: list[str] = []
    read_last = store._read_last_message
    monkeypatch.setattr(store, "_read_last_message", lambda stream: streams.append(stream) or read_last(stream))
    with app.domain.domain_context():
        rows = outbox_query(app.domain, "default").all().items
        assert rows  # the order's event has its outbox row
        assert streams == []
        assert app.domain.repository_for(Order).get("o1").status == "placed"
    assert streams == ["shop::order-o1"]  # an aggregate's own stream is still read
