"""``celery -A app protean dlq list|inspect|replay|replay-all|purge``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from protean_celery.cli.output import echo_json, json_option, jsonable

__all__ = ["dlq"]


def _app(ctx: click.Context) -> Any:
    from protean_celery.cli.loading import app_of

    return app_of(ctx)


def _since(hours: float | None) -> datetime | None:
    return datetime.now(UTC) - timedelta(hours=hours) if hours else None


@click.group()
def dlq() -> None:
    """Messages no handler could handle, with their errors."""


@dlq.command(name="list")
@click.option("--task", help="only this task (protean.<domain>.<Handler>)")
@click.option("--category", help="only this stream category")
@click.option("--hours", type=float, help="only failures in the last N hours")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@click.pass_context
def list_(
    ctx: click.Context, task: str | None, category: str | None, hours: float | None, limit: int, as_json: bool
) -> None:
    """List dead letters, newest failure first."""
    entries = _app(ctx).runtime.dead_letters.list(task, category, _since(hours), limit)
    if as_json:  # no payload or traceback here: `dlq inspect` shows one entry whole
        echo_json([{k: v for k, v in jsonable(e).items() if k not in ("payload", "traceback")} for e in entries])
        return
    for entry in entries:
        click.echo(
            f"{entry.id}  {entry.last_failed_at:%Y-%m-%d %H:%M:%S}  {entry.task}  "
            f"{entry.message_type or '?'} {entry.message_id or '?'}  x{entry.attempts}  {entry.error[:100]}"
        )
    click.echo(f"{len(entries)} dead letter(s).")


@dlq.command()
@click.argument("entry_id")
@json_option
@click.pass_context
def inspect(ctx: click.Context, entry_id: str, as_json: bool) -> None:
    """Show one dead letter: message, error, traceback, attempts, times."""
    entry = _app(ctx).runtime.dead_letters.get(entry_id)
    if as_json:
        echo_json(entry)
        return
    click.echo(f"id         {entry.id}\ntask       {entry.task}\ncategory   {entry.category}")
    click.echo(f"message    {entry.message_type} {entry.message_id}\nattempts   {entry.attempts}")
    click.echo(f"first      {entry.first_failed_at}\nlast       {entry.last_failed_at}\nerror      {entry.error}")
    click.echo("payload")
    click.echo(json.dumps(entry.payload, indent=2, default=str))
    click.echo("traceback")
    click.echo(entry.traceback or "")


@dlq.command()
@click.argument("entry_id")
@click.pass_context
def replay(ctx: click.Context, entry_id: str) -> None:
    """Republish one dead letter to its handler's queue."""
    from protean_celery.errors import DeadLetterError

    app = _app(ctx)
    try:
        click.echo(f"Replayed {entry_id} as task {_replay(app, entry_id)}.")
    except DeadLetterError as error:  # the entry stays; say why, exit 1
        raise click.ClickException(str(error)) from error


@dlq.command(name="replay-all")
@click.option("--task")
@click.option("--category")
@click.pass_context
def replay_all(ctx: click.Context, task: str | None, category: str | None) -> None:
    """Republish every dead letter that matches; one that cannot be replayed stays, with the reason."""
    from protean_celery.errors import DeadLetterError

    app = _app(ctx)
    entries = app.runtime.dead_letters.list(task, category, None, limit=1_000_000)
    refused = []
    for entry in entries:
        try:
            _replay(app, entry.id)
        except DeadLetterError as error:
            refused.append(f"  {entry.id}: {error}")
    click.echo(f"Replayed {len(entries) - len(refused)} dead letter(s).")
    if refused:
        raise click.ClickException("\n".join([f"{len(refused)} dead letter(s) stay:", *refused]))


def _replay(app: Any, entry_id: str) -> str:
    """Replay one entry: a broker subscriber's to its queue, any other through the runtime."""
    subscribers = getattr(app, "subscribers", None)
    if subscribers is not None and subscribers.owns(app.runtime.dead_letters.get(entry_id).task):
        return str(subscribers.replay(app.runtime, entry_id))
    return str(app.runtime.replay(entry_id, app))


@dlq.command()
@click.option("--task")
@click.option("--category")
@click.option("--yes", "-y", is_flag=True, help="Skip the confirmation prompt.")
@click.pass_context
def purge(ctx: click.Context, task: str | None, category: str | None, yes: bool) -> None:
    """Delete dead letters that match (all of them without filters)."""
    if not yes and not click.confirm("This deletes dead letters for good. Are you sure?"):
        raise click.Abort()
    click.echo(f"Purged {_app(ctx).runtime.dead_letters.purge(task, category)} dead letter(s).")
