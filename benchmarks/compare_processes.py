"""The long-running processes of ``compare.py``: `protean server` and protean-celery's worker and beat.

Each is a context manager that starts its process in a session of its own (so
Ctrl-C reaches only the benchmark, which then stops it) and stops the whole
process group on exit, with SIGKILL when a warm stop hangs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from protean_celery.testing.processes import BeatProcess, CeleryProcess, WorkerProcess

__all__ = ["ProteanServerProcess", "celery_processes"]

APP = "workers.orders.app"
ROOT = Path(__file__).resolve().parents[1]
PROTEAN = str(Path(sys.executable).with_name("protean"))
# Every command category and event category the orders domain subscribes to.
STREAMS = ("orders::order", "orders::inventory", "orders::payment", "orders::shipment")


class ProteanServerProcess:
    """``protean server --domain benchmarks.protean_server_domain --workers N``.

    Ready once every worker has joined the consumer groups of the saga's event
    streams in Redis (``REDIS_URL``).

    Args:
        workers: the ``--workers`` value.
        env: the environment (``PROTEAN_ENV=bench_server`` and its URLs).
        log_path: where the server's output goes.
    """

    def __init__(self, workers: int, env: dict[str, str], log_path: Path) -> None:
        self.workers = workers
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ProteanServerProcess:
        command = [PROTEAN, "--log-level", "WARNING", "server", "--domain", "benchmarks.protean_server_domain",
                   "--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self._wait_ready(timeout=90)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        import redis

        client = redis.Redis.from_url(self.env["REDIS_URL"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"protean server exited with {self.process.returncode}: {self._tail()}")
            if all(self._joined(client, stream) for stream in STREAMS):
                return
            time.sleep(0.2)
        raise RuntimeError(f"protean server's {self.workers} workers did not join their streams in {timeout}s: "
                           f"{self._tail()}")

    def _joined(self, client: Any, stream: str) -> bool:
        try:
            groups = client.xinfo_groups(stream)
        except Exception:  # the stream does not exist yet
            return False
        return bool(groups) and all(group["consumers"] >= self.workers for group in groups)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the process group (Protean's supervisor drains its workers), SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def _tail(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-20:])


def celery_processes(concurrency: int, env: dict[str, str], log_prefix: Path) -> list[CeleryProcess]:
    """``celery worker -c N`` and ``celery beat`` for the orders app (not started)."""
    worker = WorkerProcess(APP, concurrency=concurrency, env=env, cwd=ROOT, log_path=f"{log_prefix}-worker.log")
    beat = BeatProcess(APP, env=env, cwd=ROOT, log_path=f"{log_prefix}-beat.log")
    return [worker, beat]
