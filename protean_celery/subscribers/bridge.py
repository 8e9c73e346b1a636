"""The subscriber bridge: a broker stream's messages into the subscriber's Celery queue (I/O).

One run for one subscriber, on the relay queue (a beat tick per subscriber):

1. hand the subscriber's consumer-group entries left pending longer than
   ``[custom.celery] subscriber_reclaim_seconds`` (a bridge killed between
   reading and acknowledging) to this broker's consumer;
2. ``broker.read(stream, group, relay_batch_size)``: Protean's own consumer-group read;
3. publish one task message per entry to the subscriber's queue, task id derived
   from the entry's id;
4. only then ``broker.ack(stream, id, group)``.

The broker's consumer group is the durable position, and two bridges (two
nodes, a double-fired beat) read different entries. A crash after publishing
and before acknowledging publishes the entry again once it is reclaimed: the
same task id and the inbox make the second copy a no-op. When publishing fails,
the run stops; the entries it did not acknowledge stay pending for the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from protean.port.broker import BrokerCapabilities

from protean_celery.envelope import task_id
from protean_celery.errors import ConfigurationError, RelayError
from protean_celery.protean_api import ensure_consumer_group, raw_stream_entry, reclaim_stream_pending
from protean_celery.subscribers.delivery import delivery_key, describe_delivery, wrap
from protean_celery.subscribers.routes import SubscriberRoute

__all__ = ["Bridge", "BridgeReport", "require_consumer_groups"]

logger = logging.getLogger(__name__)

_NEEDED = BrokerCapabilities.CONSUMER_GROUPS | BrokerCapabilities.ACK_NACK


@dataclass
class BridgeReport:
    """What one bridge run did.

    Attributes:
        reclaimed: pending entries taken over from a reader that stopped.
        published: task messages published (and entries acknowledged).
    """

    reclaimed: int = 0
    published: int = 0


def require_consumer_groups(domain: Any, route: SubscriberRoute) -> None:
    """Refuse a subscriber whose broker cannot keep a durable position.

    Raises:
        ConfigurationError: the broker has no consumer groups or acknowledgements.
    """
    broker = domain.brokers[route.broker]
    if not broker.has_all_capabilities(_NEEDED):
        raise ConfigurationError(
            f"Subscriber {route.path} reads broker {route.broker!r} ({type(broker).__name__}), which has no consumer "
            "groups with acknowledgements, so no position survives a restart and messages would be lost. Use a "
            "broker with them (provider 'redis': Redis Streams) for [brokers." + route.broker + "].",
            subscriber=route.path, broker=route.broker,
        )


class Bridge:
    """Moves each subscriber's broker messages into its Celery queue.

    Args:
        celery: the app that publishes the task messages.
        domain: the initialised Protean domain (its brokers).
        routes: the subscribers.
        batch_size: entries read per round trip.
        max_batches: round trips one run may make before it yields.
        reclaim_seconds: pending entries idle this long are taken over.
    """

    def __init__(
        self, celery: Any, domain: Any, routes: tuple[SubscriberRoute, ...], batch_size: int, max_batches: int,
        reclaim_seconds: float,
    ) -> None:
        self.celery = celery
        self.domain = domain
        self.routes = {route.name: route for route in routes}
        self.batch_size = batch_size
        self.max_batches = max_batches
        self.reclaim_seconds = reclaim_seconds

    def route(self, name: str) -> SubscriberRoute:
        """The route of subscriber ``name``.

        Raises:
            ConfigurationError: this app has no such subscriber.
        """
        try:
            return self.routes[name]
        except KeyError:
            raise ConfigurationError(
                f"No broker subscriber {name!r} in this app (subscribers: {', '.join(sorted(self.routes)) or 'none'})."
            ) from None

    def run(self, name: str) -> BridgeReport:
        """Bridge what subscriber ``name``'s stream holds now (see the module docstring).

        Raises:
            RelayError: publishing to the Celery broker failed (the entries stay pending).
        """
        route = self.route(name)
        report = BridgeReport()
        with self.domain.domain_context():
            broker = self.domain.brokers[route.broker]
            ensure_consumer_group(broker, route.stream, route.group)
            report.reclaimed = reclaim_stream_pending(broker, route.stream, route.group, self.reclaim_seconds)
            for _ in range(self.max_batches):
                batch = broker.read(route.stream, route.group, self.batch_size)
                if not batch:
                    break
                report.published += self._forward(broker, route, batch)
                if len(batch) < self.batch_size:
                    break
        return report

    def _forward(self, broker: Any, route: SubscriberRoute, batch: list[tuple[str, Any]]) -> int:
        with self.celery.producer_or_acquire() as producer:
            for message_id, payload in batch:
                raw = raw_stream_entry(broker, route.stream, message_id) if payload == {} else None
                envelope = wrap(route.broker, route.stream, message_id, payload, raw)
                try:
                    self._send(route, envelope, producer)
                except Exception as exc:
                    raise RelayError(
                        f"Publishing {describe_delivery(envelope)} to {route.task_name} failed; it stays pending on "
                        f"broker {route.broker!r} for the next run: {exc}"
                    ) from exc
                if not broker.ack(route.stream, message_id, route.group):
                    logger.warning("%s: acknowledging %s failed", route.task_name, describe_delivery(envelope))
        return len(batch)

    def _send(self, route: SubscriberRoute, envelope: dict[str, Any], producer: Any) -> None:
        key = delivery_key(envelope["broker"], envelope["stream"], envelope["id"])
        self.celery.send_task(
            route.task_name,
            args=(envelope,),
            task_id=task_id(route.task_name, key),
            exchange=route.exchange,
            routing_key=route.task_name,
            declare=[route.queue],
            producer=producer,
            retry=True,
            argsrepr=describe_delivery(envelope),
            kwargsrepr="{}",
        )
