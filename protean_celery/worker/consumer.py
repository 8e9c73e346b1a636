"""Messages the worker's consumer turns away before any task runs → dead letters (I/O).

Celery rejects some messages in the worker's main process, before a task body
could park them, and only logs them:

===============================  ========================  ==========================
the message                      Celery's hook             parked here with
===============================  ========================  ==========================
body its content type cannot     ``Consumer.on_decode_     ``DecodeError``; the raw
decode (not JSON, say)           error`` (no signal)       body, as text or base64
task name this worker does not   ``task_unknown`` signal   ``UnknownHandlerError``;
have (``Received unregistered                              the task name and its
task``)                                                    argument
content type refused             ``task_rejected`` signal  ``DecodeError``; the raw
(``accept_content``), invalid                              body
task message, no task name
signed (message signing on) but  ``Consumer.on_decode_``   ``DecodeError`` naming the
its signature does not verify    ``error`` (Kombu's        signature; the raw body
                                 ``DecodeError``)
===============================  ========================  ==========================

The signals are public; for undecodable bodies Celery has no signal, so
:class:`Consumer` (Celery's consumer, set as the ``worker_consumer`` setting by
``ProteanCelery``) parks them before Celery's own handling acknowledges them.
With message signing on (:mod:`protean_celery.signing`), a signed message whose
signature does not verify reaches the same hook: Celery's ``auth`` serializer
raises ``SecurityError`` while Kombu decodes it, and Kombu hands it on as a
``DecodeError``.
Celery still logs, rejects or acknowledges each message exactly as before; a
dead-letter store that is down is logged with the body, never raised into the
consumer loop.

:class:`Consumer` also keeps a lost broker connection from killing the worker:
before Celery closes it, :func:`protean_celery.worker.connection.close_quietly`
guards it (see that module for the upstream issues).

Reproduced in ``tests/unit/test_worker_consumer.py`` and, through a real worker,
``tests/integration/test_bad_input.py`` and ``test_cli_and_bad_input.py``.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from celery import Celery, signals
from celery.worker.consumer import Consumer as _CeleryConsumer

from protean_celery.errors import DecodeError, UnknownHandlerError
from protean_celery.signing import AUTH_CONTENT_TYPE, refused_signature, signing_enabled
from protean_celery.traces.events import dead_lettered
from protean_celery.worker.connection import close_quietly

if TYPE_CHECKING:
    from protean_celery.runtime import Runtime

__all__ = ["Consumer", "connect", "park", "raw_body", "task_argument", "NO_TASK"]

logger = logging.getLogger(__name__)

#: The task recorded for a message that names none.
NO_TASK = "(no task name)"


class Consumer(_CeleryConsumer):
    """Celery's consumer, parking a message whose body cannot be decoded before it is acknowledged."""

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        if getattr(self.app, "runtime", None) is not None:
            error = DecodeError(
                refused_signature(exc) if message.content_type == AUTH_CONTENT_TYPE else
                f"The task message body is not valid {message.content_type or 'content'} "
                f"({message.content_encoding or 'no encoding'}): {exc}. Celery could not decode it, so no "
                "task ran. Fix the producer that sent it; the raw body is kept here.",
                task_id=_header(message, "id"),
            )
            park(self.app, _header(message, "task") or NO_TASK, raw_body(message), error)
        super().on_decode_error(message, exc)

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        if self.connection is not None:
            close_quietly(self.connection)
        super().on_connection_error_after_connected(exc)


def connect(app: Celery, runtime: Runtime) -> None:
    """Connect ``app``'s ``task_unknown`` and ``task_rejected`` receivers (held by the app).

    Args:
        app: the ``ProteanCelery`` app whose workers' messages they park.
        runtime: its runtime (the dead letters; the topology named in the error).
    """

    def unknown(sender: Any = None, message: Any = None, name: str = "", id: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        error = UnknownHandlerError(
            f"This worker has no task {name!r}, so Celery rejected the message unprocessed. "
            f"`celery -A <app> protean topology` lists the tasks of domain {runtime.topology.domain!r}: "
            "deploy the handler or send to a task that exists, then replay or purge this entry.",
            task=name,
            task_id=id,
        )
        park(app, name or NO_TASK, task_argument(message), error)

    def rejected(sender: Any = None, message: Any = None, exc: Exception | None = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app or message is None:
            return
        reason = f"{exc}" if exc is not None else "it names no task, so it is not a Celery task message"
        wanted = ("task messages signed by a certificate in [custom.celery] security_cert_store "
                  "(accept_content is ['auth'])" if signing_enabled(app) else
                  "JSON task messages (accept_content is ['json'])")
        error = DecodeError(
            f"Celery rejected the message before any task ran: {reason}. Send {wanted}; the raw body is kept here.",
            task_id=_header(message, "id"),
        )
        park(app, _header(message, "task") or NO_TASK, raw_body(message), error)

    app._protean_consumer_receivers = (unknown, rejected)  # type: ignore[attr-defined]
    signals.task_unknown.connect(unknown, weak=True)
    signals.task_rejected.connect(rejected, weak=True)


def park(app: Any, task: str, payload: Any, error: Exception) -> None:
    """Dead-letter ``payload`` for ``task``; a failing store is logged with the payload, never raised."""
    try:
        entry = app.runtime.dead_letters.park(task, payload, error)
    except Exception:  # never break the consumer loop; keep the body in the log instead
        logger.exception("%s: could not dead-letter a message (%s); payload: %.2000r", task, error, payload)
        return
    logger.warning("%s: message dead-lettered as %s: %s", task, entry, error)
    dead_lettered(app.runtime.domain, task, payload, error, 1, entry)


def raw_body(message: Any) -> dict[str, Any]:
    """The message body as stored in a dead letter: text if it decodes, else base64."""
    body = message.body
    encoding = message.content_encoding or "utf-8"
    record: dict[str, Any] = {"content_type": message.content_type, "content_encoding": message.content_encoding}
    if isinstance(body, str):
        return {**record, "body": body, "body_encoding": "text"}
    try:
        return {**record, "body": bytes(body).decode(encoding), "body_encoding": "text"}
    except (UnicodeDecodeError, LookupError, TypeError):
        return {**record, "body": base64.b64encode(bytes(body or b"")).decode("ascii"), "body_encoding": "base64"}


def task_argument(message: Any) -> Any:
    """What the task would have received: its only argument, else ``{"args", "kwargs"}``.

    A body that does not decode, or is not a task message, is kept raw.
    """
    try:
        body = message.decode()
    except Exception:  # the body is not what its content type says: keep the bytes
        return raw_body(message)
    if isinstance(body, list | tuple) and len(body) == 3:  # protocol 2: (args, kwargs, embed)
        args, kwargs = body[0], body[1]
    elif isinstance(body, dict) and "args" in body:  # protocol 1
        args, kwargs = body.get("args"), body.get("kwargs")
    else:
        return raw_body(message)
    args, kwargs = list(args or ()), dict(kwargs or {})
    return args[0] if len(args) == 1 and not kwargs else {"args": args, "kwargs": kwargs}


def _header(message: Any, key: str) -> Any:
    headers = getattr(message, "headers", None)
    return headers.get(key) if isinstance(headers, dict) else None
