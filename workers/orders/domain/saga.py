"""The saga: ``OrderFulfillment``, a process manager correlated on ``order_id``."""

from __future__ import annotations

from enum import Enum

from protean import current_domain, handle
from protean.fields import Boolean, Float, Identifier, String

from . import domain
from .model import (
    CancelOrder,
    CompleteOrder,
    CreateShipment,
    InventoryReserved,
    OrderPlaced,
    PaymentConfirmed,
    PaymentDeclined,
    ReleaseInventory,
    RequestPayment,
    ReserveInventory,
    ShipmentDelivered,
)

__all__ = [
    "SagaStatus",
    "OrderFulfillment",
]

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


