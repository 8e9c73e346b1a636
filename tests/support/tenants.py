"""A tiny domain built fresh on every call, so two of them can live in one process and one database.

``build_tenant("north")`` registers its own classes: a ``Ticket`` aggregate, an
``OpenTicket`` command and its handler, ``TicketOpened`` (``published=True``: it
also goes to every ``[outbox] external_brokers`` broker) and ``TicketNoted`` (internal
only), and a ``Desk`` event handler that takes both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from protean import Domain, handle
from protean.fields import Identifier, String
from protean.utils.globals import current_domain

__all__ = ["build_tenant", "open_ticket"]


def build_tenant(name: str, external_brokers: dict[str, dict[str, Any]] | None = None, **config: Any) -> Domain:
    """A fresh, uninitialised domain ``name`` with the outbox on.

    Args:
        name: the domain name (its streams start with ``<name>::``).
        external_brokers: ``[brokers.<name>]`` tables, each also listed in ``[outbox] external_brokers``.
        config: keys that replace the defaults.
    """
    domain = Domain(name=name, root_path=str(Path(__file__).parent))
    domain.config["enable_outbox"] = True
    domain.config["server"]["default_subscription_type"] = "stream"
    for key, value in config.items():
        domain.config[key] = value
    for broker, table in (external_brokers or {}).items():
        domain.config["brokers"][broker] = table
        domain.config["outbox"]["external_brokers"] = [*domain.config["outbox"]["external_brokers"], broker]

    @domain.aggregate
    class Ticket:
        ticket_id = Identifier(identifier=True)
        subject = String()

    @domain.event(part_of=Ticket, published=True)
    class TicketOpened:
        ticket_id = Identifier(identifier=True)
        subject = String()

    @domain.event(part_of=Ticket)
    class TicketNoted:
        ticket_id = Identifier(identifier=True)

    @domain.command(part_of=Ticket)
    class OpenTicket:
        ticket_id = Identifier(identifier=True)
        subject = String()

    @domain.command_handler(part_of=Ticket)
    class Tickets:
        @handle(OpenTicket)
        def open(self, command: Any) -> None:
            ticket = Ticket(ticket_id=command.ticket_id, subject=command.subject)
            ticket.raise_(TicketOpened(ticket_id=command.ticket_id, subject=command.subject))
            ticket.raise_(TicketNoted(ticket_id=command.ticket_id))
            current_domain.repository_for(Ticket).add(ticket)

    @domain.event_handler(part_of=Ticket)
    class Desk:
        @handle(TicketOpened)
        def opened(self, event: Any) -> None:
            pass

        @handle(TicketNoted)
        def noted(self, event: Any) -> None:
            pass

    return domain


def open_ticket(domain: Domain, ticket_id: str, subject: str = "help") -> None:
    """Run ``OpenTicket`` synchronously in ``domain`` (its events then wait in the outbox)."""
    [command] = [r.cls for r in domain.registry.commands.values() if r.cls.__name__ == "OpenTicket"]
    with domain.domain_context():
        domain.process(command(ticket_id=ticket_id, subject=subject), asynchronous=False)
