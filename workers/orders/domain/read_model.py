"""The read model: ``OrderSummary`` and the projector that keeps it."""

from __future__ import annotations

from typing import Any

from protean import handle
from protean.fields import Float, Identifier, Integer, String

from . import domain
from .lookup import find as _find
from .lookup import save as _save
from .model import (
    Inventory,
    InventoryReleased,
    InventoryReserved,
    Order,
    OrderCancelled,
    OrderCompleted,
    OrderPlaced,
    OrderStatus,
    Payment,
    PaymentConfirmed,
    PaymentDeclined,
    PaymentTimedOut,
    Shipment,
    ShipmentCreated,
    ShipmentDelivered,
)

__all__ = [
    "OrderSummary",
    "OrderSummaryProjector",
]

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

    @handle(PaymentTimedOut)
    def timed_out(self, event: PaymentTimedOut) -> None:
        self._apply(event.order_id, payment_status="TIMED_OUT")

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
