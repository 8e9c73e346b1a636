"""Real Redis and PostgreSQL servers on 127.0.0.1 for tests and benchmarks.

Each starts from its real binary on a free loopback port in a temporary
directory and is stopped (and its directory removed) by ``stop()``. A missing
binary raises ``ServerBinaryNotFound`` saying how to install it: tests fail,
they never skip.

PostgreSQL refuses to run as root. When the tests run as root (CI does), the
server runs as the unprivileged system user ``protean-pg``, created on first use.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from protean_celery.errors import ServerBinaryNotFound, ServerError
from protean_celery.redis_server import RedisProcess, find_redis_server

__all__ = ["RedisServer", "PostgresServer", "free_port", "find_redis_server"]

PG_USER = "protean-pg"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.directory: Path | None = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class RedisServer(_Server):
    """``redis-server`` on a free 127.0.0.1 port (launched by :class:`~protean_celery.redis_server.RedisProcess`).

    Args:
        binary: the ``redis-server`` to run (default: ``find_redis_server()``).
        persistent: keep an append-only file fsynced on every write, so a
            ``kill -9`` and ``restart()`` lose no queued message (as a broker
            you rely on must be configured); off by default (faster tests).
        password: require it from every client (``requirepass``); the URL carries it.
    """

    def __init__(self, binary: str | None = None, persistent: bool = False, password: str | None = None) -> None:
        super().__init__()
        self.binary = binary
        self.persistent = persistent
        self.password = password
        self.server: RedisProcess | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (``redis://:<password>@…`` with a password)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        """Start and wait until it answers ``PING``."""
        binary = self.binary or find_redis_server()
        self.directory = Path(tempfile.mkdtemp(prefix="protean-redis-"))
        self.port = self.port or free_port()
        durability = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        auth = ["--requirepass", self.password] if self.password else []
        self.server = RedisProcess(
            ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *durability, "--dir", str(self.directory),
             *auth],
            log=self.directory / "redis.log",
            client=self._client,
            where=f"on port {self.port}",
        )
        self._spawn(binary, timeout)
        return self

    def _spawn(self, binary: str, timeout: float) -> None:
        assert self.server is not None
        self.server.start(binary, timeout)
        self.process = self.server.process

    def _client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=1)

    def kill(self) -> None:
        """``kill -9`` the server (queued messages survive only when ``persistent``)."""
        if self.server is not None:
            self.server.kill()

    def restart(self, timeout: float = 15.0) -> None:
        """Kill and start again on the same port."""
        self.kill()
        self._spawn(self.binary or find_redis_server(), timeout)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self.server is not None:
            self.server.stop()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


class PostgresServer(_Server):
    """A PostgreSQL cluster (``initdb`` + ``postgres``) on a free 127.0.0.1 port.

    Args:
        password: the ``postgres`` user's password, required over TCP
            (``scram-sha-256``); without one, connections are trusted.
        crash_safe: keep ``synchronous_commit`` on, so a commit is in the WAL before
            it returns and survives :meth:`crash_restart` (off by default: faster tests;
            ``fsync`` stays off either way, since the machine itself does not crash).
    """

    def __init__(self, password: str | None = None, crash_safe: bool = False) -> None:
        super().__init__()
        self.password = password
        self.crash_safe = crash_safe
        self.restarts = 0

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres``."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` on this server (with the password, if any)."""
        auth = f"postgres:{self.password}" if self.password else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{name}"

    def start(self, timeout: float = 60.0) -> PostgresServer:
        """``initdb`` a fresh cluster and start it; wait until it accepts connections."""
        initdb, postgres = _pg_binary("initdb"), _pg_binary("postgres")
        self.directory = Path(tempfile.mkdtemp(prefix="protean-pg-"))
        user = _pg_user()
        if user is not None:
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        data = self.directory / "data"
        self._run([initdb, "-D", str(data), "-U", "postgres", *self._auth(user), "-E", "UTF8", "--no-sync"], user)
        self.port = free_port()
        self._spawn(postgres, user, timeout)
        return self

    def crash_restart(self, timeout: float = 60.0) -> None:
        """Crash the server and start it again on the same data and port (``pg_ctl restart -m immediate``).

        SIGQUIT is PostgreSQL's immediate shutdown: every backend exits at once, without
        a checkpoint, and every client connection is cut; the next start runs crash
        recovery from the WAL. Use ``crash_safe=True`` for committed rows to survive.
        """
        self.kill()
        self.restart(timeout)

    def kill(self) -> None:
        """Immediate shutdown (SIGQUIT, ``pg_ctl stop -m immediate``): the server stays down until :meth:`restart`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            self.process.wait(timeout=30)

    def restart(self, timeout: float = 60.0) -> None:
        """Start the server again on its data and port (after :meth:`kill`); crash recovery runs first."""
        self._spawn(_pg_binary("postgres"), _pg_user(), timeout)
        self.restarts += 1

    def _spawn(self, postgres: str, user: pwd.struct_passwd | None, timeout: float) -> None:
        assert self.directory is not None
        commit = [] if self.crash_safe else ["-c", "synchronous_commit=off"]
        options = ["-c", "fsync=off", *commit, "-c", "full_page_writes=off",
                   "-c", "max_connections=200", "-c", f"unix_socket_directories={self.directory}",
                   "-c", "listen_addresses=127.0.0.1", "-p", str(self.port)]
        log = (self.directory / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [postgres, "-D", str(self.directory / "data"), *options], stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_demote(user), start_new_session=True,
        )
        self._wait_ready(timeout)

    def _auth(self, user: pwd.struct_passwd | None) -> list[str]:
        if not self.password:
            return ["-A", "trust"]
        assert self.directory is not None
        secret = self.directory / "pwfile"
        secret.write_text(self.password + "\n")
        if user is not None:
            os.chown(secret, user.pw_uid, user.pw_gid)
        return ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={secret}"]

    def _connect(self) -> Any:
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.password,
                                dbname="postgres")

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping an old one) and return its URL."""
        self.drop_database(name)
        self._admin(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server (fast shutdown: SIGINT; SIGTERM would wait for every client) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _admin(self, statement: str) -> None:
        conn = self._connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement)
        finally:
            conn.close()

    def _wait_ready(self, timeout: float) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(f"postgres exited with {self.process.returncode}: {self._log()}")
            try:
                self._connect().close()
                return
            except psycopg2.OperationalError:
                time.sleep(0.05)
        raise ServerError(f"postgres did not accept connections within {timeout}s: {self._log()}")

    def _run(self, command: list[str], user: pwd.struct_passwd | None) -> None:
        result = subprocess.run(command, capture_output=True, preexec_fn=_demote(user))
        if result.returncode != 0:
            raise ServerError(f"{Path(command[0]).name} failed: {result.stderr.decode(errors='replace')[-2000:]}")

    def _log(self) -> str:
        log = (self.directory or Path("/nonexistent")) / "postgres.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""


def _pg_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).is_file():
            return str(folder / name)
    raise ServerBinaryNotFound(
        f"PostgreSQL's {name} is not installed: apt-get install -y postgresql "
        "(or put initdb, pg_ctl and postgres on PATH)."
    )


def _pg_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                       check=True, capture_output=True)
        return pwd.getpwnam(PG_USER)


def _demote(user: pwd.struct_passwd | None) -> Any:
    if user is None:
        return None

    def set_ids() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return set_ids
