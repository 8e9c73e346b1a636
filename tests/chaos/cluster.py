"""The worker nodes and beat processes of a chaos run, and their supervisor.

One node is ``celery worker -n worker@%h``; several are ``-n a@%h``, ``-n b@%h``, …,
each with its own log, as on several machines. Two beats at once is the mistake a
team makes sooner or later (a second deployment left running): both send every
relay tick, and the relay's claims must keep each row published once.

Like a process supervisor (systemd, Kubernetes), :meth:`Cluster.supervise` restarts
a node whose main process exits without being killed by the driver, and returns
each such crash with Celery's "Unrecoverable error" line.
"""

from __future__ import annotations

import random
import string
import threading
import time
from pathlib import Path

from protean_celery.testing.processes import BeatProcess, WorkerProcess
from protean_celery.testing.sqlite_locks import KilledWriter, child_of, kill_writer


class Cluster:
    """``nodes`` worker nodes and ``beats`` beat processes of app ``app``.

    Args:
        app: the ``-A`` module.
        nodes: worker nodes (named ``worker`` alone, else ``a``, ``b``, …).
        beats: beat processes.
        concurrency: pool size of each node.
        env: environment of every process.
        cwd: their working directory.
        state: directory for the logs.
    """

    def __init__(self, app: str, nodes: int, beats: int, concurrency: int, env: dict[str, str], cwd: Path,
                 state: Path) -> None:
        names = ["worker"] if nodes == 1 else list(string.ascii_lowercase[:nodes])
        self.workers = [
            WorkerProcess(app, concurrency, env=env, cwd=cwd, name=f"{name}@%h", log_path=state / f"{name}.log")
            for name in names
        ]
        self.beats = [BeatProcess(app, env=env, cwd=cwd, log_path=state / f"beat-{n}.log") for n in range(beats)]
        self.lock = threading.Lock()  # held while the driver itself kills and restarts a node
        self._checked = [0] * len(self.workers)

    def start(self) -> None:
        """Start every node, then every beat."""
        for process in [*self.workers, *self.beats]:
            process.start(timeout=120)

    def stop(self) -> None:
        """Stop every beat, then every node."""
        for process in [*self.beats, *self.workers]:
            process.stop()

    def log(self) -> str:
        """Every node's log, one after the other."""
        return "".join(worker.log() for worker in self.workers)

    def kill_child(self, rng: random.Random) -> int | None:
        """``kill -9`` a pool child of a running node (Celery replaces it); its pid."""
        running = [worker for worker in self.workers if worker.process and worker.process.poll() is None]
        return rng.choice(running).kill_child() if running else None

    def kill_writer(self, databases: list[Path], timeout: float = 30.0) -> KilledWriter | None:
        """``kill -9`` a pool child while it holds a SQLite file's write lock mid-transaction (or ``None``)."""
        return kill_writer(databases, child_of(self._running_pids), timeout=timeout)

    def _running_pids(self) -> list[int]:
        return [worker.pid for worker in self.workers if worker.process and worker.process.poll() is None]

    def kill_node(self, index: int) -> tuple[int, int]:
        """``kill -9`` node ``index``'s main process and start it again; the old and new pids."""
        worker = self.workers[index % len(self.workers)]
        with self.lock:  # not mistaken for a crash
            old = worker.pid
            worker.kill_main()
            time.sleep(1)
            self._checked[self.workers.index(worker)] = len(worker.log())
            worker.start(timeout=120)
            return old, worker.pid

    def supervise(self) -> list[str]:
        """Restart every node whose main process exited on its own; why each exited."""
        crashes = []
        with self.lock:
            for index, worker in enumerate(self.workers):
                process = worker.process
                if process is None or process.poll() is None:
                    continue
                log = worker.log()[self._checked[index]:]
                self._checked[index] += len(log)
                crashes.append(next((line.strip()[:300] for line in log.splitlines() if "Unrecoverable error" in line),
                                    f"exit code {process.returncode}"))
                worker.start(timeout=120)
        return crashes
