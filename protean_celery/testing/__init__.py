"""Test toolkit: deterministic drain, process_and_wait, a fake clock, real servers and worker processes.

Importing this package opens no connection and starts nothing.
"""

from protean_celery.testing.clock import FakeClock
from protean_celery.testing.commands import ProcessResult, process_and_wait
from protean_celery.testing.drain import DrainError, DrainReport, drain
from protean_celery.testing.processes import BeatProcess, WorkerProcess
from protean_celery.testing.servers import PostgresServer, RedisServer
from protean_celery.testing.testbed import Testbed

__all__ = [
    "FakeClock",
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
