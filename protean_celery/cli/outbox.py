"""``celery -A app protean outbox status|list|requeue``: Protean's outbox rows, stuck ones included."""

from __future__ import annotations

from typing import Any

import click

from protean_celery.cli.output import echo_json, json_option
from protean_celery.outbox import admin

__all__ = ["outbox", "echo_counts"]

_STATUS = click.Choice(["pending", "processing", "failed", admin.STUCK, "abandoned", "published"])


def _domain(ctx: click.Context) -> Any:
    from protean_celery.cli.loading import app_of

    return app_of(ctx).domain


def _time(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


def _when(row: admin.OutboxRow) -> str:
    if row.status == "failed":
        return f"  retry at {_time(row.next_retry_at)}"
    if row.status == "processing":
        return f"  locked until {_time(row.locked_until)}"
    if row.status == "published":
        return f"  published {_time(row.published_at)}"
    return ""


def echo_counts(domain: Any) -> None:
    """Print one line of row counts per status for every outbox provider."""
    found = admin.counts(domain)
    if not found:
        click.echo("outbox     off (enable_outbox = false)")
    for provider, by_status in found.items():
        click.echo(f"outbox     {provider}  " + "  ".join(f"{status} {count}" for status, count in by_status.items()))


@click.group()
def outbox() -> None:
    """Protean's outbox rows: counts, failed, stuck and abandoned rows, requeueing."""


@outbox.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Rows per provider and status; stuck = failed with no retries left."""
    if as_json:
        echo_json(admin.counts(_domain(ctx)))
    else:
        echo_counts(_domain(ctx))


@outbox.command(name="list")
@click.option("--status", "status_", type=_STATUS, help="only this status (default: all but published)")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@click.pass_context
def list_(ctx: click.Context, status_: str | None, limit: int, as_json: bool) -> None:
    """List outbox rows, newest first, with their attempts and last error."""
    rows = admin.list_rows(_domain(ctx), status_, limit)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row.id}  {row.status}  {row.type}  {row.stream}  attempts {row.retry_count}/{row.max_retries}  "
            f"created {_time(row.created_at)}  last {_time(row.last_processed_at)}{_when(row)}  [{row.provider}]"
        )
        if row.error:
            click.echo(f"    last error: {row.error[:200]}")
    click.echo(f"{len(rows)} outbox row(s).")


@outbox.command()
@click.argument("row_ids", nargs=-1)
@click.option("--all-abandoned", is_flag=True, help="every abandoned row")
@click.option("--all-stuck", is_flag=True, help="every stuck row (failed, no retries left)")
@click.pass_context
def requeue(ctx: click.Context, row_ids: tuple[str, ...], all_abandoned: bool, all_stuck: bool) -> None:
    """Reset failed, stuck or abandoned rows to pending; the next relay tick publishes them."""
    from protean_celery.errors import OutboxError

    if not row_ids and not all_abandoned and not all_stuck:
        raise click.UsageError("Give row ids, --all-abandoned or --all-stuck.")
    domain = _domain(ctx)
    try:
        done = admin.requeue(domain, row_ids) if row_ids else []
        if all_abandoned:
            done += admin.requeue_all(domain, "abandoned")
        if all_stuck:
            done += admin.requeue_all(domain, admin.STUCK)
    except OutboxError as exc:
        raise click.ClickException(str(exc)) from None
    for row_id in done:
        click.echo(f"requeued  {row_id}")
    click.echo(f"Requeued {len(done)} outbox row(s); the next relay tick publishes them.")
