"""``celery -A app protean topology``: exchanges, queues, bindings and tasks."""

from __future__ import annotations

import click

__all__ = ["topology"]


@click.command()
@click.pass_context
def topology(ctx: click.Context) -> None:
    """Print exchanges, queues, bindings and tasks."""
    from protean_celery.cli import app_of

    click.echo(app_of(ctx).topology.describe())
