"""Outbox rows for ``[outbox] external_brokers``: to their Protean broker, never to a handler task."""

from datetime import UTC, timedelta
from uuid import uuid4

import pytest

from protean_celery import ProteanCelery, testing
from protean_celery.errors import ConfigurationError
from protean_celery.outbox.cursor import MemoryCursorStore
from protean_celery.outbox.external import external_brokers
from protean_celery.testing.drain import queue_depths
from tests.support.tenants import build_tenant, open_ticket

INLINE = {"provider": "inline"}


class Clock:
    """A clock the test moves (``domain.clock``)."""

    def __init__(self, now):
        self.current = now

    def now(self):
        return self.current


@pytest.fixture
def north(tmp_path):
    """The ``north`` domain on SQLite files with an inline external broker, ``analytics``; relayed by hand."""
    domain = build_tenant("north", external_brokers={"analytics": INLINE})
    bed = testing.Testbed(domain, tmp_path, settings={"nudge": False})
    yield bed.setup()
    bed.teardown()


def _aware(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite returns naive UTC


def _external(app, stream="north::ticket"):
    """Every message in the external stream (a new consumer group reads it from the start)."""
    with app.domain.domain_context():
        return app.domain.brokers["analytics"].read(stream, f"test-{uuid4().hex}", 100)


def _rows(app, target=None):
    with app.domain.domain_context():
        rows = app.domain._get_outbox_repo("default")._dao.query.all().items
    return [row for row in rows if target in (None, row.target_broker)]


def test_a_published_event_reaches_its_external_broker_once_and_no_handler_twice(north):
    open_ticket(north.domain, "t1")
    report = north.relay()
    assert (report.events, report.external, report.tasks, report.failed) == (3, 1, 2, 0)
    [(_, message)] = _external(north)
    assert message["data"] == {"ticket_id": "t1", "subject": "help"}
    assert message["metadata"]["headers"]["type"] == "North.TicketOpened.v1"
    assert message["metadata"]["envelope"] == {"specversion": "1.0"}  # Protean's external form: no checksum
    assert queue_depths(north)["protean.north.Desk"] == 2  # TicketOpened and TicketNoted, once each
    assert sorted((row.type, row.target_broker, row.status) for row in _rows(north)) == [
        ("North.TicketNoted.v1", "default", "published"),
        ("North.TicketOpened.v1", "analytics", "published"),
        ("North.TicketOpened.v1", "default", "published"),
    ]
    assert north.relay().events == 0
    assert len(_external(north)) == 1


def test_the_fast_path_sends_a_commits_external_rows_to_their_broker_with_no_tick(tmp_path):
    bed = testing.Testbed(build_tenant("north", external_brokers={"analytics": INLINE}), tmp_path)
    app = bed.setup()  # SQLite files, nudge on: a commit's rows leave right after it
    try:
        [command] = [r.cls for r in app.domain.registry.commands.values()]
        app.process(command(ticket_id="t1", subject="help"), asynchronous=False)
        [(_, message)] = _external(app)
        assert message["metadata"]["headers"]["stream"] == "north::ticket-t1"
        assert {row.status for row in _rows(app)} == {"published"}
        assert queue_depths(app)["protean.north.Desk"] == 2
        assert app.relay().events == 0  # nothing was left for a tick
    finally:
        bed.teardown()


def test_an_external_broker_that_is_down_fails_the_row_with_backoff_then_it_is_retried(north, monkeypatch):
    domain = north.domain
    broker = domain.brokers["analytics"]
    clock = Clock(domain.clock.now())
    domain.clock = clock
    domain.config["outbox"]["retry"]["base_delay_seconds"] = 60

    def down(stream, message):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")

    monkeypatch.setattr(broker, "_publish", down)
    open_ticket(domain, "t1")
    open_ticket(domain, "t2")
    report = north.relay()
    assert (report.events, report.failed) == (4, 2)  # the internal rows still went out
    failed = _rows(north, "analytics")
    assert [(row.status, row.retry_count) for row in failed] == [("failed", 1), ("failed", 1)]
    assert all(_aware(row.next_retry_at) >= clock.current + timedelta(seconds=60) for row in failed)
    assert all("Connection refused" in row.last_error["message"] for row in failed)

    monkeypatch.undo()
    assert north.relay().events == 0  # backing off
    clock.current = max(_aware(row.next_retry_at) for row in failed)  # the backoff has passed
    assert north.relay().external == 2
    assert sorted(message["data"]["ticket_id"] for _, message in _external(north)) == ["t1", "t2"]
    assert {row.status for row in _rows(north)} == {"published"}


def test_the_last_failed_attempt_abandons_the_row_for_protean_outbox_to_requeue(north, monkeypatch):
    from protean_celery.outbox.admin import list_rows, requeue_all

    domain = north.domain
    domain.config["outbox"]["retry"].update(base_delay_seconds=0, max_attempts=2)
    monkeypatch.setattr(domain.brokers["analytics"], "_publish", lambda stream, message: 1 / 0)
    open_ticket(domain, "t1")
    north.relay()
    north.relay()
    [row] = list_rows(domain, "abandoned")
    assert "division by zero" in row.error
    monkeypatch.undo()
    assert requeue_all(domain, "abandoned") == [row.id]
    assert north.relay().external == 1


def test_external_broker_names_are_checked_when_the_app_is_built():
    unknown = build_tenant("north")
    unknown.config["outbox"]["external_brokers"] = ["analytics"]
    with pytest.raises(ConfigurationError, match=r"not a broker in \[brokers\] \(configured: default\)\. "
                                                 r"Add a \[brokers\.analytics\] table"):
        external_brokers(unknown)
    unknown.init(traverse=False)
    with pytest.raises(ConfigurationError, match="analytics"):
        ProteanCelery(unknown, config={"broker_url": "memory://"}, cursors=MemoryCursorStore())


@pytest.mark.parametrize(("value", "message"), [
    ("analytics", "must be a list of broker names"),
    (["default"], "also the internal broker"),
])
def test_external_brokers_that_cannot_work_are_refused(value, message):
    domain = build_tenant("north", external_brokers={"analytics": INLINE})
    domain.config["outbox"]["external_brokers"] = value
    with pytest.raises(ConfigurationError, match=message):
        external_brokers(domain)


def test_external_broker_names_in_order_without_repeats():
    domain = build_tenant("north", external_brokers={"analytics": INLINE, "audit": INLINE})
    domain.config["outbox"]["external_brokers"].append("analytics")
    assert external_brokers(domain) == ("analytics", "audit")


def test_each_external_outcome_is_traced_with_protean_external_names(north, monkeypatch):
    from tests.support.traces import record

    recorder = record(north, monkeypatch)
    monkeypatch.setattr(north.domain.brokers["analytics"], "_publish", lambda stream, message: 1 / 0)
    open_ticket(north.domain, "t1")
    north.relay()
    assert recorder.names().count("outbox.external_failed") == 1
    monkeypatch.setattr(north.domain.brokers["analytics"], "_publish", lambda stream, message: "1-0")
    north.domain.clock = Clock(_aware(_rows(north, "analytics")[0].next_retry_at))
    north.relay()
    external = recorder.first("outbox.external_published")
    assert (external["message_id"], external["stream"]) == ("north::ticket-t1-0.1", "north::ticket")
    assert recorder.names().count("outbox.published") == 2  # the internal rows keep the internal names
