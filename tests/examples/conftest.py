import pytest


@pytest.fixture(scope="session")
def protean_celery_domain():
    """The orders example domain, for the protean_celery plugin's app fixtures."""
    from workers.orders.domain import domain

    return domain


# Celery's own fixtures (celery_app, celery_worker from pytest-celery / celery.contrib.pytest)
# serving the ProteanCelery test app: see docs/guides/testing.md.
from protean_celery.testing.celery_fixtures import celery_app, celery_worker  # noqa: E402, F401
