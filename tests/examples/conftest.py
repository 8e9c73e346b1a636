import pytest


@pytest.fixture(scope="session")
def protean_celery_domain():
    """The orders example domain, for the protean_celery plugin's app fixtures."""
    from workers.orders.domain import domain

    return domain
