"""``FakeClock``: the domain's time moves only when a test says so."""

from datetime import UTC, datetime, timedelta

import pytest

from protean_celery.testing import FakeClock


def test_it_stands_still_until_advanced():
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
    assert clock.advance(timedelta(minutes=15)) == datetime(2026, 1, 1, 0, 15, tzinfo=UTC)


def test_it_refuses_to_go_back_or_a_naive_start():
    with pytest.raises(ValueError, match="forward only"):
        FakeClock().advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2026, 1, 1))


def test_installed_on_a_domain_it_is_protean_s_clock_until_uninstalled():
    from protean.utils.globals import current_domain

    from tests.support.shop import build_domain

    domain = build_domain()
    domain.init(traverse=False)
    original = domain.clock
    clock = FakeClock.install(domain, datetime(2030, 1, 1, tzinfo=UTC))
    with domain.domain_context():
        assert current_domain.clock.now() == datetime(2030, 1, 1, tzinfo=UTC)
    clock.uninstall()
    assert domain.clock is original
