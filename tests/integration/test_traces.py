"""Protean's trace stream under real ``celery worker`` processes, read back as Protean's Observatory reads it.

A failing handler (``tests/integration/flaky_app.py``) and the orders saga
(``python -m workers.orders.run`` with ``PROTEAN_ENV=traces``) run on real workers
whose domain's default broker is a real Redis; the events are read from Protean's
trace stream (``protean:traces``) with Protean's own decoder. Then a real
``protean observatory`` serves them: its REST API must count them, and headless
Chromium takes screenshots of it (skipped when Chromium is not installed).
``PROTEAN_CELERY_SCREENSHOTS=docs/images`` keeps the screenshots there.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from protean.server.tracing import TRACE_STREAM, decode_trace

from protean_celery.testing.processes import WorkerProcess
from tests.integration.flaky import APP, celery, dead_letter, flaky_env, job_payloads, job_saved, send, wait_until
from tests.integration.flaky_app import MAX_RETRIES
from tests.integration.orders import ROOT, run_orders
from tests.support.observatory import CHROMIUM, NoLiveView, Observatory, screenshot

pytestmark = pytest.mark.integration

#: Every handler of the orders saga, as Protean names them in its traces.
SAGA_HANDLERS = {
    "OrderCommandHandler", "InventoryCommandHandler", "PaymentCommandHandler", "ShipmentCommandHandler",
    "OrderFulfillment", "OrderSummaryProjector", "CourierSimulator",
}
ORDERS = 3


def traces(url: str) -> list[dict[str, Any]]:
    """Every trace event in Protean's trace stream at ``url``, oldest first."""
    client = redis.Redis.from_url(url)
    try:
        return [trace for _, fields in client.xrange(TRACE_STREAM) if (trace := decode_trace(fields)) is not None]
    finally:
        client.close()


def of(found: list[dict[str, Any]], message_id: str) -> list[str]:
    """The event names of one message, in order."""
    return [trace["event"] for trace in found if trace["message_id"] == message_id]


# -- a failing handler ------------------------------------------------------------------


@pytest.fixture(scope="module")
def flaky(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    base = redis_server.url.rsplit("/", 1)[0]
    env = flaky_env(base + "/12", tmp_path_factory.mktemp("traced-flaky"))
    env["FLAKY_TRACE_URL"] = base + "/13"
    redis.Redis.from_url(env["FLAKY_TRACE_URL"]).flushdb()
    setup = celery(env, "protean", "db", "setup")
    assert setup.returncode == 0, setup.stderr
    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT):
        yield env


def test_a_handler_that_fails_once_is_traced_failed_nacked_then_completed(flaky):
    send(flaky, job_payloads(flaky, {"once": 1})["once"], "traced-once")
    wait_until(lambda: job_saved(flaky, "once"), "the job to be saved")
    wait_until(lambda: "message.acked" in of(traces(flaky["FLAKY_TRACE_URL"]), "once"), "the ack's trace")
    found = traces(flaky["FLAKY_TRACE_URL"])
    assert of(found, "once") == [
        "handler.started", "handler.failed", "message.nacked", "handler.started", "handler.completed", "message.acked",
    ]
    mine = [trace for trace in found if trace["message_id"] == "once"]
    assert {trace["handler"] for trace in mine} == {"JobRunner"}
    assert {trace["domain"] for trace in mine} == {"flaky"}
    failed = next(trace for trace in mine if trace["event"] == "handler.failed")
    assert "fails on purpose (attempt 1)" in failed["error"] and failed["status"] == "error"
    nacked = next(trace for trace in mine if trace["event"] == "message.nacked")
    assert nacked["metadata"] == {"retry_count": 1, "max_retries": MAX_RETRIES}


def test_a_handler_that_always_fails_is_traced_to_its_dead_letter(flaky):
    send(flaky, job_payloads(flaky, {"never": 1000})["never"], "traced-never")
    entry = wait_until(lambda: dead_letter(flaky, "never"), "the dead letter")
    wait_until(lambda: "message.dlq" in of(traces(flaky["FLAKY_TRACE_URL"]), "never"), "the dead letter's trace")
    found = traces(flaky["FLAKY_TRACE_URL"])
    events = Counter(of(found, "never"))
    assert events["handler.failed"] == MAX_RETRIES + 1 and events["message.nacked"] == MAX_RETRIES
    assert events["message.dlq"] == 1 and events["message.acked"] == 0
    dlq = next(trace for trace in found if trace["message_id"] == "never" and trace["event"] == "message.dlq")
    assert dlq["handler"] == "JobRunner" and dlq["metadata"]["dead_letter"] == entry.id
    assert dlq["metadata"]["retry_count"] == MAX_RETRIES + 1 and "fails on purpose" in dlq["error"]


# -- the orders saga and the Observatory ---------------------------------------------


@pytest.fixture(scope="module")
def saga(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = redis_server.url.rsplit("/", 1)[0]
    state = tmp_path_factory.mktemp("traced-saga")
    env = {"PROTEAN_ENV": "traces", "REDIS_URL": base + "/14", "PROTEAN_CELERY_STATE": str(state)}
    for db in (14, 15):
        redis.Redis.from_url(f"{base}/{db}").flushdb()
    run = run_orders(state, ORDERS, broker=base + "/15", env=env)
    assert run.returncode == 0, run.output
    assert run.figure("sagas completed") + run.figure("sagas compensated") == ORDERS
    return env


def test_every_saga_handler_run_by_celery_workers_is_in_protean_trace_stream(saga):
    found = traces(saga["REDIS_URL"])
    completed = {trace["handler"] for trace in found if trace["event"] == "handler.completed"}
    assert completed == SAGA_HANDLERS
    assert {trace["domain"] for trace in found} == {"orders"}
    transitions = [trace for trace in found if trace["event"] == "pm.transition"]
    assert transitions and {trace["metadata"]["pm_type"] for trace in transitions} == {"OrderFulfillment"}
    published = {trace["message_type"] for trace in found if trace["event"] == "outbox.published"}
    assert "Orders.OrderPlaced.v1" in published
    # Every run that started ended, and every event belongs to one of the orders' correlation chains.
    ends = {"handler.completed", "handler.failed", "handler.skipped"}
    started = Counter((t["message_id"], t["handler"]) for t in found if t["event"] == "handler.started")
    ended = Counter((t["message_id"], t["handler"]) for t in found if t["event"] in ends)
    assert started and all(ended[key] >= count for key, count in started.items())
    assert len({trace["correlation_id"] for trace in found if trace["event"] == "handler.started"}) == ORDERS


@pytest.fixture(scope="module")
def observatory(saga, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observatory]:
    pytest.importorskip("fastapi", reason="protean observatory needs protean[server] (the tests extra has it)")
    log = tmp_path_factory.mktemp("observatory") / "observatory.log"
    running = Observatory("workers.orders.domain", {**saga, "PROTEAN_NO_AUTO_LOGGING": "1"}, ROOT, log)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_protean_observatory_counts_what_the_workers_did(observatory):
    overview = json.loads(observatory.get("/api/traces/overview?window=1h"))
    # Even a declined order runs PlaceOrder, ReserveInventory, RequestPayment, ReleaseInventory,
    # CancelOrder and the saga on three events: at least 8 handler runs.
    assert overview["counts"]["handler.completed"] >= 8 * ORDERS
    assert overview["counts"]["pm.transition"] > 0 and overview["counts"]["outbox.published"] > 0
    handlers = json.loads(observatory.get("/api/handlers?window=1h"))["handlers"]
    processed = {handler["name"]: handler["metrics"]["processed"] for handler in handlers}
    assert processed["OrderCommandHandler"] >= ORDERS and processed["CourierSimulator"] > 0


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no headless Chromium (apt-get install chromium)")
def test_screenshots_of_the_observatory_show_the_saga(observatory, saga, tmp_path):
    proxy = NoLiveView(observatory.url)
    try:
        correlation = next(t["correlation_id"] for t in traces(saga["REDIS_URL"]) if t["event"] == "handler.started")
        shots = {
            "observatory.png": screenshot(proxy.url + "/", tmp_path / "observatory.png"),
            "observatory-saga.png": screenshot(
                f"{proxy.url}/timeline?correlation={correlation}", tmp_path / "observatory-saga.png", size="1400,1100"
            ),
        }
    finally:
        proxy.stop()
    for path in shots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
    keep = os.environ.get("PROTEAN_CELERY_SCREENSHOTS")
    if keep:
        for name, path in shots.items():
            shutil.copyfile(path, Path(keep) / name)
