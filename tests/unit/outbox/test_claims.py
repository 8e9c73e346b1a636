"""Claims: a relay claims and marks only its own domain's rows for one broker, so domains can share a database."""

import pytest

from protean_celery import testing
from protean_celery.outbox.admin import counts, list_rows, requeue
from protean_celery.testing.drain import queue_depths
from tests.support.tenants import build_tenant, open_ticket


@pytest.fixture
def two_domains(tmp_path):
    """``north`` and ``south``: two apps whose domains share one SQLite database (no nudge: relayed by hand)."""
    beds = [testing.Testbed(build_tenant(name), tmp_path, settings={"nudge": False}) for name in ("north", "south")]
    apps = [bed.setup() for bed in beds]
    yield apps
    for bed in beds:
        bed.teardown()


def _statuses(app):
    """Every row of the shared outbox table: (stream, status), whichever domain wrote it."""
    with app.domain.domain_context():
        rows = app.domain._get_outbox_repo("default")._dao.query.all().items
    return sorted((row.stream_name, row.status) for row in rows)


def test_each_relay_publishes_and_marks_only_its_own_domains_rows(two_domains):
    north, south = two_domains
    open_ticket(north.domain, "n1")
    open_ticket(south.domain, "s1")
    open_ticket(south.domain, "s2")
    assert len(_statuses(north)) == 6  # one table: both domains' rows

    assert north.relay().events == 2
    assert _statuses(north) == [
        ("north::ticket-n1", "published"), ("north::ticket-n1", "published"),
        ("south::ticket-s1", "pending"), ("south::ticket-s1", "pending"),
        ("south::ticket-s2", "pending"), ("south::ticket-s2", "pending"),
    ]
    assert queue_depths(north)["protean.north.Desk"] == 2
    assert queue_depths(south)["protean.south.Desk"] == 0
    assert north.runtime.relay.pending() == 0  # a drain of north does not wait on south's rows

    assert counts(south.domain)["default"]["pending"] == 4
    assert south.relay().events == 4
    assert {status for _, status in _statuses(south)} == {"published"}
    assert queue_depths(south)["protean.south.Desk"] == 4


def test_protean_outbox_sees_only_its_own_domains_rows(two_domains):
    north, south = two_domains
    open_ticket(north.domain, "n1")
    open_ticket(south.domain, "s1")
    assert counts(north.domain)["default"]["pending"] == 2
    assert {row.stream for row in list_rows(south.domain)} == {"south::ticket-s1"}
    [row, *_] = list_rows(south.domain)
    with pytest.raises(KeyError, match="No outbox row"):
        requeue(north.domain, [row.id])  # another domain's row is not north's to requeue


def test_a_relay_claims_only_the_rows_for_the_broker_it_is_asked_for(two_domains):
    north, _ = two_domains
    open_ticket(north.domain, "n1")
    relay = north.runtime.relay
    with north.domain.domain_context():
        repo = north.domain._get_outbox_repo("default")
        assert relay._claim(repo, "analytics") == []
        claimed = relay._claim(repo, "default")
    assert sorted(row.type for row in claimed) == ["North.TicketNoted.v1", "North.TicketOpened.v1"]
    assert {row.locked_by for row in claimed} == {relay.worker_id}


def test_a_tick_leaves_rows_inside_the_grace_period_to_the_fast_path(two_domains):
    north, _ = two_domains
    open_ticket(north.domain, "n1")
    relay = north.runtime.relay
    assert relay.run(commands=False, grace=True).events == 0  # younger than relay_grace_seconds
    assert relay.run(commands=False).events == 2
