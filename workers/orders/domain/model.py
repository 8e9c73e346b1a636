"""Statuses, aggregates, and the commands and events each aggregate owns."""

from __future__ import annotations

from enum import Enum

from protean.fields import Boolean, Float, Identifier, Integer, Status, String

from . import domain

__all__ = [
    "OrderStatus",
    "ReservationStatus",
    "PaymentStatus",
    "ShipmentStatus",
    "Order",
    "Inventory",
    "Payment",
    "Shipment",
    "CourierCall",
    "PlaceOrder",
    "CompleteOrder",
    "CancelOrder",
    "ReserveInventory",
    "ReleaseInventory",
    "RequestPayment",
    "TimeOutPayment",
    "CreateShipment",
    "DeliverShipment",
    "OrderPlaced",
    "OrderCompleted",
    "OrderCancelled",
    "InventoryReserved",
    "InventoryReleased",
    "PaymentConfirmed",
    "PaymentDeclined",
    "PaymentTimedOut",
    "ShipmentCreated",
    "ShipmentDelivered",
]

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
    TIMED_OUT = "TIMED_OUT"


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
        hooks = {"declined": details.pop("declined"), "unpaid": details.pop("unpaid")}
        order = cls(**details)
        order.raise_(OrderPlaced(**details, **hooks))
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
    """The charge for one order (id = order_id): confirmed, declined, or timed out.

    Whichever comes first, the charge or the payment deadline (``TimeOutPayment``),
    creates the one ``Payment`` of the order; the other then finds it and does nothing.
    """

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

    @classmethod
    def time_out(cls, order_id: str, reason: str) -> Payment:
        """No payment arrived in time (the saga's payment deadline fired)."""
        payment = cls(order_id=order_id, amount=0.0, status=PaymentStatus.TIMED_OUT.value)
        payment.raise_(PaymentTimedOut(order_id=order_id, reason=reason))
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
    unpaid = Boolean(default=False)  # test hook: no payment ever arrives (the deadline fires)


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
    unpaid = Boolean(default=False)


@domain.command(part_of=Payment)
class TimeOutPayment:
    """Sent by the saga's payment deadline when no payment arrived in time."""

    order_id = Identifier(identifier=True)
    reason = String(max_length=200, required=True)


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
    unpaid = Boolean(default=False)


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


@domain.event(part_of=Payment)
class PaymentTimedOut:
    order_id = Identifier(required=True)
    reason = String(max_length=200, required=True)


@domain.event(part_of=Shipment)
class ShipmentCreated:
    order_id = Identifier(required=True)


@domain.event(part_of=Shipment)
class ShipmentDelivered:
    order_id = Identifier(required=True)


