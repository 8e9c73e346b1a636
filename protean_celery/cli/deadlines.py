"""``celery -A app protean deadlines list|cancel``: pending and failed deadlines (:mod:`protean_celery.deadlines`)."""

from __future__ import annotations

from typing import Any

import click

from protean_celery.cli.output import echo_json, json_option

__all__ = ["deadlines"]


def _store(ctx: click.Context) -> Any:
    from protean_celery.cli.loading import app_of
    from protean_celery.deadlines import DeadlineStore

    return DeadlineStore(app_of(ctx).domain)


@click.group()
def deadlines() -> None:
    """Deadlines scheduled by handlers: list them, cancel one."""


@deadlines.command(name="list")
@click.option("--status", type=click.Choice(["pending", "failed"]), help="only deadlines with this status")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@click.pass_context
def list_(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> None:
    """List deadlines, soonest first (fired ones are gone)."""
    found = _store(ctx).list(limit=limit, status=status)
    if as_json:
        echo_json(found)
        return
    for deadline in found:
        error = f"  {deadline.last_error[:100]}" if deadline.last_error else ""
        click.echo(
            f"{deadline.key}  {deadline.due_at:%Y-%m-%d %H:%M:%S}  {deadline.status}  {deadline.message_type}"
            f"  x{deadline.attempts}{error}"
        )
    click.echo(f"{len(found)} deadline(s).")


@deadlines.command()
@click.argument("keys", metavar="KEY...", nargs=-1, required=True)
@click.pass_context
def cancel(ctx: click.Context, keys: tuple[str, ...]) -> None:
    """Cancel the deadlines KEY... so they never fire; an unknown KEY exits 2 (the others are cancelled)."""
    from protean_celery.errors import DeadlineNotFound

    store, unknown = _store(ctx), []
    for key in keys:
        try:
            deadline = store.cancel(key)
        except DeadlineNotFound as error:
            unknown.append(str(error))
            continue
        click.echo(f"Cancelled {deadline.key}: {deadline.message_type} due {deadline.due_at:%Y-%m-%d %H:%M:%S}.")
    if unknown:
        raise click.BadParameter(" ".join(unknown), param_hint="KEY")
