"""Who holds a SQLite database's write lock, seen from outside, and a ``kill -9`` of that writer (Linux).

In WAL mode (protean-celery's SQLite engines and Protean's, once tuned) a write
transaction holds an exclusive POSIX lock on byte 120 of the database's ``-shm``
file, SQLite's WAL write lock, from its first write (or ``BEGIN IMMEDIATE``) until
its commit or rollback. ``/proc/locks`` lists every such lock with the process
that holds it, so a test or the chaos driver can tell, without any hook in the
code under test, which process is inside a write transaction right now.

:func:`kill_writer` kills one deterministically: it finds a holder, stops it
(``SIGSTOP``: it cannot commit while stopped), reads the locks again, and only if
the stopped process still holds the write lock sends ``SIGKILL``. The process
dies holding the lock, in the middle of its transaction; the kernel releases the
lock with the process.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WAL_WRITE_LOCK_BYTE", "KilledWriter", "write_lock_holders", "kill_writer", "child_of"]

#: The byte of the ``-shm`` file whose exclusive lock is SQLite's WAL write lock.
WAL_WRITE_LOCK_BYTE = 120

PROC_LOCKS = Path("/proc/locks")


@dataclass(frozen=True)
class KilledWriter:
    """A process killed while it held a database's write lock."""

    pid: int
    database: Path


def write_lock_holders(database: str | os.PathLike[str], locks: str | None = None) -> set[int]:
    """The pids holding ``database``'s WAL write lock right now (empty when none, or no ``-shm`` file yet).

    Args:
        database: the SQLite file (its ``-shm`` file is looked up next to it).
        locks: the text of ``/proc/locks`` (read when not given).
    """
    try:
        shm = os.stat(f"{os.fspath(database)}-shm")
    except FileNotFoundError:
        return set()
    inode = f"{os.major(shm.st_dev):02x}:{os.minor(shm.st_dev):02x}:{shm.st_ino}"
    holders = set()
    for line in (PROC_LOCKS.read_text() if locks is None else locks).splitlines():
        fields = line.split()
        if "->" in fields or len(fields) < 8:  # a process waiting for a lock, not holding it
            continue
        kind, mode, pid, where, start, end = fields[1], fields[3], fields[4], fields[5], fields[6], fields[7]
        if kind == "POSIX" and mode == "WRITE" and where == inode and _covers(start, end):
            holders.add(int(pid))
    return holders


def kill_writer(
    databases: Sequence[str | os.PathLike[str]],
    target: Callable[[int], bool],
    timeout: float = 30.0,
    poll: float = 0.002,
) -> KilledWriter | None:
    """``kill -9`` a process while it holds one of ``databases``' write lock, mid-transaction.

    Polls ``/proc/locks`` until a holder that ``target(pid)`` accepts appears, stops
    it, and kills it only if it still holds the lock once stopped (else lets it go
    on and keeps looking).

    Args:
        databases: the SQLite files to watch, in order of preference.
        target: which pids may be killed (e.g. :func:`child_of` a worker).
        timeout: seconds to look for one.
        poll: seconds between two reads of ``/proc/locks``.

    Returns:
        The process killed and the database whose lock it held, or ``None`` when
        no acceptable writer held a lock within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for database in databases:
            for pid in sorted(write_lock_holders(database)):
                if target(pid) and _kill_holding(pid, database):
                    return KilledWriter(pid, Path(database))
        time.sleep(poll)
    return None


def child_of(parents: Callable[[], Iterable[int]]) -> Callable[[int], bool]:
    """A ``target`` for :func:`kill_writer`: processes whose parent is one of ``parents()``."""

    def accepts(pid: int) -> bool:
        return _parent(pid) in set(parents())

    return accepts


def _kill_holding(pid: int, database: str | os.PathLike[str]) -> bool:
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return False
    if not _stopped(pid) or pid not in write_lock_holders(database):
        os.kill(pid, signal.SIGCONT)  # it committed (or rolled back) before it stopped
        return False
    os.kill(pid, signal.SIGKILL)
    return True


def _stopped(pid: int, timeout: float = 5.0) -> bool:
    """Wait until ``pid`` is in the stopped state (``SIGSTOP`` is delivered asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _stat(pid)[0] in ("T", "t"):
            return True
        time.sleep(0.001)
    return False


def _parent(pid: int) -> int:
    return int(_stat(pid)[1])


def _stat(pid: int) -> list[str]:
    """``state`` and ``ppid`` (the fields after the command) of ``/proc/<pid>/stat``; ``["X", "0"]`` when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ["X", "0"]


def _covers(start: str, end: str) -> bool:
    last = float("inf") if end == "EOF" else int(end)
    return int(start) <= WAL_WRITE_LOCK_BYTE <= last
