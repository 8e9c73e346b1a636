"""The receivers an app connects: fork safety in each child, closing at child shutdown, no start without a broker."""

import gc

import pytest
from celery import signals

from protean_celery import ProteanCelery
from protean_celery.outbox.cursor import MemoryCursorStore
from tests.support.shop import build_domain


def _receiver(app, signal):
    """The app's own receiver of ``signal`` (sending the signal would reach every other live app too)."""
    live = signal._live_receivers(None)
    [receiver] = [r for r in app._protean_receivers if r in live]
    return receiver


def test_a_prefork_child_makes_inherited_connections_safe_and_closes_at_shutdown(shop_app, monkeypatch):
    calls = []
    monkeypatch.setattr(shop_app.runtime, "after_fork", lambda: calls.append("after_fork"))
    monkeypatch.setattr(shop_app.runtime, "close", lambda: calls.append("close"))
    _receiver(shop_app, signals.worker_process_init)()
    _receiver(shop_app, signals.worker_process_shutdown)()
    assert calls == ["after_fork", "close"]


def test_a_failing_close_at_shutdown_does_not_stop_the_shutdown(shop_app, monkeypatch):
    def fail():
        raise RuntimeError("database gone")

    monkeypatch.setattr(shop_app.runtime, "close", fail)
    _receiver(shop_app, signals.worker_process_shutdown)()  # logged, not raised


def test_a_worker_or_beat_without_a_broker_stops_before_it_starts():
    gc.collect()  # receivers are weak: only live apps receive the signal (those with a broker pass)
    domain = build_domain()
    domain.init(traverse=False)
    app = ProteanCelery(domain, cursors=MemoryCursorStore(), nudge=False)
    app.conf.broker_url = None
    for signal in (signals.celeryd_init, signals.beat_init):
        with pytest.raises(SystemExit, match="protean-celery: No broker URL"):
            signal.send(sender=None)
