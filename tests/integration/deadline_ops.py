"""Place orders of the orders example for the deadline tests, in a process of their own.

Run with CELERY_BROKER_URL, PROTEAN_CELERY_STATE and ORDERS_PAYMENT_WINDOW_SECONDS set:

    python -m tests.integration.deadline_ops PREFIX PAID UNPAID

sets up the tables, places PAID orders that pay and UNPAID orders whose payment
never arrives (ids ``PREFIX-paid-N`` and ``PREFIX-unpaid-N``) with ``app.process``.
"""

import sys

from protean_celery import storage
from workers.orders.app import app
from workers.orders.domain import PlaceOrder


def main(prefix: str, paid: int, unpaid: int) -> None:
    storage.setup(app.domain, app.runtime.state)
    with app.domain.domain_context():
        for kind, count in (("paid", paid), ("unpaid", unpaid)):
            for number in range(count):
                order_id = f"{prefix}-{kind}-{number}"
                app.process(PlaceOrder(order_id=order_id, customer="c", amount=10.0, sku="s", quantity=1,
                                       unpaid=kind == "unpaid"))
    app.runtime.commits.flush()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
