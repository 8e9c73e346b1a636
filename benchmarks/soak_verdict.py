"""The soak's pass/fail rules and its table (pure: no I/O).

Samples after the warm-up are split in thirds; each rule compares the mean of
the last third with the mean of the first, so one noisy window (another
process on the machine, a maintenance tick landing just before a reading)
does not decide the run:

* throughput: the last third's sagas/s at least ``1 - tolerance`` of the first's;
* memory: the worker children's RSS and Redis ``used_memory`` of the last third
  at most ``1 + tolerance`` of the first's (a drop is not a leak);
* tables: once maintenance has had time to act (after the warm-up and after
  the retention plus two maintenance ticks since the load started), each
  table's last-third mean at most ``1 + tolerance`` of its first-third mean,
  plus ``slack`` rows;
* completion: every placed saga ended once the load stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.soak_probe import TABLES, Sample

__all__ = ["Check", "Limits", "header", "judge", "load_note", "row", "table"]


@dataclass(frozen=True)
class Limits:
    """What the run is judged against.

    Attributes:
        warmup: seconds of samples left out of every rule.
        settle: seconds from the start left out of the table rule (retention plus two maintenance ticks).
        tolerance: the allowed change, as a fraction (0.10: 10%).
        slack: rows a table may grow beyond ``tolerance`` (the saw-tooth of maintenance ticks).
    """

    warmup: float
    settle: float
    tolerance: float = 0.10
    slack: int = 50


@dataclass(frozen=True)
class Check:
    """One rule's outcome, as printed in the verdict."""

    name: str
    ok: bool
    detail: str


def judge(samples: Sequence[Sample], limits: Limits, unfinished: int) -> list[Check]:
    """Every rule applied to ``samples``; ``unfinished`` is how many sagas had not ended after the drain."""
    steady = [s for s in samples if s.elapsed > limits.warmup]
    settled = [s for s in steady if s.elapsed > limits.settle]
    checks = [
        _trend("throughput", steady, lambda s: s.throughput, limits.tolerance, grows=False, unit="sagas/s"),
        _trend("worker RSS", steady, lambda s: s.rss_mb, limits.tolerance, grows=True, unit="MiB"),
        _trend("Redis memory", steady, lambda s: s.redis_mb, limits.tolerance, grows=True, unit="MiB"),
    ]
    for label in TABLES:
        checks.append(_trend(f"{label} rows", settled, lambda s, key=label: s.rows[key], limits.tolerance,
                             grows=True, unit="rows", slack=limits.slack))
    checks.append(Check("completion", unfinished == 0,
                        "every placed saga ended" if unfinished == 0 else f"{unfinished} sagas never ended"))
    return checks


def _trend(name: str, samples: Sequence[Sample], read: Callable[[Sample], float], tolerance: float, grows: bool,
           unit: str, slack: float = 0.0) -> Check:
    if len(samples) < 2:
        return Check(name, False, f"only {len(samples)} sample(s) after the warm-up: run longer")
    third = max(len(samples) // 3, 1)
    first = sum(read(s) for s in samples[:third]) / third
    last = sum(read(s) for s in samples[-third:]) / third
    change = (last - first) / first if first else 0.0
    if grows:
        ok = last <= first * (1 + tolerance) + slack
    else:
        ok = last >= first * (1 - tolerance)
    digits = 2 if unit == "sagas/s" else 1
    detail = (f"{first:.{digits}f} -> {last:.{digits}f} {unit} ({change:+.1%}; "
              f"limit {'+' if grows else '-'}{tolerance:.0%})")
    return Check(name, ok, detail)


def load_note(samples: Sequence[Sample], limits: Limits) -> str | None:
    """A warning when the machine's load rose by more than half between the first and last third.

    Other work on the machine takes CPU from the soak: a throughput drop that comes
    with it is not the system's own decay. The rules do not excuse it; this says so.
    """
    steady = [s for s in samples if s.elapsed > limits.warmup]
    if len(steady) < 2:
        return None
    third = max(len(steady) // 3, 1)
    first = sum(s.load for s in steady[:third]) / third
    last = sum(s.load for s in steady[-third:]) / third
    if last <= first * 1.5:
        return None
    return (f"note: the machine's load average rose from {first:.1f} to {last:.1f} during the run; other work "
            "took CPU from the soak, so a throughput drop may not be the system's own decay.")


def header() -> str:
    """The column names of :func:`row`."""
    counts = "  ".join(f"{label:>12}" for label in TABLES)
    return f"  min  placed   ended  sagas/s  RSS MiB (n)  Redis MiB  queued  {counts}  load"


def table(samples: Sequence[Sample]) -> list[str]:
    """The per-window table: :func:`header`, then one :func:`row` per sample."""
    return [header(), *(row(s) for s in samples)]


def row(sample: Sample) -> str:
    """One sample as a line of :func:`table`."""
    counts = "  ".join(f"{sample.rows.get(label, 0):>12}" for label in TABLES)
    return (f"{sample.elapsed / 60:5.1f}  {sample.placed:6d}  {sample.ended:6d}  {sample.throughput:7.2f}  "
            f"{sample.rss_mb:7.1f} ({sample.children})  {sample.redis_mb:9.2f}  {sample.queued:6d}  {counts}  "
            f"{sample.load:4.2f}")
