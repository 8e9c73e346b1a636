"""``celery -A app protean db setup|setup-outbox|drop|truncate [--yes]``."""

from __future__ import annotations

import click

from protean_celery import storage

__all__ = ["db"]


@click.group()
def db() -> None:
    """Create, drop or empty the domain's tables, the event store and the relay cursors."""


@db.command()
@click.pass_context
def setup(ctx: click.Context) -> None:
    """Create every table (idempotent)."""
    app = _app(ctx)
    storage.setup(app.domain, app.runtime.state)
    click.echo("Tables created: aggregates, projections, outbox, event store, relay cursors.")


@db.command(name="setup-outbox")
@click.pass_context
def setup_outbox(ctx: click.Context) -> None:
    """Create the outbox tables only."""
    storage.setup_outbox(_app(ctx).domain)
    click.echo("Outbox tables created.")


@db.command()
@click.option("--yes", "-y", is_flag=True, help="Skip the confirmation prompt.")
@click.pass_context
def drop(ctx: click.Context, yes: bool) -> None:
    """Drop every table."""
    if not yes and not click.confirm("This will drop all database tables. Are you sure?"):
        raise click.Abort()
    app = _app(ctx)
    storage.drop(app.domain, app.runtime.state)
    click.echo("Tables dropped.")


@db.command()
@click.option("--yes", "-y", is_flag=True, help="Skip the confirmation prompt.")
@click.pass_context
def truncate(ctx: click.Context, yes: bool) -> None:
    """Delete every row (the event store too)."""
    if not yes and not click.confirm("This will delete all data in all tables. Are you sure?"):
        raise click.Abort()
    app = _app(ctx)
    storage.truncate(app.domain, app.runtime.state)
    click.echo("Tables truncated.")


def _app(ctx: click.Context):  # type: ignore[no-untyped-def]
    from protean_celery.cli.loading import app_of

    return app_of(ctx)
