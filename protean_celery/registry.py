"""Read an initialised Protean domain into handler specs. Pure: no I/O.

One :class:`HandlerSpec` per Celery task:

* each event handler, projector and process manager, with every stream category
  it consumes (``$all`` included);
* one command dispatcher per aggregate that has command handlers, mapping each
  command type to its handler class (as Protean's ``CommandDispatcher`` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from protean.utils import fqn

from protean_celery.errors import ConfigurationError, TopologyError
from protean_celery.protean_api import handled_types

__all__ = ["HandlerKind", "HandlerSpec", "read_handlers"]

_ANY = "$any"


class HandlerKind(StrEnum):
    """What sort of Protean element a task runs."""

    EVENT_HANDLER = "event_handler"
    PROJECTOR = "projector"
    PROCESS_MANAGER = "process_manager"
    COMMAND_DISPATCHER = "command_dispatcher"


@dataclass(frozen=True)
class HandlerSpec:
    """One task's worth of handling.

    Attributes:
        kind: the element kind.
        name: the handler class name (the aggregate name for a command dispatcher).
        path: dotted path of the handler class (of the aggregate for a dispatcher).
        categories: stream categories consumed (``orders::order``, ``$all`` …).
        handler: the handler class (``None`` for a command dispatcher).
        message_types: the message types handled; empty means "any type".
        commands: command type → command handler class (dispatchers only).
    """

    kind: HandlerKind
    name: str
    path: str
    categories: tuple[str, ...]
    handler: Any = None
    message_types: frozenset[str] = frozenset()
    commands: Mapping[str, Any] = field(default_factory=dict)

    def accepts(self, message_type: str) -> bool:
        """Whether a message of ``message_type`` should be delivered to this task."""
        return not self.message_types or message_type in self.message_types

    def handler_for(self, message_type: str) -> Any:
        """The class that handles ``message_type`` (dispatchers route by command type)."""
        if self.kind is HandlerKind.COMMAND_DISPATCHER:
            return self.commands.get(message_type)
        return self.handler


def read_handlers(domain: Any) -> tuple[HandlerSpec, ...]:
    """All handler specs of an initialised domain, in a deterministic order.

    Raises:
        ConfigurationError: the domain is not initialised or has no handlers.
        TopologyError: a handler has no stream category.
    """
    if getattr(domain.event_store, "store", None) is None:
        raise ConfigurationError(
            f"Domain {domain.name!r} is not initialised: call domain.init() before ProteanCelery(domain)."
        )
    registry = domain.registry
    specs = [
        *(_subscriber(r.cls, HandlerKind.EVENT_HANDLER) for r in _records(registry.event_handlers)),
        *(_subscriber(r.cls, HandlerKind.PROJECTOR) for r in _records(registry.projectors)),
        *(_subscriber(r.cls, HandlerKind.PROCESS_MANAGER) for r in _records(registry.process_managers)),
        *_dispatchers(_records(registry.command_handlers)),
    ]
    if not specs and not _records(registry.subscribers):
        raise ConfigurationError(
            f"Domain {domain.name!r} has no command handlers, event handlers, projectors, "
            "process managers or broker subscribers: there is nothing for Celery to run. Register handlers "
            "(and call domain.init()) before ProteanCelery(domain)."
        )
    return tuple(specs)


def _records(elements: Mapping[str, Any]) -> list[Any]:
    return sorted(
        (r for r in elements.values() if not r.internal), key=lambda r: fqn(r.cls)
    )


def _subscriber(cls: Any, kind: HandlerKind) -> HandlerSpec:
    meta = cls.meta_
    if kind is HandlerKind.EVENT_HANDLER:
        categories = [_category_of(cls)]
    else:
        categories = list(getattr(meta, "stream_categories", None) or [])
    if not categories or not all(categories):
        raise TopologyError(
            f"{fqn(cls)} consumes no stream category: give it part_of=<Aggregate> or "
            "stream_category=... (stream_categories=[...] for projectors and process managers)."
        )
    return HandlerSpec(
        kind=kind,
        name=cls.__name__,
        path=fqn(cls),
        categories=tuple(dict.fromkeys(categories)),
        handler=cls,
        message_types=_types(cls),
    )


def _dispatchers(records: list[Any]) -> list[HandlerSpec]:
    by_aggregate: dict[str, tuple[Any, dict[str, Any]]] = {}
    for record in records:
        cls = record.cls
        aggregate = cls.meta_.part_of
        if aggregate is None:
            raise TopologyError(f"Command handler {fqn(cls)} has no part_of aggregate.")
        _, commands = by_aggregate.setdefault(fqn(aggregate), (aggregate, {}))
        for command_type in sorted(_types(cls)):
            if command_type in commands:
                raise TopologyError(
                    f"Command {command_type} is handled by both {fqn(commands[command_type])} and "
                    f"{fqn(cls)}: a command must have exactly one handler."
                )
            commands[command_type] = cls
    return [
        HandlerSpec(
            kind=HandlerKind.COMMAND_DISPATCHER,
            name=aggregate.__name__,
            path=path,
            categories=(f"{aggregate.meta_.stream_category}:command",),
            message_types=frozenset(commands),
            commands=commands,
        )
        for path, (aggregate, commands) in sorted(by_aggregate.items())
    ]


def _category_of(cls: Any) -> str:
    meta = cls.meta_
    category = getattr(meta, "stream_category", None)
    if category:
        return str(category)
    part_of = getattr(meta, "part_of", None)
    return str(part_of.meta_.stream_category) if part_of is not None else ""


def _types(cls: Any) -> frozenset[str]:
    keys = handled_types(cls)
    return frozenset() if _ANY in keys else frozenset(keys)
