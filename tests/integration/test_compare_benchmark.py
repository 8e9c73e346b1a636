"""``benchmarks/compare.py --quick``: every system it runs ends all its sagas, and it prints the table.

No timing is asserted: the benchmark measures, the ratios are read by people.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = {"inline", "server", "celery", "outbox_off", "embedded"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "results.json"
    command = [sys.executable, "benchmarks/compare.py", "--quick", "--orders", "3", "--light", "1",
               "--json", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, json.loads(out.read_text())


def test_every_system_runs_and_ends_every_saga_it_places(quick_run):
    _, results = quick_run
    assert set(results) == SYSTEMS
    for system, result in results.items():
        assert "error" not in result, f"{system}: {result}"
        phases = {name: phase for name, phase in result.items()}
        assert phases, system
        for name, phase in phases.items():
            assert phase["placed"] > 0, (system, name)
            assert phase["completed"] + phase["compensated"] == phase["placed"], (system, name, phase)


def test_protean_celery_is_measured_placed_both_ways(quick_run):
    _, results = quick_run
    assert set(results["celery"]) == {"burst", "light_domain", "light_app"}
    assert results["celery"]["light_domain"]["p50_ms"] > 0
    assert results["celery"]["light_app"]["p50_ms"] > 0


def test_prints_one_row_per_system_and_the_ratios(quick_run):
    output, _ = quick_run
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("system "))
    rows = lines[header + 2:header + 7]
    assert [row.split("  ")[0] for row in rows] == [
        "inline (sync, one process)", "protean server --workers 2",
        "protean-celery -c 2, PostgreSQL", "protean-celery -c 2, PG, outbox off", "protean-celery -c 2, embedded",
    ]
    assert all("/" in row and "INVALID" not in row for row in rows)
    assert "throughput celery / protean server" in output
    assert "throughput embedded / PostgreSQL" in output
    assert "throughput outbox off / protean server" in output
    assert "CPU/saga of the burst by process" in output  # the CPU of the system's own processes, by role
