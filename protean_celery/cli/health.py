"""``celery -A app protean health --liveness|--readiness``: exit 0 healthy, 1 unhealthy, within ``--timeout``.

For Kubernetes ``exec`` probes and systemd (``ExecStartPost``, watchdog scripts):
one line on stdout naming every failing component (or ``--json``), never a
traceback, never a password, and never longer than ``--timeout`` (each check runs
in its own thread against one deadline; see :mod:`protean_celery.health`).
"""

from __future__ import annotations

import sys
import time

import click

from protean_celery.cli.output import echo_json, json_option

__all__ = ["health"]


@click.command()
@click.option("--liveness", "probe", flag_value="liveness", help="Is the worker (or, with none, the broker) alive?")
@click.option("--readiness", "probe", flag_value="readiness", help="Is everything this app needs up and set up?")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to answer in, whatever happens.")
@click.option("--node", default=None, help="The worker's node name to ping (e.g. celery@$HOSTNAME).")
@json_option
@click.pass_context
def health(ctx: click.Context, probe: str | None, timeout: float, node: str | None, as_json: bool) -> None:
    """Probe this app's health; exit 0 when healthy, 1 naming what is not."""
    from protean_celery.cli.loading import app_of
    from protean_celery.health import failing, liveness, readiness

    if probe is None:
        raise click.UsageError("Choose a probe: --liveness or --readiness.")
    app = app_of(ctx)
    started = time.monotonic()
    checks = (liveness if probe == "liveness" else readiness)(app, timeout, node)
    seconds = round(time.monotonic() - started, 3)
    bad = failing(checks)
    if as_json:
        echo_json({"probe": probe, "ok": not bad, "seconds": seconds, "checks": checks})
    elif bad:
        click.echo(f"unhealthy ({probe}): " + "; ".join(f"{check.name}: {check.detail}" for check in bad))
    else:
        click.echo(f"healthy ({probe}): " + ", ".join(check.name for check in checks))
    sys.stdout.flush()
    sys.exit(1 if bad else 0)
