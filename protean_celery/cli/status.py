"""``celery -A app protean status``: what is still waiting, dead letters and outbox rows, at a glance."""

from __future__ import annotations

import click

__all__ = ["status"]


@click.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Unrelayed outbox rows and commands, queue depths, in-flight messages, dead letters, swept and outbox rows."""
    from protean_celery.backlog import backlog
    from protean_celery.cli import app_of
    from protean_celery.cli.outbox import echo_counts

    app = app_of(ctx)
    measured = backlog(app)
    click.echo(f"unrelayed  {measured.unrelayed} (outbox rows and commands)")
    click.echo(f"in flight  {measured.in_flight}")
    for name, depth in measured.queued.items():
        click.echo(f"queue      {name}  {depth}")
    depth = app.runtime.dead_letters.depth()
    click.echo(f"dead letters  {sum(depth.values())}")
    for task, count in sorted(depth.items()):
        click.echo(f"  {task}  {count}")
    if app.runtime.sweep.enabled:
        click.echo(f"watched by the redelivery sweep  {app.runtime.ledger.count()}")
    echo_counts(app.domain)
