"""Real ``celery worker`` and ``celery beat`` subprocesses for tests, benchmarks and demos.

``WorkerProcess("workers.orders.app", concurrency=2).start()`` runs
``celery -A workers.orders.app worker -P prefork -c 2`` in its own process
group, waits until Celery logs ``ready``, and offers a warm stop, ``kill -9``
of the main process or of a pool child (for crash tests), and its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from protean_celery.errors import ServerError

__all__ = ["CeleryProcess", "WorkerProcess", "BeatProcess", "children_of"]


class CeleryProcess:
    """A ``celery -A app <command>`` subprocess with a log file.

    Args:
        app: the ``-A`` argument (``module`` or ``module:attribute``).
        args: the command and its options (``["worker", "-c", "2"]``).
        env: extra environment variables (``CELERY_BROKER_URL`` …).
        cwd: working directory (default: the current one).
        ready_text: the log line that means "started".
    """

    ready_text = "ready"

    def __init__(
        self,
        app: str,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.app = app
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.cwd = str(cwd) if cwd else None
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="celery-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The main process id."""
        if self.process is None:
            raise ServerError("the celery process is not running: call start() first")
        return self.process.pid

    def start(self, timeout: float = 60.0) -> CeleryProcess:
        """Start the process (again, after a kill) and wait until it logs that it is ready.

        Raises:
            ServerError: it exited or did not become ready in ``timeout`` seconds.
        """
        command = [sys.executable, "-m", "celery", "-A", self.app, *self.args]
        offset = len(self.log())  # a restart appends to the same log: wait for a new "ready"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, start_new_session=True
            )
        self.wait_for(self.ready_text, timeout=timeout, after=offset)
        return self

    def wait_for(self, text: str, timeout: float = 60.0, after: int = 0) -> None:
        """Wait until ``text`` appears in the log (past byte ``after``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log()[after:]:
                return
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(f"celery {self.args[0]} exited with {self.process.returncode}:\n{self.tail()}")
            time.sleep(0.05)
        raise ServerError(f"celery {self.args[0]} did not log {text!r} within {timeout}s:\n{self.tail()}")

    def log(self) -> str:
        """Everything the process has logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int | None:
        """Warm shutdown (SIGTERM: finish running tasks), then SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self._signal_group(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def kill(self) -> None:
        """``kill -9`` the whole process group: the main process and every child."""
        if self.process is None or self.process.poll() is not None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def kill_main(self) -> None:
        """``kill -9`` the main process only; orphaned pool children notice and exit."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def __enter__(self) -> CeleryProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class WorkerProcess(CeleryProcess):
    """``celery -A app worker -P prefork -c N``.

    Args:
        app: the ``-A`` argument.
        concurrency: pool size.
        env: extra environment variables.
        cwd: working directory.
        name: worker node name (``-n``).
        extra: further worker options.
    """

    ready_text = " ready."

    def __init__(
        self,
        app: str,
        concurrency: int = 2,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        name: str = "worker@%h",
        extra: Sequence[str] = (),
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        args = ["worker", "-P", "prefork", "-c", str(concurrency), "-n", name, "-l", "info",
                "--without-gossip", "--without-mingle", *extra]
        super().__init__(app, args, env=env, cwd=cwd, log_path=log_path)

    def children(self) -> list[int]:
        """The pids of the pool's child processes."""
        return children_of(self.pid)

    def kill_child(self) -> int | None:
        """``kill -9`` one pool child (Celery replaces it); returns its pid."""
        kids = self.children()
        if not kids:
            return None
        os.kill(kids[0], signal.SIGKILL)
        return kids[0]


class BeatProcess(CeleryProcess):
    """``celery -A app beat`` with its schedule file in a temporary directory."""

    ready_text = "beat: Starting"

    def __init__(
        self,
        app: str,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        state = Path(tempfile.mkdtemp(prefix="celery-beat-"))
        args = ["beat", "-l", "info", "-s", str(state / "schedule"), "--pidfile", str(state / "beat.pid")]
        super().__init__(app, args, env=env, cwd=cwd, log_path=log_path)


def children_of(pid: int) -> list[int]:
    """Live direct children of ``pid`` (read from ``/proc``; zombies left out)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":  # a killed child not reaped yet is gone
            kids.append(int(entry.name))
    return sorted(kids)
