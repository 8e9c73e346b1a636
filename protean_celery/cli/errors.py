"""User errors on the command line: one line that names the fix, exit 1 (click's usage errors: 2).

A user error is one the user fixes in configuration or in the world, never in our
code: protean-celery's typed errors, Protean's ``ConfigurationError``, a broker that
cannot be reached, a database that cannot be reached or whose tables are missing.
``ProteanGroup`` turns them into ``click.ClickException`` for every sub-command of
``celery -A app protean``; anything else is a bug and keeps its traceback. A library
that logs such an error before raising it (Protean logs a failed query with its
traceback) is not echoed: the one line says it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

__all__ = ["ProteanGroup", "one_line", "user_error_message"]



def user_error_message(error: BaseException, app: Any = None, app_name: str = "<app>") -> str | None:
    """The one-line message for ``error`` when it is the user's to fix, else ``None``.

    Args:
        error: what a command raised.
        app: the ``ProteanCelery`` app (its broker URL names what cannot be reached).
        app_name: what ``-A`` named, for the commands the message suggests.
    """
    from protean.exceptions import ConfigurationError as ProteanConfigurationError

    from protean_celery.errors import ProteanCeleryError

    if isinstance(error, ProteanCeleryError | ProteanConfigurationError):
        return one_line(str(error)).replace("celery -A <app>", f"celery -A {app_name}")
    if _is_broker_error(error):
        return _broker_message(error, app)
    return _database_message(error, app_name)


class ProteanGroup(click.Group):
    """A click group whose sub-commands report user errors in one line (see ``user_error_message``)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the sub-command; a user error becomes a ``click.ClickException`` (exit 1)."""
        from protean_celery.redact import redact, secrets_of
        from protean_celery.startup import configured_uris, redacted_failure

        root = ctx.find_root()
        app = getattr(root.obj, "app", None)
        try:
            with _user_errors_not_logged():
                return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            config = getattr(getattr(app, "domain", None), "config", None) or {}
            broker = str(getattr(getattr(app, "conf", None), "broker_url", "") or "")
            name = root.params.get("app")
            message = user_error_message(error, app, name if isinstance(name, str) else "<app>")
            if message is None:  # not one we name a fix for: still one line if it is a connection failure
                command = f"protean {ctx.invoked_subcommand or ''}".strip()
                failure = redacted_failure(error, config, command, extra_uris=(broker,))
                if failure is None:
                    raise
                message = str(failure)
            raise click.ClickException(redact(message, secrets_of([*configured_uris(config), broker]))) from None


@contextmanager
def _user_errors_not_logged() -> Iterator[None]:
    """Keep logged user errors out of the root handlers (Python's own one when there are none)."""
    root = logging.getLogger()
    added = None if root.handlers else logging.StreamHandler()
    if added is not None:
        added.setLevel(logging.WARNING)
        root.addHandler(added)
    handlers = list(root.handlers)
    for handler in handlers:
        handler.addFilter(_not_a_user_error)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(_not_a_user_error)
        if added is not None:
            root.removeHandler(added)


def _not_a_user_error(record: logging.LogRecord) -> bool:
    # structlog renders the traceback into the message and drops exc_info: the record
    # is logged inside the ``except`` block, so the exception is still the active one.
    error = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
    return error is None or user_error_message(error) is None


def one_line(text: str) -> str:
    """The first line of ``text``, with any password in a URL masked."""
    from protean_celery.redact import redact_url

    first = text.strip().splitlines()[0] if text.strip() else text
    return redact_url(first)


def _is_broker_error(error: BaseException) -> bool:
    from kombu.exceptions import OperationalError

    if isinstance(error, OperationalError):
        return True
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # pragma: no cover - redis is a dependency
        return False
    return isinstance(error, RedisConnectionError)


def _broker_message(error: BaseException, app: Any) -> str:
    from protean_celery.redact import redact_url

    url = getattr(getattr(app, "conf", None), "broker_url", None)
    if not url:
        from protean_celery.app import require_broker

        try:
            require_broker(app)
        except Exception as missing:  # the ConfigurationError that says where to set one
            return one_line(str(missing))
    return (
        f"Cannot reach the broker at {redact_url(str(url))} ({one_line(str(error))}): start it, or point "
        "CELERY_BROKER_URL (or [custom.celery] broker_url) at a running broker."
    )


def _database_message(error: BaseException, app_name: str) -> str | None:
    from sqlalchemy.exc import DBAPIError

    if not isinstance(error, DBAPIError):
        return None
    reason = one_line(str(error.orig))
    lowered = reason.lower()
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return f"A table is missing ({reason}): run `celery -A {app_name} protean db setup`."
    if error.connection_invalidated or "connect" in lowered or "unable to open database" in lowered:
        return (
            f"Cannot reach the database ({reason}): start it, or fix database_uri in [databases], "
            "[event_store] or [custom.celery] state_database_uri."
        )
    return None
