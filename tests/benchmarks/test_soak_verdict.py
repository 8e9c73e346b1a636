"""The soak's verdict (``benchmarks/soak_verdict.py``): flat runs pass; decay, leaks, unbounded tables fail."""

from dataclasses import replace

from benchmarks.soak_probe import TABLES, Sample
from benchmarks.soak_verdict import Limits, judge, load_note, table

LIMITS = Limits(warmup=60, settle=120)


def _run(minutes=10, throughput=lambda m: 5.0, rss=lambda m: 200.0, redis=lambda m: 2.0,
         rows=lambda m: 1000) -> list[Sample]:
    return [
        Sample(elapsed=60.0 * m, placed=300 * m, ended=300 * m, throughput=throughput(m), rss_mb=rss(m),
               children=2, redis_mb=redis(m), rows={label: rows(m) for label in TABLES}, load=1.0)
        for m in range(1, minutes + 1)
    ]


def _failed(checks) -> set[str]:
    return {check.name for check in checks if not check.ok}


def test_a_flat_run_passes_every_rule():
    checks = judge(_run(), LIMITS, unfinished=0)
    assert _failed(checks) == set()
    assert {check.name for check in checks} == {
        "throughput", "worker RSS", "Redis memory", "completion", *(f"{label} rows" for label in TABLES)
    }


def test_throughput_that_decays_by_more_than_the_tolerance_fails():
    assert _failed(judge(_run(throughput=lambda m: 5.0 - 0.2 * m), LIMITS, 0)) == {"throughput"}


def test_a_noisy_window_within_the_tolerance_passes():
    noisy = _run(throughput=lambda m: 4.0 if m == 9 else 5.0)
    assert _failed(judge(noisy, LIMITS, 0)) == set()


def test_growing_worker_memory_fails_and_a_drop_does_not():
    assert _failed(judge(_run(rss=lambda m: 200.0 + 10 * m), LIMITS, 0)) == {"worker RSS"}
    assert _failed(judge(_run(rss=lambda m: 200.0 - 10 * m), LIMITS, 0)) == set()


def test_growing_redis_memory_fails():
    assert _failed(judge(_run(redis=lambda m: 2.0 + 0.2 * m), LIMITS, 0)) == {"Redis memory"}


def test_a_table_maintenance_does_not_prune_fails():
    assert _failed(judge(_run(rows=lambda m: 1000 * m), LIMITS, 0)) == {f"{label} rows" for label in TABLES}


def test_tables_are_judged_only_once_the_retention_could_act():
    # Growing during the first 3 minutes (retention not yet reached), flat after: bounded.
    samples = _run(rows=lambda m: 1000 * min(m, 3))
    assert _failed(judge(samples, Limits(warmup=60, settle=180), 0)) == set()


def test_sagas_that_never_ended_fail_completion():
    assert _failed(judge(_run(), LIMITS, unfinished=3)) == {"completion"}


def test_too_short_a_run_fails_rather_than_passes():
    assert "throughput" in _failed(judge(_run(minutes=1), LIMITS, 0))


def test_the_table_has_a_header_and_a_line_per_sample():
    lines = table(_run(minutes=3))
    assert len(lines) == 4
    assert "sagas/s" in lines[0] and "inbox" in lines[0]
    assert lines[2].split()[:3] == ["2.0", "600", "600"]


def test_a_rising_machine_load_is_noted_and_a_steady_one_is_not():
    steady = _run()
    busy = [replace(sample, load=1.0 if sample.elapsed < 300 else 4.0) for sample in steady]
    assert load_note(steady, LIMITS) is None
    assert "rose from 1.0 to 4.0" in load_note(busy, LIMITS)
