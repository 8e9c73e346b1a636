"""Order fulfilment: the example domain that ``protean_celery`` runs on Celery.

Layout
    ``model`` (statuses, aggregates and the commands and events they own),
    ``handlers`` (command handlers and the courier side effect), ``saga`` (the
    process manager) and ``read_model`` (projection and projector). Importing
    this package imports them all.

Initialisation
    The package registers elements and nothing else: it never calls
    ``domain.init()``. The app module imports ``protean_celery`` first (which
    registers its SQLAlchemy event store with Protean) and then calls
    ``domain.init(traverse=False)``. Every element is imported here, so there
    is nothing to traverse. Tests override ``domain.config`` before ``init``.

Configuration
    ``workers/orders/domain.toml`` (found because ``root_path`` is
    ``workers/orders``): SQLite under ``$PROTEAN_CELERY_STATE`` (default ``.state``),
    async commands and events, outbox on; ``PROTEAN_ENV=production`` switches to
    PostgreSQL at ``$DATABASE_URL``.

The saga (``OrderFulfillment``, correlated on ``order_id``)::

    PlaceOrder -> OrderPlaced -> ReserveInventory -> InventoryReserved
      -> RequestPayment -> PaymentConfirmed -> CreateShipment -> ShipmentCreated
      -> (CourierSimulator) DeliverShipment -> ShipmentDelivered -> CompleteOrder
    RequestPayment(declined=True) -> PaymentDeclined
      -> ReleaseInventory + CancelOrder (saga ends compensated)
    no payment within the window: the payment deadline fires TimeOutPayment -> PaymentTimedOut
      -> ReleaseInventory + CancelOrder (saga ends compensated)

``Order`` itself only moves PLACED -> COMPLETED | CANCELLED: its commands are
PlaceOrder, CompleteOrder and CancelOrder. The intermediate stages
(INVENTORY_RESERVED, PAID, SHIPPED) are shown by the ``OrderSummary`` read model
and the saga's ``status``, so no two handlers ever race to update one ``Order``.
"""

from __future__ import annotations

import os

from protean import Domain

domain = Domain(root_path=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name="orders")

# Registered on import, in dependency order (the package's ``domain`` exists by now).
from . import handlers, model, read_model, saga  # noqa: E402
from .handlers import *  # noqa: E402, F403
from .model import *  # noqa: E402, F403
from .read_model import *  # noqa: E402, F403
from .saga import *  # noqa: E402, F403

__all__ = ["domain", *model.__all__, *handlers.__all__, *saga.__all__, *read_model.__all__]
