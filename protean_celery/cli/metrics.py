"""``celery -A app protean metrics [--port 9808] [--host 127.0.0.1] [--once] [--timeout S]``.

Serves Prometheus' text format at ``http://HOST:PORT/metrics`` with
``prometheus-client`` (the ``metrics`` extra); each scrape reads the broker and
the state afresh (:func:`protean_celery.metrics.collect`). ``--once`` prints one
scrape on stdout and exits: 0 when every component answered, 1 when one did not
(named on stderr in one line; its samples are left out and its
``protean_celery_up`` is 0).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import click

__all__ = ["metrics", "ScrapeCollector", "failures_line"]

logger = logging.getLogger(__name__)


class ScrapeCollector:
    """A prometheus-client collector that runs :func:`~protean_celery.metrics.collect` on every scrape.

    Args:
        app: the ProteanCelery app.
        timeout: seconds each scrape may take.
        log_failures: log a warning naming the components that failed a scrape (when serving).
    """

    def __init__(self, app: Any, timeout: float, log_failures: bool = False) -> None:
        self.app = app
        self.timeout = timeout
        self.log_failures = log_failures
        self.last: Any = None

    def collect(self) -> Iterator[Any]:
        """One gauge family per metric, from a fresh scrape."""
        from prometheus_client.core import GaugeMetricFamily

        from protean_celery.metrics import HELP, collect

        self.last = collect(self.app, self.timeout)
        if self.log_failures and self.last.failures:
            logger.warning("protean metrics: %s", failures_line(self.last.failures))
        families: dict[str, Any] = {}
        for sample in self.last.samples:
            names = sorted(sample.labels)
            family = families.get(sample.name)
            if family is None:
                family = families[sample.name] = GaugeMetricFamily(sample.name, HELP[sample.name], labels=names)
            family.add_metric([sample.labels[name] for name in names], sample.value)
        yield from families.values()


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=9808, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--once", is_flag=True, help="Print one scrape on stdout and exit (1 if a component failed).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds a scrape may take.")
@click.pass_context
def metrics(ctx: click.Context, port: int, host: str, once: bool, timeout: float) -> None:
    """Serve Prometheus metrics: queue depth and lag, outbox, relay, dead letters, sweep, inbox."""
    from protean_celery.cli.loading import app_of

    app = app_of(ctx)
    registry_module = _prometheus()
    registry = registry_module.CollectorRegistry()
    collector = ScrapeCollector(app, timeout, log_failures=not once)
    registry.register(collector)
    if once:
        text = registry_module.generate_latest(registry).decode()
        click.echo(text, nl=False)
        failures = collector.last.failures if collector.last is not None else []
        if failures:
            click.echo(f"metrics: {failures_line(failures)}", err=True)
        sys.stdout.flush()
        sys.exit(1 if failures else 0)
    _serve(registry_module, registry, host, port)


def failures_line(failures: list[Any]) -> str:
    """The failed components of a scrape, in one line: ``broker: cannot reach …; state: …``."""
    return "; ".join(f"{check.name}: {check.detail}" for check in failures)


def _serve(module: Any, registry: Any, host: str, port: int) -> None:
    try:
        server, thread = module.start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise click.ClickException(
            f"Cannot listen on {host}:{port} ({error.strerror}): choose another --port or --host."
        ) from None
    click.echo(f"Serving Prometheus metrics on http://{host}:{port}/metrics (Ctrl-C to stop)")
    try:
        while thread.is_alive():
            thread.join(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise click.ClickException(
            "prometheus-client is not installed: pip install 'protean-celery[metrics]'."
        ) from None
    return prometheus_client
