"""Every Celery and Kombu name protean-celery uses, derived in one place. Pure.

* handler task = queue = exchange: ``<prefix>.<domain>.<HandlerClass>``, so Flower
  shows every handler by name;
* an aggregate's command task: ``<prefix>.<domain>.commands.<Aggregate>``;
* the relay tasks: ``<prefix>.<domain>.relay.outbox``, ``….relay.commands`` and
  ``….relay.maintenance``, on their own queue ``<prefix>.<domain>.relay`` so handler backlogs cannot
  starve the relay;
* routing key = the Protean stream category verbatim (``orders::order``), which
  greps against Protean's logs. A ``$all`` subscription binds with ``#``.
"""

from __future__ import annotations

import re

from protean_celery.errors import TopologyError

__all__ = [
    "ALL_STREAMS",
    "task_name",
    "command_task_name",
    "relay_task_name",
    "relay_queue_name",
    "routing_key",
    "binding_key",
]

#: Protean's pseudo-category for "every stream".
ALL_STREAMS = "$all"

_ILLEGAL_KEY = re.compile(r"[.*#\s]")
_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def task_name(prefix: str, domain: str, handler: str) -> str:
    """Name of a handler's task, queue and exchange."""
    return f"{prefix}.{domain}.{_word(handler)}"


def command_task_name(prefix: str, domain: str, aggregate: str) -> str:
    """Name of the task that dispatches an aggregate's commands by type."""
    return f"{prefix}.{domain}.commands.{_word(aggregate)}"


def relay_task_name(prefix: str, domain: str, what: str) -> str:
    """Name of a relay task (``what`` is ``outbox``, ``commands`` or ``maintenance``)."""
    return f"{prefix}.{domain}.relay.{_word(what)}"


def relay_queue_name(prefix: str, domain: str) -> str:
    """The queue the relay tasks run on."""
    return f"{prefix}.{domain}.relay"


def routing_key(category: str) -> str:
    """The routing key of a message of ``category``: the category verbatim.

    Raises:
        TopologyError: the category holds a character with a meaning in topic
            routing (``.``, ``*``, ``#``) or white space.
    """
    if not category or _ILLEGAL_KEY.search(category):
        raise TopologyError(
            f"Stream category {category!r} cannot be a routing key: it must be non-empty and "
            "hold no '.', '*', '#' or spaces. Rename the aggregate or set a stream_category "
            "without them."
        )
    return category


def binding_key(category: str) -> str:
    """The key a handler queue binds with for one subscribed category."""
    return "#" if category == ALL_STREAMS else routing_key(category)


def _word(name: str) -> str:
    if not _WORD.match(name):
        raise TopologyError(f"{name!r} cannot be part of a task name: use a Python identifier.")
    return name
