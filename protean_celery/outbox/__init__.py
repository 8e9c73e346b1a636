"""The relay of outbox rows and commands to handler tasks, and its beat schedule."""

from protean_celery.outbox.relay import Relay, RelayReport
from protean_celery.outbox.schedule import beat_entries

__all__ = ["Relay", "RelayReport", "beat_entries"]
