"""`protean metrics --once` and `protean health` against a real worker on a real Redis (the orders example).

Orders are placed with ``outbox_ops.py`` (each leaves one pending outbox row that only a
relay run publishes), scraped while they wait, relayed, and scraped again once every saga
ended. The health probes answer 0 with everything up, and 1 naming the failing component,
within their timeout, when the broker is a closed port or a port that never answers.
"""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from protean_celery.testing.processes import WorkerProcess
from tests.integration.orders import ROOT
from tests.integration.test_outbox_health import ops, wait_completed

pytestmark = pytest.mark.integration

APP = "workers.orders.app"
NODE = f"probes@{socket.gethostname()}"
ORDERS = ["m1", "m2", "m3"]


@pytest.fixture
def env(redis_server, tmp_path):
    import redis

    url = redis_server.url.rsplit("/", 1)[0] + "/11"
    redis.Redis.from_url(url).flushdb()  # other tests share this Redis: no message of theirs reaches our worker
    return {**os.environ, "CELERY_BROKER_URL": url, "PROTEAN_CELERY_STATE": str(tmp_path),
            "PROTEAN_NO_AUTO_LOGGING": "1", "PYTHONPATH": str(ROOT)}


def protean(env, *args):
    return subprocess.run([sys.executable, "-m", "celery", "-A", APP, "protean", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def scrape(env):
    """One ``metrics --once``: {name: {labels: value}} (asserting it exited 0)."""
    result = protean(env, "metrics", "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(result.stdout):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def settled(metrics):
    """Nothing left to relay, queued or held anywhere."""
    return (sum(metrics["protean_celery_outbox_pending"].values()) == 0
            and metrics["protean_celery_relay_pending"][()] == 0
            and sum(metrics["protean_celery_queue_depth"].values()) == 0
            and metrics["protean_celery_in_flight_messages"][()] == 0)


def wait_settled(env, timeout=60.0):
    deadline = time.monotonic() + timeout
    metrics = scrape(env)
    while not settled(metrics) and time.monotonic() < deadline:
        time.sleep(0.5)
        metrics = scrape(env)
    return metrics


def test_a_scrape_while_orders_wait_and_after_every_saga_ended(env, tmp_path):
    with WorkerProcess(APP, concurrency=2, env=env, name="probes@%h", log_path=tmp_path / "worker.log") as worker:
        ops(env, *(f"place:{order_id}" for order_id in ORDERS))
        waiting = scrape(env)
        assert waiting["protean_celery_outbox_pending"][(("provider", "default"),)] == len(ORDERS)
        assert waiting["protean_celery_outbox_oldest_pending_age_seconds"][(("provider", "default"),)] > 0
        assert set(waiting["protean_celery_up"].values()) == {1.0}

        ops(env, "relay")
        wait_completed(tmp_path, ORDERS, worker)
        after = wait_settled(env)
        assert settled(after), after
    depths = after["protean_celery_queue_depth"]
    assert len(depths) >= 4 and set(depths.values()) == {0.0}  # every handler queue and the relay queue
    assert set(after["protean_celery_queue_lag_seconds"].values()) == {0.0}  # Redis shows it: empty queues
    assert set(after["protean_celery_dead_letters"].values()) == {0.0}
    assert after["protean_celery_commands_unrelayed"][()] == 0
    assert sum(after["protean_celery_inbox_markers"].values()) >= 2 * len(ORDERS)  # handled, and remembered
    assert set(after["protean_celery_up"].values()) == {1.0}


def test_health_exit_codes_with_the_worker_up_and_down(env, tmp_path):
    ops(env, "place:h1")  # creates the tables, leaves a row for the worker's relay
    with WorkerProcess(APP, concurrency=1, env=env, name="probes@%h", log_path=tmp_path / "worker.log") as worker:
        ops(env, "relay")
        wait_completed(tmp_path, ["h1"], worker)
        ready = protean(env, "health", "--readiness", "--json")
        assert ready.returncode == 0, ready.stdout + ready.stderr
        assert {check["name"] for check in json.loads(ready.stdout)["checks"]} >= {"broker", "workers", "relay"}
        alive = protean(env, "health", "--liveness", "--node", NODE)
        assert alive.returncode == 0 and alive.stdout.startswith("healthy (liveness): workers"), alive.stdout
    gone = protean(env, "health", "--liveness", "--node", NODE, "--timeout", "2")
    assert gone.returncode == 1 and f"worker {NODE} did not answer" in gone.stdout


def _probe_against(env, broker, *args):
    result = protean({**env, "CELERY_BROKER_URL": broker}, "health", *args, "--timeout", "2", "--json")
    return result, (json.loads(result.stdout) if result.stdout.startswith("{") else None)


def test_a_closed_broker_port_is_named_without_a_password_or_traceback(env):
    assert protean(env, "db", "setup").returncode == 0
    closed = "redis://:s3cret@127.0.0.1:1/0"
    result, document = _probe_against(env, closed, "--readiness")
    assert result.returncode == 1, result.stdout + result.stderr
    failed = {check["name"]: check["detail"] for check in document["checks"] if not check["ok"]}
    assert set(failed) == {"broker", "workers"}  # the databases and tables are fine
    assert failed["broker"].startswith("cannot reach redis://:***@127.0.0.1:1/0")
    assert "s3cret" not in result.stdout + result.stderr and "Traceback" not in result.stdout + result.stderr
    assert document["seconds"] <= 2 + 2
    alive, _ = _probe_against(env, closed, "--liveness")  # no worker, no broker
    assert alive.returncode == 1


def test_a_broker_that_never_answers_fails_at_the_timeout(env):
    assert protean(env, "db", "setup").returncode == 0
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        result, document = _probe_against(env, f"redis://127.0.0.1:{silent.getsockname()[1]}/0", "--readiness")
    assert result.returncode == 1, result.stdout + result.stderr
    assert {check["name"] for check in document["checks"] if not check["ok"]} >= {"broker"}
    assert document["seconds"] <= 2 + 2
