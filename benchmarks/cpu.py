"""CPU time of one process tree, so a benchmark's figures survive a busy machine.

``compare.py`` starts PostgreSQL, Redis, the workers, beat and the saga driver as
its own descendants. Summing their CPU (``/proc/<pid>/stat``: user and system
time, plus that of the children each one already reaped, so a pool child that
ended still counts, through its parent) gives what the system under test spent,
whatever else runs on the machine.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

__all__ = ["tree_seconds", "tree_by_role"]


def tree_seconds(root: int) -> float:
    """CPU seconds spent so far by ``root`` and every process below it (reaped ones included)."""
    return sum(tree_by_role(root).values())


def tree_by_role(root: int) -> dict[str, float]:
    """CPU seconds spent so far by ``root``'s tree, per role (``postgres``, ``worker``, ``beat`` ...)."""
    parents: dict[int, list[int]] = defaultdict(list)
    spent: dict[int, float] = {}
    roles: dict[int, str] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = text[text.rindex(")") + 2:].split()
        # After the name: state, ppid, ..., utime (12th), stime, cutime, cstime.
        pid, ppid = int(entry.name), int(fields[1])
        parents[ppid].append(pid)
        spent[pid] = sum(int(value) for value in fields[11:15]) / tick
        roles[pid] = _role(entry)
    totals: dict[str, float] = defaultdict(float)
    todo = [root]
    while todo:
        pid = todo.pop()
        totals[roles.get(pid, "other")] += spent.get(pid, 0.0)
        todo.extend(parents.get(pid, ()))
    return dict(totals)


def _role(entry: Path) -> str:
    try:
        words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "other"
    line = " ".join(words)
    for role, marks in _ROLES:
        if any(mark in line for mark in marks):
            return role
    return "other"


#: How a command line names its role (first match wins); a pool child keeps its parent's command line.
_ROLES = (
    ("postgres", ("postgres",)),
    ("redis", ("redis-server",)),
    ("beat", (" beat",)),
    ("worker", (" worker", " server --domain", "multiprocessing")),  # protean server spawns its workers
    ("driver", ("saga_driver",)),
)
