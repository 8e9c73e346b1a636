"""``celery -A app protean topology``: exchanges, queues, bindings and tasks."""

from __future__ import annotations

import click

from protean_celery.cli.output import echo_json, json_option

__all__ = ["topology"]


@click.command()
@json_option
@click.pass_context
def topology(ctx: click.Context, as_json: bool) -> None:
    """Print exchanges, queues, bindings and tasks."""
    from protean_celery.cli.loading import app_of

    app = app_of(ctx)
    shape, subscribers = app.topology, getattr(app, "subscribers", None)
    if as_json:
        echo_json({**shape.as_dict(), **({"subscribers": subscribers.as_list()} if subscribers else {})})
    else:
        click.echo(shape.describe())
        if subscribers is not None and subscribers.routes:
            click.echo(subscribers.describe())
