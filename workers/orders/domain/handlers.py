"""Command handlers (one per aggregate) and the courier side effect."""

from __future__ import annotations

from protean import current_domain, handle

from . import domain
from .lookup import find as _find
from .lookup import save as _save
from .model import (
    CancelOrder,
    CompleteOrder,
    CourierCall,
    CreateShipment,
    DeliverShipment,
    Inventory,
    Order,
    OrderStatus,
    Payment,
    PlaceOrder,
    ReleaseInventory,
    RequestPayment,
    ReservationStatus,
    ReserveInventory,
    Shipment,
    ShipmentCreated,
    ShipmentStatus,
    TimeOutPayment,
)

__all__ = [
    "OrderCommandHandler",
    "InventoryCommandHandler",
    "PaymentCommandHandler",
    "ShipmentCommandHandler",
    "CourierSimulator",
]

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
        if command.unpaid:
            return  # test hook: the customer never pays
        if _find(Payment, command.order_id) is None:
            _save(Payment.charge(command.order_id, command.amount, command.declined))

    @handle(TimeOutPayment)
    def time_out(self, command: TimeOutPayment) -> None:
        if _find(Payment, command.order_id) is None:  # a payment that came first wins
            _save(Payment.time_out(command.order_id, command.reason))


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


