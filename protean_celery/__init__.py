"""protean-celery: run a Protean domain's asynchronous side on Celery and Kombu."""

from __future__ import annotations

__version__ = "0.1.0"
