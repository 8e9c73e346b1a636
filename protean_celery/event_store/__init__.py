"""SQL event store for Protean (SQLite and PostgreSQL), registered as provider ``sqlalchemy``."""


def register() -> None:
    """Register the ``sqlalchemy`` event store provider with Protean (idempotent)."""
    from protean.adapters.event_store import EVENT_STORE_PROVIDERS

    EVENT_STORE_PROVIDERS.setdefault("sqlalchemy", "protean_celery.event_store.store.SQLEventStore")
