"""The inbox on SQLite: a handler runs once per message; its effects and its marker commit together."""

from datetime import UTC, datetime, timedelta

import pytest


@pytest.fixture
def inbox(sqlite_shop):
    app = sqlite_shop()
    with app.domain.domain_context():
        yield app.runtime.inbox


def test_a_message_is_handled_once_per_handler(inbox):
    ran = []
    assert inbox.run_once("m1", "h.A", lambda: ran.append("A"))
    assert not inbox.run_once("m1", "h.A", lambda: ran.append("A again"))
    assert inbox.run_once("m1", "h.B", lambda: ran.append("B"))
    assert ran == ["A", "B"]
    assert inbox.handled([("m1", "h.A"), ("m1", "h.B"), ("m2", "h.A")]) == {("m1", "h.A"), ("m1", "h.B")}


def test_a_handler_that_fails_leaves_no_marker(inbox):
    def fail():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        inbox.run_once("m1", "h.A", fail)
    assert inbox.handled([("m1", "h.A")]) == set()
    assert inbox.run_once("m1", "h.A", lambda: None)  # the retry runs


def test_marking_is_idempotent_and_counts_as_handled(inbox):
    inbox.mark("m1", "h.A")
    inbox.mark("m1", "h.A")
    assert not inbox.run_once("m1", "h.A", lambda: pytest.fail("ran a marked message"))


def test_pruning_forgets_markers_older_than_the_cutoff(inbox):
    inbox.mark("m1", "h.A")
    assert inbox.prune(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert inbox.prune(datetime.now(UTC) + timedelta(hours=1)) == 1
    assert inbox.handled([("m1", "h.A")]) == set()


def test_without_a_sql_provider_there_are_no_markers(shop_app):
    inbox = shop_app.runtime.inbox
    ran = []
    assert not inbox.enabled
    assert inbox.run_once("m1", "h.A", lambda: ran.append(1)) and inbox.run_once("m1", "h.A", lambda: ran.append(2))
    assert ran == [1, 2] and inbox.handled([("m1", "h.A")]) == set()
