"""The table and the ratios ``compare.py`` prints, from the saga driver's results."""

from __future__ import annotations

from typing import Any

__all__ = ["render", "valid"]

LABELS = {
    "inline": "inline (sync, one process)",
    "server": "protean server --workers {c}",
    "celery": "protean-celery -c {c}, PostgreSQL",
    "outbox_off": "protean-celery -c {c}, PG, outbox off",
    "embedded": "protean-celery -c {c}, embedded",
}
# (numerator, denominator, what is compared, issue 9's target)
RATIOS = (
    (("celery", "burst"), ("server", "burst"), "throughput celery / protean server", ">= 2.0"),
    (("celery", "burst"), ("inline", "burst"), "throughput celery / inline", ">= 1.45"),
    (("celery", "light_domain"), ("inline", "burst"), "p50 domain.process / inline saga time", "<= 1.5"),
    (("celery", "light_app"), ("inline", "burst"), "p50 app.process / inline saga time", "<= 1.5"),
    (("outbox_off", "burst"), ("server", "burst"), "throughput outbox off / protean server", ">= 2.0"),
    (("outbox_off", "burst"), ("inline", "burst"), "throughput outbox off / inline", ">= 1.45"),
    (("outbox_off", "light_domain"), ("inline", "burst"), "p50 domain.process (outbox off) / inline", "<= 1.5"),
    (("embedded", "burst"), ("celery", "burst"), "throughput embedded / PostgreSQL", ">= 0.5"),
)


def valid(result: dict[str, Any]) -> bool:
    """Whether every phase of a system ran and ended all the sagas it placed."""
    phases = [value for value in result.values() if isinstance(value, dict)]
    return "error" not in result and bool(phases) and all(
        phase["completed"] + phase["compensated"] == phase["placed"] for phase in phases
    )


def render(results: dict[str, Any], concurrency: int, cpu: dict[str, float] | None = None) -> str:
    """One table (a row per system), the ratios of the valid systems, and the CPU each spent per saga."""
    header = ("system", "ended", "sagas/s", "handlers/s", "CPU/saga", "p50/p95 domain.process", "p50/p95 app.process")
    rows = [header]
    for system, result in results.items():
        rows.append(_row(LABELS[system].format(c=concurrency), result))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines = ["", lines[0], "  ".join("-" * width for width in widths), *lines[1:]]
    lines += ["", "ratio                                      value   target"]
    for top, bottom, what, target in RATIOS:
        lines.append(f"{what:<42} {_ratio(results, top, bottom, what):>6}   {target}")
    lines.append("inline p50/p95 is each domain.process call running its whole saga; handlers/s counts "
                 "17 invocations per completed saga and 13 per compensated one.")
    lines.append("CPU/saga: CPU time of the burst's processes only (the databases, Redis, workers, beat and "
                 "the driver, all started by this run), so other work on the machine does not count.")
    roles = {system: result["burst"]["cpu_ms_by_role"] for system, result in results.items()
             if isinstance(result.get("burst"), dict) and result["burst"].get("cpu_ms_by_role")}
    if roles:
        lines += ["", "CPU/saga of the burst by process (ms)"]
        for system, split in roles.items():
            shares = sorted(split.items(), key=lambda item: -item[1])
            label = LABELS[system].format(c=concurrency)
            lines.append(f"  {label:<36} " + ", ".join(f"{r} {ms:.0f}" for r, ms in shares))
    if cpu:
        lines += ["", "Machine busy time per saga over the whole system run (setup, start, every phase; every "
                  "process of the machine counts: only meaningful on an otherwise idle machine)"]
        lines += [f"  {LABELS[system].format(c=concurrency):<36} {ms:6.0f} ms" for system, ms in cpu.items()]
    return "\n".join(lines)


def _row(label: str, result: dict[str, Any]) -> tuple[str, ...]:
    if "error" in result:
        return (label, "failed: " + result["error"].splitlines()[-1][:80], "", "", "", "", "")
    burst = result.get("burst", {})
    ended = sum(p["completed"] + p["compensated"] for p in result.values())
    placed = sum(p["placed"] for p in result.values())
    marker = "" if valid(result) else " INVALID"
    domain = result.get("light_domain", burst if "p50_ms" in burst else {})
    return (
        label,
        f"{ended}/{placed}{marker}",
        f"{burst.get('sagas_per_s', 0):.1f}" if burst else "-",
        f"{burst.get('handlers_per_s', 0):.0f}" if burst else "-",
        f"{burst['cpu_ms_per_saga']:.0f} ms" if burst.get("cpu_ms_per_saga") else "-",
        _latency(domain),
        _latency(result.get("light_app", {})),
    )


def _latency(phase: dict[str, Any]) -> str:
    return f"{phase['p50_ms']:.0f} / {phase['p95_ms']:.0f} ms" if phase.get("p50_ms") else "-"


def _ratio(results: dict[str, Any], top: tuple[str, str], bottom: tuple[str, str], what: str) -> str:
    first, second = results.get(top[0], {}), results.get(bottom[0], {})
    if not (valid(first) and valid(second)) or top[1] not in first or bottom[1] not in second:
        return "-"
    key = "p50_ms" if "p50" in what else "sagas_per_s"
    value, base = first[top[1]].get(key, 0), second[bottom[1]].get(key, 0)
    return f"{value / base:.2f}" if base else "-"
