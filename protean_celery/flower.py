"""What Flower (and ``celery events``, ``inspect``) show as a task's arguments. Pure.

A handler task's only argument is the whole Protean message, payload included, which
may hold personal data. The relay sends each task with ``argsrepr=argsrepr(message)``,
so monitors show which message a task carries, never its data::

    Orders.OrderPlaced.v1 stream=orders::order-o9 id=6d1e… correlation=c7f2…
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["argsrepr"]

#: Longest value shown for each field (a stream name can be long).
MAX_FIELD = 120


def argsrepr(message: Any) -> str:
    """Name the message type, stream, message id and correlation id of ``message``; no payload data.

    Args:
        message: a Protean ``Message``, or its task payload (``Message.to_dict()``).
            Missing parts show as ``?``; anything else shows as ``<not a Protean message>``.

    Returns:
        One line such as ``Orders.OrderPlaced.v1 stream=orders::order-o9 id=… correlation=…``.
    """
    metadata = _part(message, "metadata")
    if metadata is None:
        return "<not a Protean message>"
    headers = _part(metadata, "headers")
    domain = _part(metadata, "domain")
    return (
        f"{_show(_part(headers, 'type'))} stream={_show(_part(headers, 'stream'))} "
        f"id={_show(_part(headers, 'id'))} correlation={_show(_part(domain, 'correlation_id'))}"
    )


def _part(value: Any, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _show(value: Any) -> str:
    if value is None or value == "":
        return "?"
    text = " ".join(str(value).split())  # one line, whatever the value holds
    return text if len(text) <= MAX_FIELD else text[: MAX_FIELD - 1] + "…"
