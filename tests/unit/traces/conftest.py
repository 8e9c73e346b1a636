import pytest

from tests.support.traces import record


@pytest.fixture
def recorder(shop_app, monkeypatch):
    return record(shop_app, monkeypatch)
