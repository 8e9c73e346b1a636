"""``celery -A app protean drain``: process everything pending in this process, then exit.

Protean's ``protean server --test-mode`` for Celery: on the app's configured
broker and databases, relay the pending outbox rows and commands, run every
queued handler task here (with the retries and dead letters a worker applies)
until nothing is pending, and exit 0; exit 1 when a message was dead-lettered
(or its task is unknown) or ``--timeout`` ran out first. Workers may run at the
same time: messages they hold are waited for.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

__all__ = ["drain", "report_dict"]


@click.command()
@click.option("--timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="seconds before giving up (exit 1, naming what is still pending)")
@click.option("--json", "as_json", is_flag=True, help="print the report as one JSON object")
@click.pass_context
def drain(ctx: click.Context, timeout: float, as_json: bool) -> None:
    """Relay and run everything pending in this process; exit 0 when done, 1 on a failure or timeout."""
    from kombu.exceptions import OperationalError

    from protean_celery.cli.loading import app_of
    from protean_celery.drain import run_pending

    app = app_of(ctx)
    try:
        report = run_pending(app, timeout=timeout, max_cycles=sys.maxsize, raise_errors=False)
    except OperationalError as exc:
        raise click.ClickException(f"drain could not reach the broker: {exc}") from None
    if as_json:
        click.echo(json.dumps(report_dict(report), sort_keys=True))
    else:
        _echo(report)
    if report.failures or not report.satisfied:
        sys.exit(1)


def report_dict(report: Any) -> dict[str, Any]:
    """A :class:`~protean_celery.drain.DrainReport` as JSON-ready data."""
    return {
        "satisfied": report.satisfied,
        "cycles": report.cycles,
        "tasks": report.tasks,
        "relayed": report.relayed,
        "failures": [
            {"task": f.task, "message_type": f.message_type, "message_id": f.message_id, "error": repr(f.error)}
            for f in report.failures
        ],
        "pending": report.pending,
        "unrelayed": report.unrelayed,
        "in_flight": report.in_flight,
        "unrouted": report.unrouted,
    }


def _echo(report: Any) -> None:
    click.echo(f"ran        {report.tasks} task(s) in {report.cycles} pass(es); relayed {report.relayed}")
    for failure in report.failures:
        click.echo(f"FAILED     {failure}")
    if report.failures:
        click.echo("           failed messages are dead letters: celery -A app protean dlq list")
    if report.unrouted:
        click.echo(f"WARNING    {report.unrouted} command(s) read that no handler of this app takes: dead-lettered")
    if not report.satisfied:
        click.echo(f"TIMEOUT    still pending: unrelayed {report.unrelayed}, in flight {report.in_flight}, "
                   f"queued {report.pending or 'nothing'}")
    elif not report.failures:
        click.echo("OK: nothing pending.")
