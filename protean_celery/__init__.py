"""protean-celery: run a Protean domain's asynchronous side on Celery and Kombu.

Importing this package registers the SQL event store with Protean as provider
``sqlalchemy`` (Protean has no plugin registry for event stores).
"""

from __future__ import annotations

from protean_celery.event_store import register as _register_event_store

_register_event_store()

from protean_celery.app import ProteanCelery  # noqa: E402
from protean_celery.errors import (  # noqa: E402
    ConfigurationError,
    DecodeError,
    EventStoreError,
    EventStoreNotSetUp,
    ForeignMessageError,
    MessageError,
    PayloadTooLarge,
    ProteanCeleryError,
    RelayError,
    ServerBinaryNotFound,
    ServerError,
    TopologyError,
    UnknownHandlerError,
)
from protean_celery.startup import init_domain  # noqa: E402
from protean_celery.storage import prepare_databases  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ProteanCelery",
    "prepare_databases",
    "init_domain",
    "ProteanCeleryError",
    "ConfigurationError",
    "TopologyError",
    "MessageError",
    "DecodeError",
    "PayloadTooLarge",
    "ForeignMessageError",
    "UnknownHandlerError",
    "RelayError",
    "EventStoreError",
    "EventStoreNotSetUp",
    "ServerError",
    "ServerBinaryNotFound",
    "__version__",
]
