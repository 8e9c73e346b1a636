"""The feeds test domain's Celery app (``celery -A tests.integration.feeds_app …``).

Every handler task a worker starts appends ``<task> <message key>`` to
``$PROTEAN_CELERY_STATE/deliveries``, before the inbox decides whether to run it:
the test reads there every copy that reached a handler task, duplicates included.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery.signals import task_prerun

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, prepare_databases
from protean_celery.envelope import decode, message_key
from tests.integration.feeds import domain

prepare_databases(domain.config)
domain.init(traverse=False)

app = ProteanCelery(domain)

DELIVERIES = Path(os.environ.get("PROTEAN_CELERY_STATE", ".state")) / "deliveries"


@task_prerun.connect
def _delivered(task: Any = None, args: Any = None, **_: Any) -> None:
    if task is None or ".relay." in task.name or not args:
        return
    with DELIVERIES.open("a") as log:
        log.write(f"{task.name} {_key(args[0])}\n")


def _key(payload: Any) -> str:
    try:
        return message_key(decode(payload, require_checksum=False))
    except Exception:  # not a Protean message: the task dead-letters it
        return "undecodable"
