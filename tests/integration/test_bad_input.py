"""The bad-input matrix: every bad message ends in the dead letters and the worker keeps consuming.

One real ``celery worker`` (prefork, one child) on a real Redis serves the whole
module. Each test sends one bad message, waits for its dead letter, reads the entry
back; then a good PlaceOrder command is sent and waited for (its inbox marker), and
the broker must go idle with exactly one new dead letter: nothing was requeued in a loop.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection

from protean_celery.deadletter import DeadLetter
from protean_celery.testing.processes import WorkerProcess
from tests.integration.orders import ROOT, dead_letters, handled, place_order_payloads
from tests.support.waiting import broker_idle, wait_until

pytestmark = pytest.mark.integration

APP = "workers.orders.app"
COMMANDS = "protean.orders.commands.Order"  # task name = queue name

_IDS = [*(f"good-{n}" for n in range(1, 17)), *(f"bad-{n}" for n in range(1, 9))]


@pytest.fixture(scope="module")
def env(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    url = redis_server.url.rsplit("/", 1)[0] + "/5"
    redis.Redis.from_url(url).flushdb()
    state = tmp_path_factory.mktemp("bad-input")
    return {**os.environ, "CELERY_BROKER_URL": url, "PROTEAN_CELERY_STATE": str(state),
            "PROTEAN_NO_AUTO_LOGGING": "1"}


@pytest.fixture(scope="module")
def worker(env: dict[str, str]) -> Iterator[WorkerProcess]:
    setup = _celery(env, "protean", "db", "setup")
    assert setup.returncode == 0, setup.stderr
    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT) as running:
        yield running  # type: ignore[misc]


@pytest.fixture(scope="module")
def payloads(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return place_order_payloads(env, _IDS)


@pytest.fixture(scope="module")
def client(env: dict[str, str]) -> Celery:
    return Celery(broker=env["CELERY_BROKER_URL"])


@pytest.fixture
def keeps_consuming(
    env: dict[str, str], worker: WorkerProcess, client: Celery, payloads: dict[str, dict[str, Any]]
) -> Iterator[None]:
    """After the test: a good command sent next is handled by the same worker process, the broker goes idle,
    and the bad message left exactly one dead letter (a message requeued in a loop would leave more, or
    never leave the broker)."""
    before = _entry_ids(env)
    yield
    good = next(key for key in payloads if key.startswith("good-") and key not in _used)
    _used.add(good)
    client.send_task(COMMANDS, args=(payloads[good],), task_id=f"ok-{good}", queue=COMMANDS)
    state = env["PROTEAN_CELERY_STATE"]
    wait_until(lambda: handled(state, payloads[good]), f"the good command {good} handled", timeout=60, worker=worker)
    wait_until(lambda: broker_idle(env["CELERY_BROKER_URL"]), "the broker idle", timeout=60, worker=worker)
    assert len(_entry_ids(env) - before) == 1
    assert worker.process is not None and worker.process.poll() is None


_used: set[str] = set()


def _celery(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celery", "-A", APP, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _entry_ids(env: dict[str, str]) -> set[str]:
    return {entry.id for entry in dead_letters(env["PROTEAN_CELERY_STATE"])}


def _dead_letter(env: dict[str, str], worker: WorkerProcess, before: set[str]) -> DeadLetter:
    """The one entry dead-lettered since ``before`` (the entry ids then)."""
    state = env["PROTEAN_CELERY_STATE"]
    new = wait_until(lambda: [e for e in dead_letters(state) if e.id not in before], "a dead letter",
                     timeout=60, worker=worker)
    assert len(new) == 1, new
    return new[0]


def _send(client: Celery, payload: Any, task_id: str, task: str = COMMANDS) -> None:
    client.send_task(task, args=(payload,), task_id=task_id, queue=COMMANDS)


@pytest.mark.usefixtures("keeps_consuming")
def test_a_body_that_is_not_json_is_dead_lettered_raw(env, worker):
    before = _entry_ids(env)
    with Connection(env["CELERY_BROKER_URL"]) as conn:
        conn.Producer().publish(
            b'{"args": [{"data": ', exchange="", routing_key=COMMANDS, content_type="application/json",
            content_encoding="utf-8", headers={"task": COMMANDS, "id": "not-json-1", "lang": "py"},
        )
    entry = _dead_letter(env, worker, before)
    assert entry.task == COMMANDS
    assert entry.error.startswith("DecodeError: The task message body is not valid application/json")
    assert entry.payload["body"] == '{"args": [{"data": ' and entry.payload["body_encoding"] == "text"


@pytest.mark.usefixtures("keeps_consuming")
def test_a_body_that_is_not_even_text_is_kept_as_base64(env, worker):
    before = _entry_ids(env)
    with Connection(env["CELERY_BROKER_URL"]) as conn:
        conn.Producer().publish(
            b"\xff\xfe\x00garbage", exchange="", routing_key=COMMANDS, content_type="application/json",
            content_encoding="binary", headers={"task": COMMANDS, "id": "binary-1", "lang": "py"},
        )
    entry = _dead_letter(env, worker, before)
    assert entry.error.startswith("DecodeError: ")
    assert entry.payload["body_encoding"] == "base64" and entry.payload["body"] == "//4AZ2FyYmFnZQ=="


@pytest.mark.usefixtures("keeps_consuming")
@pytest.mark.parametrize(
    ("body", "content_type", "headers", "task", "words"),
    [
        (b"\x80\x04K\x01.", "application/x-python-serialize", {"task": COMMANDS, "id": "pickle-1"}, COMMANDS,
         "Refusing to deserialize untrusted content of type pickle"),
        (b'{"hello": "world"}', "application/json", {"id": "no-task-1"}, "(no task name)",
         "it names no task, so it is not a Celery task message"),
    ],
    ids=["refused-content-type", "no-task-name"],
)
def test_a_message_celery_refuses_is_dead_lettered_raw(env, worker, body, content_type, headers, task, words):
    before = _entry_ids(env)
    with Connection(env["CELERY_BROKER_URL"]) as conn:
        conn.Producer().publish(body, exchange="", routing_key=COMMANDS, content_type=content_type,
                                content_encoding="binary", headers=headers)
    entry = _dead_letter(env, worker, before)
    assert entry.task == task
    assert entry.error.startswith("DecodeError: Celery rejected the message before any task ran")
    assert words in entry.error
    assert entry.payload["content_type"] == content_type


@pytest.mark.usefixtures("keeps_consuming")
def test_valid_json_of_the_wrong_shape_is_dead_lettered(env, worker, client):
    before = _entry_ids(env)
    _send(client, {"order": "not a Protean message"}, "wrong-shape-1")
    entry = _dead_letter(env, worker, before)
    assert entry.error.startswith("DecodeError: Task payload is not a Protean message")
    assert entry.payload == {"order": "not a Protean message"}


@pytest.mark.usefixtures("keeps_consuming")
def test_a_tampered_message_fails_the_checksum(env, worker, client, payloads):
    tampered = copy.deepcopy(payloads["bad-1"])
    tampered["data"]["amount"] = 0.01
    before = _entry_ids(env)
    _send(client, tampered, "tampered-1")
    entry = _dead_letter(env, worker, before)
    assert "checksum" in entry.error and entry.error.startswith("DecodeError: ")
    assert (entry.message_type, entry.message_id) == ("Orders.PlaceOrder.v1", "bad-1")
    assert entry.payload == tampered


@pytest.mark.usefixtures("keeps_consuming")
def test_a_type_nobody_knows_is_dead_lettered(env, worker, client, payloads):
    unknown = copy.deepcopy(payloads["bad-2"])
    unknown["metadata"]["headers"]["type"] = "Orders.RefundOrder.v1"  # headers are outside the checksum
    before = _entry_ids(env)
    _send(client, unknown, "unknown-type-1")
    entry = _dead_letter(env, worker, before)
    assert entry.error.startswith("UnknownHandlerError: ")
    assert "registers no event or command 'Orders.RefundOrder.v1'" in entry.error
    assert entry.message_type == "Orders.RefundOrder.v1"


@pytest.mark.usefixtures("keeps_consuming")
def test_an_unknown_task_name_is_dead_lettered_with_its_payload(env, worker, client, payloads):
    before = _entry_ids(env)
    _send(client, payloads["bad-3"], "no-such-task-1", task="protean.orders.NoSuchHandler")
    entry = _dead_letter(env, worker, before)
    assert entry.task == "protean.orders.NoSuchHandler"
    assert entry.error.startswith("UnknownHandlerError: This worker has no task 'protean.orders.NoSuchHandler'")
    assert entry.payload == payloads["bad-3"] and entry.message_id == "bad-3"
    listed = _celery(env, "protean", "dlq", "list", "--task", "protean.orders.NoSuchHandler").stdout
    assert "1 dead letter(s)." in listed and "Orders.PlaceOrder.v1 bad-3" in listed
    refused = _celery(env, "protean", "dlq", "replay", entry.id)  # no worker has that task yet
    assert refused.returncode == 1 and "which this app does not have: deploy that handler" in refused.stderr
    assert "Traceback" not in refused.stderr
    after = _celery(env, "protean", "dlq", "list", "--task", "protean.orders.NoSuchHandler").stdout
    assert "1 dead letter(s)." in after


@pytest.mark.usefixtures("keeps_consuming")
def test_a_payload_above_max_payload_bytes_is_dead_lettered(env, worker, client, payloads):
    big = copy.deepcopy(payloads["bad-4"])
    big["data"]["customer"] = "x" * 1_100_000
    before = _entry_ids(env)
    _send(client, big, "too-big-1")
    entry = _dead_letter(env, worker, before)
    assert entry.error.startswith(f"PayloadTooLarge: {COMMANDS}: the payload is ")
    assert "above [custom.celery] max_payload_bytes = 1048576" in entry.error
    assert entry.payload["data"]["customer"] == big["data"]["customer"]


@pytest.mark.usefixtures("keeps_consuming")
def test_a_message_of_another_domain_names_both_domains(env, worker, client, payloads):
    foreign = copy.deepcopy(payloads["bad-5"])
    foreign["metadata"]["headers"]["stream"] = "billing::invoice-i1"
    before = _entry_ids(env)
    _send(client, foreign, "foreign-1")
    entry = _dead_letter(env, worker, before)
    assert entry.error.startswith("ForeignMessageError: ")
    assert "of domain 'billing', but this worker runs domain 'orders'" in entry.error


@pytest.mark.usefixtures("keeps_consuming")
def test_a_type_named_after_another_domain_names_both_domains(env, worker, client, payloads):
    foreign = copy.deepcopy(payloads["bad-6"])
    foreign["metadata"]["headers"]["type"] = "Billing.PlaceOrder.v1"
    before = _entry_ids(env)
    _send(client, foreign, "foreign-2")
    entry = _dead_letter(env, worker, before)
    assert "a message of domain 'Billing', but this worker runs domain 'Orders'" in entry.error
