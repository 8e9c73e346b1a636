"""A small domain with an external broker: ``OpenTicket`` -> ``TicketOpened`` (published) and ``TicketNoted``.

Configured by ``domain.toml`` next to this file: SQLite under ``$PROTEAN_CELERY_STATE``
and ``[outbox] external_brokers = ["partners"]``, a Redis Streams broker at
``$FEEDS_PARTNERS_URL``. ``TicketOpened`` is ``published=True``, so Protean writes one
outbox row for the handler tasks and one for ``partners``; ``TicketNoted`` only the first.
``Desk`` handles both; ``tests.integration.feeds_app`` builds the app.

The domain is named ``$FEEDS_DOMAIN`` (default ``feeds``), so two apps of two domains
can share one database in a test.
"""

from __future__ import annotations

import os

from protean import Domain, handle
from protean.fields import Identifier
from protean.utils.globals import current_domain

domain = Domain(root_path=os.path.dirname(os.path.abspath(__file__)), name=os.environ.get("FEEDS_DOMAIN", "feeds"))


@domain.aggregate
class Ticket:
    ticket_id = Identifier(identifier=True)


@domain.aggregate
class Handled:
    message_id = Identifier(identifier=True)


@domain.command(part_of=Ticket)
class OpenTicket:
    ticket_id = Identifier(identifier=True)


@domain.event(part_of=Ticket, published=True)
class TicketOpened:
    ticket_id = Identifier(identifier=True)


@domain.event(part_of=Ticket)
class TicketNoted:
    ticket_id = Identifier(identifier=True)


@domain.command_handler(part_of=Ticket)
class Tickets:
    @handle(OpenTicket)
    def open(self, command: OpenTicket) -> None:
        ticket = Ticket(ticket_id=command.ticket_id)
        ticket.raise_(TicketOpened(ticket_id=command.ticket_id))
        ticket.raise_(TicketNoted(ticket_id=command.ticket_id))
        current_domain.repository_for(Ticket).add(ticket)


@domain.event_handler(part_of=Ticket)
class Desk:
    @handle(TicketOpened)
    def opened(self, event: TicketOpened) -> None:
        current_domain.repository_for(Handled).add(Handled(message_id=event._metadata.headers.id))

    @handle(TicketNoted)
    def noted(self, event: TicketNoted) -> None:
        current_domain.repository_for(Handled).add(Handled(message_id=event._metadata.headers.id))
