import pytest

from protean_celery.testing import FakeClock


@pytest.fixture
def shop(sqlite_shop):
    """The shop app on SQLite files, with a fake clock on its domain, inside a domain context."""
    app = sqlite_shop()
    clock = FakeClock.install(app.domain)
    with app.domain.domain_context():
        yield app
    clock.uninstall()
