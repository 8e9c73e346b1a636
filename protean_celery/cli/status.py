"""``celery -A app protean status``: what is still waiting, dead letters and outbox rows, at a glance."""

from __future__ import annotations

import click

from protean_celery.cli.output import echo_json, json_option

__all__ = ["status"]


@click.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Unrelayed outbox rows and commands, queue depths, in-flight messages, dead letters, swept and outbox rows."""
    from protean_celery.app import require_broker
    from protean_celery.backlog import backlog
    from protean_celery.cli.loading import app_of
    from protean_celery.cli.outbox import echo_counts
    from protean_celery.outbox.admin import counts

    app = app_of(ctx)
    require_broker(app)  # else Celery would try amqp://guest@localhost
    measured = backlog(app)
    depth = app.runtime.dead_letters.depth()
    watched = app.runtime.ledger.count() if app.runtime.sweep.enabled else None
    if as_json:
        echo_json({
            "unrelayed": measured.unrelayed, "in_flight": measured.in_flight, "queues": measured.queued,
            "dead_letters": depth, "swept": watched, "outbox": counts(app.domain),
        })
        return
    click.echo(f"unrelayed  {measured.unrelayed} (outbox rows and commands)")
    click.echo(f"in flight  {measured.in_flight}")
    for name, count in measured.queued.items():
        click.echo(f"queue      {name}  {count}")
    click.echo(f"dead letters  {sum(depth.values())}")
    for task, count in sorted(depth.items()):
        click.echo(f"  {task}  {count}")
    if watched is not None:
        click.echo(f"watched by the redelivery sweep  {watched}")
    echo_counts(app.domain)
