"""Deferral: a message before its turn goes back with a short countdown, and is dead-lettered once it waited enough."""

from types import SimpleNamespace

import pytest
from celery.exceptions import Reject

from protean_celery.errors import OrderingGap, OutOfTurn
from protean_celery.tasks.deferral import DEFERRED, WAITS_HEADER, defer, waits


class _Task:
    name = "protean.shop.Fulfilment"

    def __init__(self, **request):
        self.request = SimpleNamespace(headers=None, **request)
        self.sent: list[dict] = []

    def signature_from_request(self, request, **options):
        return SimpleNamespace(apply_async=lambda: self.sent.append(options))


def _gap():
    return OutOfTurn("OrderShipped x is at position 1 of shop::order-o1, but Fulfilment has not handled position 0 "
                     "yet", lane="p|shop::order-o1", position=1, missing=0)


def test_a_deferred_message_comes_back_soon_counting_its_waits_not_its_retries():
    task, parked = _Task(), []
    assert defer(task, _gap(), 60, lambda error, attempts: parked.append(error)) == DEFERRED
    [sent] = task.sent
    assert sent["headers"][WAITS_HEADER] == 1 and 0 < sent["countdown"] < 0.1 and "retries" not in sent
    assert parked == []


def test_waits_are_read_from_the_request_or_its_headers():
    assert waits(SimpleNamespace(**{WAITS_HEADER: 3})) == 3
    assert waits(SimpleNamespace(headers={WAITS_HEADER: "4"})) == 4
    assert waits(SimpleNamespace(headers=None)) == 0


def test_once_the_budget_is_spent_it_is_dead_lettered_naming_the_missing_position():
    task, parked = _Task(**{WAITS_HEADER: 60}), []
    with pytest.raises(Reject):
        defer(task, _gap(), 60, lambda error, attempts: parked.append((error, attempts)))
    [(error, attempts)] = parked
    assert isinstance(error, OrderingGap) and attempts == 61 and task.sent == []
    assert "has not handled position 0" in str(error) and "waited 60 times" in str(error)
    assert error.fields["missing"] == 0
