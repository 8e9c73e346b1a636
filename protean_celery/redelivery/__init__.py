"""Redelivery: the sweep that republishes relayed messages no handler got."""

from protean_celery.redelivery.ledger import Ledger, Watch
from protean_celery.redelivery.sweep import Sweep, SweepReport

__all__ = ["Ledger", "Sweep", "SweepReport", "Watch"]
