"""The saga: ``OrderFulfillment``, a process manager correlated on ``order_id``.

While it waits for the payment it holds a **payment deadline**
(:mod:`protean_celery.deadlines`): scheduled with the transition that requests
the payment, cancelled with the transition that sees it arrive. If it fires
first, ``TimeOutPayment`` reaches the payment aggregate, which records
``PaymentTimedOut`` (unless a payment got there first), and the saga compensates:
it releases the stock and cancels the order. The window is ``[custom]
payment_window_seconds`` (default 900: 15 minutes).
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum

from protean import current_domain, handle
from protean.fields import Boolean, Float, Identifier, String

from protean_celery import deadlines

from . import domain
from .model import (
    CancelOrder,
    CompleteOrder,
    CreateShipment,
    InventoryReserved,
    OrderPlaced,
    PaymentConfirmed,
    PaymentDeclined,
    PaymentTimedOut,
    ReleaseInventory,
    RequestPayment,
    ReserveInventory,
    ShipmentDelivered,
    TimeOutPayment,
)

__all__ = [
    "SagaStatus",
    "OrderFulfillment",
    "payment_deadline",
    "payment_window",
]


def payment_deadline(order_id: str) -> str:
    """The key of an order's payment deadline (``protean deadlines cancel payment-<order_id>``)."""
    return f"payment-{order_id}"


def payment_window() -> timedelta:
    """How long the saga waits for a payment: ``[custom] payment_window_seconds`` (default 15 minutes)."""
    custom = current_domain.config.get("custom") or {}
    return timedelta(seconds=float(custom.get("payment_window_seconds") or 900))


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
    unpaid = Boolean(default=False)
    status = String(max_length=20, default=SagaStatus.STARTED.value)

    @handle(OrderPlaced, start=True, correlate="order_id")
    def on_order_placed(self, event: OrderPlaced) -> None:
        self.amount = event.amount
        self.declined = event.declined
        self.unpaid = event.unpaid
        self.status = SagaStatus.RESERVING.value
        current_domain.process(
            ReserveInventory(
                order_id=event.order_id, sku=event.sku, quantity=event.quantity
            )
        )

    @handle(InventoryReserved, correlate="order_id")
    def on_inventory_reserved(self, event: InventoryReserved) -> None:
        self.status = SagaStatus.PAYING.value
        # Written in this transition's Unit of Work: it exists exactly when the transition does.
        deadlines.schedule(
            TimeOutPayment(order_id=event.order_id, reason="no payment within the payment window"),
            after=payment_window(),
            key=payment_deadline(event.order_id),
        )
        current_domain.process(
            RequestPayment(
                order_id=event.order_id,
                amount=self.amount,
                declined=bool(self.declined),
                unpaid=bool(self.unpaid),
            )
        )

    @handle(PaymentConfirmed, correlate="order_id")
    def on_payment_confirmed(self, event: PaymentConfirmed) -> None:
        deadlines.cancel(payment_deadline(event.order_id))
        self.status = SagaStatus.SHIPPING.value
        current_domain.process(CreateShipment(order_id=event.order_id))

    @handle(ShipmentDelivered, correlate="order_id")
    def on_shipment_delivered(self, event: ShipmentDelivered) -> None:
        self.status = SagaStatus.COMPLETED.value
        current_domain.process(CompleteOrder(order_id=event.order_id))
        self.mark_as_complete()

    @handle(PaymentDeclined, correlate="order_id", end=True)
    def on_payment_declined(self, event: PaymentDeclined) -> None:
        deadlines.cancel(payment_deadline(event.order_id))
        self._compensate(event.order_id, event.reason)

    @handle(PaymentTimedOut, correlate="order_id", end=True)
    def on_payment_timed_out(self, event: PaymentTimedOut) -> None:
        self._compensate(event.order_id, event.reason)

    def _compensate(self, order_id: str, reason: str) -> None:
        self.status = SagaStatus.COMPENSATED.value
        current_domain.process(ReleaseInventory(order_id=order_id))
        current_domain.process(CancelOrder(order_id=order_id, reason=reason))


