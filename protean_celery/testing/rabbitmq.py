"""A real RabbitMQ broker on 127.0.0.1 for tests and benchmarks.

``RabbitMQServer().start()`` runs ``rabbitmq-server`` (Debian's package:
``apt-get install -y rabbitmq-server``; the system service is not used) as a
private node on free loopback ports, with its database, logs and Erlang cookie
in a temporary directory, and waits until an AMQP connection succeeds.
``stop()`` stops the node and removes the directory. A missing binary raises
``ServerBinaryNotFound``: tests fail, they never skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from protean_celery.errors import ServerBinaryNotFound, ServerError
from protean_celery.testing.servers import free_port

__all__ = ["RabbitMQServer", "find_rabbitmq_server"]

#: Where Debian's package keeps the script that runs the node as the calling user
#: (``/usr/sbin/rabbitmq-server`` switches to the ``rabbitmq`` user).
_DEBIAN_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def find_rabbitmq_server() -> str:
    """``$PROTEAN_CELERY_RABBITMQ_SERVER``, else Debian's ``rabbitmq-server`` script."""
    for candidate in (os.environ.get("PROTEAN_CELERY_RABBITMQ_SERVER"), _DEBIAN_SERVER):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ServerBinaryNotFound(
        "No rabbitmq-server found: apt-get install -y rabbitmq-server, or set "
        "PROTEAN_CELERY_RABBITMQ_SERVER to a script that runs a node as the current user."
    )


class RabbitMQServer:
    """A private RabbitMQ node on a free 127.0.0.1 port (user ``guest``, password ``guest``)."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary
        self.port = 0
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``amqp://guest:guest@127.0.0.1:<port>//``."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self, timeout: float = 90.0) -> RabbitMQServer:
        """Start the node and wait until it accepts an AMQP connection.

        Raises:
            ServerError: it exited or did not accept a connection in ``timeout`` seconds.
        """
        binary = self.binary or find_rabbitmq_server()
        self.directory = Path(tempfile.mkdtemp(prefix="protean-rabbitmq-"))
        self.port = free_port()
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        env = {
            **os.environ,
            "HOME": str(self.directory),  # the Erlang cookie goes here
            "RABBITMQ_NODENAME": f"protean{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(self.directory / "rabbitmq.pid"),
        }
        self._env, self._binary = env, binary
        self._spawn(timeout)
        return self

    def _spawn(self, timeout: float) -> None:
        assert self.directory is not None
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(
            [self._binary], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self._env,
            cwd=self.directory, start_new_session=True,
        )
        self._wait_ready(timeout)

    def kill(self) -> None:
        """``kill -9`` the node (durable queues and persistent messages survive on disk)."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)

    def restart(self, timeout: float = 90.0) -> None:
        """Kill the node and start it again on the same port and database."""
        self.kill()
        self._spawn(timeout)

    def _wait_ready(self, timeout: float) -> None:
        from kombu import Connection

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(f"rabbitmq-server exited with {self.process.returncode}: {self._log()}")
            try:
                with Connection(self.url, connect_timeout=1) as connection:
                    connection.ensure_connection(max_retries=1)
                return
            except Exception:
                time.sleep(0.5)
        raise ServerError(f"rabbitmq-server did not accept connections on port {self.port} within {timeout}s: "
                          f"{self._log()}")

    def stop(self) -> None:
        """Stop the node (SIGTERM to its process group, then SIGKILL) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        # epmd outlives the node; it refuses to stop while other nodes are registered.
        subprocess.run(["epmd", "-kill"], capture_output=True, check=False)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _log(self) -> str:
        log = (self.directory or Path("/nonexistent")) / "server.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def __enter__(self) -> RabbitMQServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
