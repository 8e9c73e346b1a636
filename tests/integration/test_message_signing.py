"""Signed messages through a real worker: only messages signed by a trusted certificate run.

``tests/integration/flaky_app.py`` built with message signing (``FLAKY_SIGNING``):
a throwaway RSA key and self-signed certificate, trusted by the workers' store.
On the same broker, a message signed with another key and a plain JSON message
(anyone who can write to the queue) must be dead-lettered and never handled,
while the app's own messages (placed with ``app.process`` and relayed, sent with
the key, retried by the worker) run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import create_engine

from protean_celery.deadletter import DeadLetters
from protean_celery.testing.processes import WorkerProcess
from tests.integration.flaky import APP, QUEUE, attempts, celery, flaky_env, job_payloads, job_saved, send, wait_until
from tests.integration.orders import ROOT
from tests.support.signing import Identity, make_identity

pytestmark = pytest.mark.integration

# A producer that is not the app: a plain Celery app signing with the identity it is given.
_SEND_SIGNED = """
import json, sys
from celery import Celery
broker, key, certificate, store, task_id = sys.argv[1:6]
app = Celery(broker=broker)
app.conf.update(task_serializer="auth", accept_content=["auth"], security_key=key,
                security_certificate=certificate, security_cert_store=store)
app.setup_security(allowed_serializers=["json"])
app.send_task(sys.argv[6], args=(json.loads(sys.stdin.read()),), task_id=task_id, queue=sys.argv[6])
"""

_PROCESS = """
import sys
from tests.integration.flaky_app import RunJob, app
app.process(RunJob(job_id=sys.argv[1]))
"""


@pytest.fixture
def signed(redis_server: Any, tmp_path: Any) -> tuple[dict[str, str], Identity, Identity]:
    identity = make_identity(tmp_path, "app")
    forger = make_identity(tmp_path, "forger")
    env = {**flaky_env(redis_server.url.rsplit("/", 1)[0] + "/8", tmp_path / "state"),
           "FLAKY_SIGNING": str(identity.key.parent)}
    setup = celery(env, "protean", "db", "setup")
    assert setup.returncode == 0, setup.stderr
    return env, identity, forger


def _send_signed(env: dict[str, str], identity: Identity, payload: Any, task_id: str) -> None:
    command = [sys.executable, "-c", _SEND_SIGNED, env["CELERY_BROKER_URL"], str(identity.key),
               str(identity.certificate), str(identity.store), task_id, QUEUE]
    result = subprocess.run(command, input=json.dumps(payload), cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def _dead_letters(env: dict[str, str]) -> list[Any]:
    engine = create_engine(f"sqlite:///{env['PROTEAN_CELERY_STATE']}/relay.db")
    try:
        return DeadLetters(engine).list(task=QUEUE)
    finally:
        engine.dispose()


def test_forged_and_unsigned_messages_are_dead_lettered_and_the_apps_own_run(signed):
    env, identity, forger = signed
    payloads = job_payloads(env, {"forged": 0, "unsigned": 0, "keyed": 0, "retried": 1})
    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT) as worker:
        _send_signed(env, forger, payloads["forged"], "forged-1")
        send(env, payloads["unsigned"], "unsigned-1")  # plain JSON, as any broker client could
        wait_until(lambda: len(_dead_letters(env)) == 2, "the forged and the unsigned message's dead letters")
        _send_signed(env, identity, payloads["keyed"], "keyed-1")
        _send_signed(env, identity, payloads["retried"], "retried-1")
        placed = subprocess.run([sys.executable, "-c", _PROCESS, "relayed"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert placed.returncode == 0, placed.stderr
        for job in ("keyed", "retried", "relayed"):
            wait_until(lambda job=job: job_saved(env, job), f"the signed job {job!r}")
        log = worker.log()
    errors = sorted(entry.error for entry in _dead_letters(env))
    assert errors[0].startswith("DecodeError: Celery rejected the message before any task ran: "
                                "Refusing to deserialize untrusted content"), errors
    assert "signed by a certificate in [custom.celery] security_cert_store" in errors[0]
    assert errors[1].startswith("DecodeError: The task message's signature does not verify"), errors
    assert attempts(env, "forged") == [] and attempts(env, "unsigned") == []
    assert not job_saved(env, "forged") and not job_saved(env, "unsigned")
    assert len(attempts(env, "keyed")) == 1 and len(attempts(env, "relayed")) == 1
    assert len(attempts(env, "retried")) == 2  # the worker's own retry is signed too
    assert "Unrecoverable error" not in log


def test_a_missing_key_file_stops_the_worker_with_the_setting_named(signed):
    env, identity, _ = signed
    identity.key.unlink()
    result = celery(env, "protean", "check")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "security_key" in output and "no such file" in output, output
    assert "Traceback" not in output, output
