"""Connection errors at start-up, re-raised without a password (I/O).

Protean's ``domain.init()`` checks every database and fails with ``Could not
connect to database at <database_uri>``, password included; drivers quote the
URI in some of their errors too. :func:`init_domain` and
:func:`redacted_errors` turn such failures into a ``ConfigurationError`` whose
message names the database with its password masked
(:mod:`protean_celery.redact`), chained to nothing, so no traceback quotes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from protean.exceptions import ConfigurationError as ProteanConfigurationError

from protean_celery.errors import ConfigurationError
from protean_celery.redact import redact, secrets_of

__all__ = ["init_domain", "redacted_errors", "redacted_failure", "configured_uris", "database_uris"]


def database_uris(config: Any) -> list[str]:
    """Every SQL database URI a domain config names (databases, event store, relay state)."""
    uris = [
        str(conn["database_uri"])
        for conn in (config.get("databases") or {}).values()
        if conn.get("provider") in ("sqlite", "postgresql") and conn.get("database_uri")
    ]
    store = config.get("event_store") or {}
    if store.get("provider") in ("sqlalchemy", "message_db") and store.get("database_uri"):
        uris.append(str(store["database_uri"]))
    state = ((config.get("custom") or {}).get("celery") or {}).get("state_database_uri")
    if state:
        uris.append(str(state))
    return list(dict.fromkeys(uris))


def configured_uris(config: Any) -> list[str]:
    """Every broker and database URI in a domain config (what may carry a password)."""
    uris = list(database_uris(config))
    celery = (config.get("custom") or {}).get("celery") or {}
    for table in (*(config.get("brokers") or {}).values(), config.get("caches", {}).get("default") or {}, celery):
        uris.extend(str(table[key]) for key in ("broker_url", "URI", "uri", "database_uri") if table.get(key))
    return uris


@contextmanager
def redacted_errors(config: Any, what: str, extra_uris: tuple[str, ...] = ()) -> Iterator[None]:
    """Re-raise a connection failure inside the block as a redacted ``ConfigurationError``.

    Args:
        config: the domain config (its URIs' passwords are masked).
        what: the start of the message, naming what failed (``"domain.init()"``).
        extra_uris: further URIs whose passwords must not appear (the broker's).

    Raises:
        ConfigurationError: Protean's own ``ConfigurationError``, a database
            driver's error, or any error quoting a configured password.
    """
    try:
        yield
    except ConfigurationError:
        raise
    except Exception as exc:
        failure = redacted_failure(exc, config, what, extra_uris)
        if failure is None:
            raise
        raise failure from None


def redacted_failure(
    exc: Exception, config: Any, what: str, extra_uris: tuple[str, ...] = ()
) -> ConfigurationError | None:
    """``exc`` as a redacted ``ConfigurationError``, or ``None``.

    Only a connection failure, or an error that quotes a configured password, becomes one.
    """
    secrets = secrets_of([*configured_uris(config), *extra_uris])
    text = _describe(exc)
    if not (_is_connection_error(exc) or redact(text, secrets) != text):
        return None
    return ConfigurationError(
        f"{what} failed: {redact(text, secrets)}. Check the URI, the password and that the server is running."
    )


def init_domain(domain: Any, **options: Any) -> None:
    """``domain.init(**options)``, a database that cannot be reached reported without its password.

    Use it instead of ``domain.init()`` in the module Celery loads with ``-A``.

    Raises:
        ConfigurationError: a database cannot be reached (or any init error quoting a password).
    """
    with redacted_errors(domain.config, "domain.init()"):
        domain.init(**options)


def _is_connection_error(exc: Exception) -> bool:
    from protean_celery.tasks.retry import Failure, classify

    if isinstance(exc, ProteanConfigurationError):
        return "connect" in str(exc).lower()
    return classify(exc) is Failure.TRANSIENT  # connection refused or lost, authentication, timeouts


def _describe(exc: Exception) -> str:
    """The error's own first line (a driver's message, not SQLAlchemy's SQL and help link)."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    first = text.splitlines()[0].rstrip(".") if text else ""
    return f"{type(original or exc).__name__}: {first}".strip()
