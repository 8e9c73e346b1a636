"""The SQL event store registers with Protean as provider ``sqlalchemy``."""

from protean.adapters.event_store import EVENT_STORE_PROVIDERS

from protean_celery.event_store import register


def test_the_provider_is_registered_by_name_and_registering_again_changes_nothing():
    register()
    assert EVENT_STORE_PROVIDERS["sqlalchemy"] == "protean_celery.event_store.store.SQLEventStore"
    register()
    assert EVENT_STORE_PROVIDERS["sqlalchemy"] == "protean_celery.event_store.store.SQLEventStore"
