"""Order fulfilment: the example domain that ``protean_celery`` runs on Celery.

Initialisation
    This module registers elements and nothing else: it never calls
    ``domain.init()``. The app module imports ``protean_celery`` first (which
    registers its SQLAlchemy event store with Protean) and then calls
    ``domain.init(traverse=False)``. Every element lives in this one module, so
    there is nothing to traverse. Tests override ``domain.config`` before
    ``init``.

Configuration
    ``domain.toml`` next to this file (found because ``root_path`` is this
    directory): SQLite under ``$PROTEAN_CELERY_STATE`` (default ``.state``),
    async commands and events, outbox on; ``PROTEAN_ENV=production`` switches to
    PostgreSQL at ``$DATABASE_URL``.

The saga (``OrderFulfillment``, correlated on ``order_id``)::

    PlaceOrder -> OrderPlaced -> ReserveInventory -> InventoryReserved
      -> RequestPayment -> PaymentConfirmed -> CreateShipment -> ShipmentCreated
      -> (CourierSimulator) DeliverShipment -> ShipmentDelivered -> CompleteOrder
    RequestPayment(declined=True) -> PaymentDeclined
      -> ReleaseInventory + CancelOrder (saga ends compensated)

``Order`` itself only moves PLACED -> COMPLETED | CANCELLED: its commands are
PlaceOrder, CompleteOrder and CancelOrder. The intermediate stages
(INVENTORY_RESERVED, PAID, SHIPPED) are shown by the ``OrderSummary`` read model
and the saga's ``status``, so no two handlers ever race to update one ``Order``.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import Any, TypeVar

from protean import Domain, current_domain, handle
from protean.exceptions import ObjectNotFoundError
from protean.fields import Boolean, Float, Identifier, Integer, Status, String

domain = Domain(root_path=os.path.dirname(os.path.abspath(__file__)), name="orders")

_A = TypeVar("_A")


def _find(cls: type[_A], order_id: str) -> _A | None:
    """Load ``cls`` by id through its repository, or ``None`` if absent."""
    try:
        return current_domain.repository_for(cls).get(order_id)
    except ObjectNotFoundError:
        return None


def _save(item: Any) -> None:
    current_domain.repository_for(type(item)).add(item)


# --- Statuses ---
class OrderStatus(Enum):
    PLACED = "PLACED"
    INVENTORY_RESERVED = "INVENTORY_RESERVED"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class ReservationStatus(Enum):
    RESERVED = "RESERVED"
    RELEASED = "RELEASED"


class PaymentStatus(Enum):
    CONFIRMED = "CONFIRMED"
    DECLINED = "DECLINED"


class ShipmentStatus(Enum):
    CREATED = "CREATED"
    DELIVERED = "DELIVERED"


# --- Aggregates (regular, stored in the SQL database) ---
@domain.aggregate
class Order:
    """A customer's order: placed, then completed or cancelled by the saga."""

    order_id = Identifier(identifier=True)
    customer = String(max_length=100, required=True)
    amount = Float(required=True, min_value=0.0)
    sku = String(max_length=50, required=True)
    quantity = Integer(required=True, min_value=1)
    status = Status(
        OrderStatus,
        default=OrderStatus.PLACED,
        transitions={
            OrderStatus.PLACED: [OrderStatus.COMPLETED, OrderStatus.CANCELLED],
        },
    )

    @classmethod
    def place(cls, command: PlaceOrder) -> Order:
        details = command.payload
        declined = details.pop("declined")
        order = cls(**details)
        order.raise_(OrderPlaced(**details, declined=declined))
        return order

    def complete(self) -> None:
        self.status = OrderStatus.COMPLETED.value
        self.raise_(OrderCompleted(order_id=self.order_id))

    def cancel(self, reason: str) -> None:
        self.status = OrderStatus.CANCELLED.value
        self.raise_(OrderCancelled(order_id=self.order_id, reason=reason))


@domain.aggregate
class Inventory:
    """Stock held for one order (one reservation per order, id = order_id)."""

    order_id = Identifier(identifier=True)
    sku = String(max_length=50, required=True)
    quantity = Integer(required=True, min_value=1)
    status = Status(ReservationStatus, default=ReservationStatus.RESERVED)

    @classmethod
    def reserve(cls, order_id: str, sku: str, quantity: int) -> Inventory:
        inventory = cls(order_id=order_id, sku=sku, quantity=quantity)
        inventory.raise_(
            InventoryReserved(order_id=order_id, sku=sku, quantity=quantity)
        )
        return inventory

    def release(self) -> None:
        self.status = ReservationStatus.RELEASED.value
        self.raise_(
            InventoryReleased(
                order_id=self.order_id, sku=self.sku, quantity=self.quantity
            )
        )


@domain.aggregate
class Payment:
    """The charge for one order (id = order_id); confirmed or declined at once."""

    order_id = Identifier(identifier=True)
    amount = Float(required=True, min_value=0.0)
    status = Status(PaymentStatus, required=True)

    @classmethod
    def charge(cls, order_id: str, amount: float, declined: bool) -> Payment:
        """Charge the card; ``declined`` simulates the card being refused."""
        status = PaymentStatus.DECLINED if declined else PaymentStatus.CONFIRMED
        payment = cls(order_id=order_id, amount=amount, status=status.value)
        payment.raise_(
            PaymentDeclined(order_id=order_id, amount=amount, reason="card declined")
            if declined
            else PaymentConfirmed(order_id=order_id, amount=amount)
        )
        return payment


@domain.aggregate
class Shipment:
    """The parcel for one order (id = order_id)."""

    order_id = Identifier(identifier=True)
    status = Status(ShipmentStatus, default=ShipmentStatus.CREATED)

    @classmethod
    def create(cls, order_id: str) -> Shipment:
        shipment = cls(order_id=order_id)
        shipment.raise_(ShipmentCreated(order_id=order_id))
        return shipment

    def deliver(self) -> None:
        self.status = ShipmentStatus.DELIVERED.value
        self.raise_(ShipmentDelivered(order_id=self.order_id))


@domain.aggregate
class CourierCall:
    """A record of each call to the (simulated) external courier, per order."""

    order_id = Identifier(identifier=True)
    attempts = Integer(default=0, min_value=0)


# --- Commands ---
# ``order_id`` is each command's identifier, so an order's commands share the
# stream ``orders::<aggregate>:command-<order_id>``.
@domain.command(part_of=Order)
class PlaceOrder:
    order_id = Identifier(identifier=True)
    customer = String(max_length=100, required=True)
    amount = Float(required=True, min_value=0.0)
    sku = String(max_length=50, required=True)
    quantity = Integer(required=True, min_value=1)
    declined = Boolean(default=False)  # test hook: the card will be declined


@domain.command(part_of=Order)
class CompleteOrder:
    order_id = Identifier(identifier=True)


@domain.command(part_of=Order)
class CancelOrder:
    order_id = Identifier(identifier=True)
    reason = String(max_length=200, required=True)


@domain.command(part_of=Inventory)
class ReserveInventory:
    order_id = Identifier(identifier=True)
    sku = String(max_length=50, required=True)
    quantity = Integer(required=True, min_value=1)


@domain.command(part_of=Inventory)
class ReleaseInventory:
    order_id = Identifier(identifier=True)


@domain.command(part_of=Payment)
class RequestPayment:
    order_id = Identifier(identifier=True)
    amount = Float(required=True, min_value=0.0)
    declined = Boolean(default=False)


@domain.command(part_of=Shipment)
class CreateShipment:
    order_id = Identifier(identifier=True)


@domain.command(part_of=Shipment)
class DeliverShipment:
    order_id = Identifier(identifier=True)


# --- Events ---
@domain.event(part_of=Order)
class OrderPlaced:
    order_id = Identifier(required=True)
    customer = String(max_length=100, required=True)
    amount = Float(required=True)
    sku = String(max_length=50, required=True)
    quantity = Integer(required=True)
    declined = Boolean(default=False)


@domain.event(part_of=Order)
class OrderCompleted:
    order_id = Identifier(required=True)


@domain.event(part_of=Order)
class OrderCancelled:
    order_id = Identifier(required=True)
    reason = String(max_length=200, required=True)


@domain.event(part_of=Inventory)
class InventoryReserved:
    order_id = Identifier(required=True)
    sku = String(max_length=50, required=True)
    quantity = Integer(required=True)


@domain.event(part_of=Inventory)
class InventoryReleased:
    order_id = Identifier(required=True)
    sku = String(max_length=50, required=True)
    quantity = Integer(required=True)


@domain.event(part_of=Payment)
class PaymentConfirmed:
    order_id = Identifier(required=True)
    amount = Float(required=True)


@domain.event(part_of=Payment)
class PaymentDeclined:
    order_id = Identifier(required=True)
    amount = Float(required=True)
    reason = String(max_length=200, required=True)


@domain.event(part_of=Shipment)
class ShipmentCreated:
    order_id = Identifier(required=True)


@domain.event(part_of=Shipment)
class ShipmentDelivered:
    order_id = Identifier(required=True)


# --- Command handlers ---
# One per aggregate. A command that finds its work already done returns quietly,
# so a redelivered command changes nothing.
@domain.command_handler(part_of=Order)
class OrderCommandHandler:
    @handle(PlaceOrder)
    def place(self, command: PlaceOrder) -> None:
        if _find(Order, command.order_id) is None:
            _save(Order.place(command))

    @handle(CompleteOrder)
    def complete(self, command: CompleteOrder) -> None:
        order = _find(Order, command.order_id)
        if order is not None and order.status == OrderStatus.PLACED.value:
            order.complete()
            _save(order)

    @handle(CancelOrder)
    def cancel(self, command: CancelOrder) -> None:
        order = _find(Order, command.order_id)
        if order is not None and order.status == OrderStatus.PLACED.value:
            order.cancel(command.reason)
            _save(order)


@domain.command_handler(part_of=Inventory)
class InventoryCommandHandler:
    @handle(ReserveInventory)
    def reserve(self, command: ReserveInventory) -> None:
        if _find(Inventory, command.order_id) is None:
            _save(Inventory.reserve(command.order_id, command.sku, command.quantity))

    @handle(ReleaseInventory)
    def release(self, command: ReleaseInventory) -> None:
        inventory = _find(Inventory, command.order_id)
        if (
            inventory is not None
            and inventory.status == ReservationStatus.RESERVED.value
        ):
            inventory.release()
            _save(inventory)


@domain.command_handler(part_of=Payment)
class PaymentCommandHandler:
    @handle(RequestPayment)
    def charge(self, command: RequestPayment) -> None:
        if _find(Payment, command.order_id) is None:
            _save(Payment.charge(command.order_id, command.amount, command.declined))


@domain.command_handler(part_of=Shipment)
class ShipmentCommandHandler:
    @handle(CreateShipment)
    def create(self, command: CreateShipment) -> None:
        if _find(Shipment, command.order_id) is None:
            _save(Shipment.create(command.order_id))

    @handle(DeliverShipment)
    def deliver(self, command: DeliverShipment) -> None:
        shipment = _find(Shipment, command.order_id)
        if shipment is not None and shipment.status == ShipmentStatus.CREATED.value:
            shipment.deliver()
            _save(shipment)


# --- Side effect: the courier ---
@domain.event_handler(part_of=Shipment)
class CourierSimulator:
    """Stands in for an external courier API: books a pickup, which delivers.

    Each call bumps ``CourierCall.attempts``, so a test can count exactly how
    many times the side effect ran for an order (1 unless a delivery repeats).
    """

    @handle(ShipmentCreated)
    def book_pickup(self, event: ShipmentCreated) -> None:
        call = _find(CourierCall, event.order_id) or CourierCall(
            order_id=event.order_id
        )
        call.attempts += 1
        _save(call)
        current_domain.process(DeliverShipment(order_id=event.order_id))


# --- Process manager: the saga ---
class SagaStatus(Enum):
    STARTED = "started"
    RESERVING = "reserving"
    PAYING = "paying"
    SHIPPING = "shipping"
    COMPLETED = "completed"
    COMPENSATED = "compensated"


@domain.process_manager(
    stream_categories=[
        "orders::order",
        "orders::inventory",
        "orders::payment",
        "orders::shipment",
    ]
)
class OrderFulfillment:
    """Drives one order through stock, payment and shipping; compensates declines.

    State lives in the stream ``orders::order_fulfillment-<order_id>``, one
    transition event per handled event.
    """

    order_id = Identifier(identifier=True)
    amount = Float(default=0.0)
    declined = Boolean(default=False)
    status = String(max_length=20, default=SagaStatus.STARTED.value)

    @handle(OrderPlaced, start=True, correlate="order_id")
    def on_order_placed(self, event: OrderPlaced) -> None:
        self.amount = event.amount
        self.declined = event.declined
        self.status = SagaStatus.RESERVING.value
        current_domain.process(
            ReserveInventory(
                order_id=event.order_id, sku=event.sku, quantity=event.quantity
            )
        )

    @handle(InventoryReserved, correlate="order_id")
    def on_inventory_reserved(self, event: InventoryReserved) -> None:
        self.status = SagaStatus.PAYING.value
        current_domain.process(
            RequestPayment(
                order_id=event.order_id,
                amount=self.amount,
                declined=bool(self.declined),
            )
        )

    @handle(PaymentConfirmed, correlate="order_id")
    def on_payment_confirmed(self, event: PaymentConfirmed) -> None:
        self.status = SagaStatus.SHIPPING.value
        current_domain.process(CreateShipment(order_id=event.order_id))

    @handle(ShipmentDelivered, correlate="order_id")
    def on_shipment_delivered(self, event: ShipmentDelivered) -> None:
        self.status = SagaStatus.COMPLETED.value
        current_domain.process(CompleteOrder(order_id=event.order_id))
        self.mark_as_complete()

    @handle(PaymentDeclined, correlate="order_id", end=True)
    def on_payment_declined(self, event: PaymentDeclined) -> None:
        self.status = SagaStatus.COMPENSATED.value
        current_domain.process(ReleaseInventory(order_id=event.order_id))
        current_domain.process(
            CancelOrder(order_id=event.order_id, reason=event.reason)
        )


# --- Read model ---
@domain.projection
class OrderSummary:
    """One row per order: where it stands across all four aggregates."""

    order_id = Identifier(identifier=True)
    customer = String(max_length=100)
    amount = Float()
    status = String(max_length=20)
    inventory_status = String(max_length=20)
    payment_status = String(max_length=20)
    shipment_status = String(max_length=20)
    steps = Integer(default=0)


# Order of the summary's overall status; it only ever moves forward, so events
# from different streams may be applied in any order and agree in the end.
_PROGRESS = [status.value for status in OrderStatus]


@domain.projector(
    projector_for=OrderSummary, aggregates=[Order, Inventory, Payment, Shipment]
)
class OrderSummaryProjector:
    """Upserts ``OrderSummary`` on every saga event, in any arrival order."""

    @staticmethod
    def _apply(order_id: str, status: str | None = None, **values: Any) -> None:
        summary = _find(OrderSummary, order_id) or OrderSummary(order_id=order_id)
        for name, value in values.items():
            setattr(summary, name, value)
        if status is not None and (
            summary.status is None
            or _PROGRESS.index(status) > _PROGRESS.index(summary.status)
        ):
            summary.status = status
        summary.steps = (summary.steps or 0) + 1
        _save(summary)

    @handle(OrderPlaced)
    def placed(self, event: OrderPlaced) -> None:
        self._apply(
            event.order_id, "PLACED", customer=event.customer, amount=event.amount
        )

    @handle(InventoryReserved)
    def reserved(self, event: InventoryReserved) -> None:
        self._apply(event.order_id, "INVENTORY_RESERVED", inventory_status="RESERVED")

    @handle(InventoryReleased)
    def released(self, event: InventoryReleased) -> None:
        self._apply(event.order_id, inventory_status="RELEASED")

    @handle(PaymentConfirmed)
    def paid(self, event: PaymentConfirmed) -> None:
        self._apply(event.order_id, "PAID", payment_status="CONFIRMED")

    @handle(PaymentDeclined)
    def declined(self, event: PaymentDeclined) -> None:
        self._apply(event.order_id, payment_status="DECLINED")

    @handle(ShipmentCreated)
    def shipped(self, event: ShipmentCreated) -> None:
        self._apply(event.order_id, "SHIPPED", shipment_status="CREATED")

    @handle(ShipmentDelivered)
    def delivered(self, event: ShipmentDelivered) -> None:
        self._apply(event.order_id, shipment_status="DELIVERED")

    @handle(OrderCompleted)
    def completed(self, event: OrderCompleted) -> None:
        self._apply(event.order_id, "COMPLETED")

    @handle(OrderCancelled)
    def cancelled(self, event: OrderCancelled) -> None:
        self._apply(event.order_id, "CANCELLED")
