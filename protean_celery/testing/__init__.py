"""Test toolkit: deterministic drain, process_and_wait, real servers and worker processes.

Importing this package opens no connection and starts nothing.
"""

from protean_celery.testing.drain import DrainError, DrainReport, drain
from protean_celery.testing.process import ProcessResult, process_and_wait
from protean_celery.testing.servers import PostgresServer, RedisServer
from protean_celery.testing.testbed import Testbed
from protean_celery.testing.worker import BeatProcess, WorkerProcess

__all__ = [
    "drain",
    "DrainError",
    "DrainReport",
    "process_and_wait",
    "ProcessResult",
    "Testbed",
    "RedisServer",
    "PostgresServer",
    "WorkerProcess",
    "BeatProcess",
]
