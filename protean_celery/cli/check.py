"""``celery -A app protean check``: configuration and topology problems, weaker guarantees, and whether
the broker and the databases can be reached (the checks of :mod:`protean_celery.health`)."""

from __future__ import annotations

import sys
from typing import Any

import click

from protean_celery.cli.output import echo_json, json_option

__all__ = ["GUARANTEES", "check", "idle_backfill", "problems", "unreachable", "warnings"]

#: Celery settings the delivery guarantees rely on, and why.
GUARANTEES: dict[str, tuple[Any, str]] = {
    "task_acks_late": (True, "a worker killed mid-task would lose the message"),
    "task_reject_on_worker_lost": (True, "a child killed mid-task would lose the message"),
    "worker_prefetch_multiplier": (1, "prefetched messages wait behind long handlers"),
    "task_serializer": ("json", "payloads must be JSON, never pickle"),
}


@click.command()
@json_option
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Validate configuration and topology; exit 1 on any problem."""
    from protean_celery.cli.loading import app_of
    from protean_celery.declared import unhonoured

    app = app_of(ctx)
    found = problems(app) + [str(item) for item in unhonoured(app.domain)] + unreachable(app)
    if as_json:
        echo_json({"ok": not found, "problems": found, "warnings": warnings(app),
                   "handler_tasks": len(app.topology.routes)})
        sys.exit(1 if found else 0)
    for line in found:
        click.echo(f"PROBLEM  {line}")
    for line in warnings(app):
        click.echo(f"WARNING  {line}")
    routes = f"{len(app.topology.routes)} handler tasks"
    if getattr(app, "subscribers", None) is not None and app.subscribers.routes:
        routes += f", {len(app.subscribers.routes)} broker subscriber task(s)"
    if found:
        click.echo(f"{len(found)} problem(s); {routes}.")
        sys.exit(1)
    click.echo(f"OK: {routes}, broker and databases reachable, guarantees in force.")


def unreachable(app: Any, timeout: float = 5.0) -> list[str]:
    """The broker or databases that cannot be reached (``timeout`` s at most; no broker URL is a problem already)."""
    from protean_celery.health import failing, reachability

    return [
        f"{check.name.replace('_', ' ')}: {check.detail}: start it, or fix its URL."
        for check in failing(reachability(app, timeout))
        if check.name != "broker" or app.conf.broker_url
    ]


def warnings(app: Any) -> list[str]:
    """Weaker guarantees that are a choice, not a mistake (``check`` still passes)."""
    from protean_celery.event_store.orphans import commits_apart

    found: list[str] = []
    if commits_apart(app.domain):
        found.append(
            "The event store is not in a database of [databases]: a handler's events commit before its aggregate "
            "and outbox rows. A worker killed between the two leaves events without their state; the redelivered "
            "message reuses them for state-based aggregates and completes once, but an event-sourced aggregate takes "
            "them as done (never published with the outbox on) and a process manager's orphaned transition loses "
            "the deadlines it wrote. Point [event_store] database_uri at [databases.default] database_uri (SQL event "
            "store) to commit them together."
        )
    found.extend(idle_backfill(app))
    if not app.runtime.sweep.enabled and str(app.conf.get("broker_url") or "").startswith(("redis", "rediss")):
        found.append(
            "The redelivery sweep is off ([custom.celery] sweep_interval = 0, or no SQL default database for the "
            "inbox): a message Redis loses while a worker takes it off a queue is never published again."
        )
    return found


def idle_backfill(app: Any, timeout: float = 1.0) -> list[str]:
    """With priority lanes on: backfill queues the running workers leave out while they take the handler queues."""
    from protean_celery.broker.workers import consumed_queues
    from protean_celery.lanes import left_out_warning

    if app.topology.lanes is None:
        return []
    consumed = consumed_queues(app, timeout)
    left_out = [] if consumed is None else app.topology.backfill_left_out(consumed)
    return [left_out_warning(left_out, "the running workers")] if left_out else []


def problems(app: Any) -> list[str]:
    """Everything wrong with ``app``'s configuration, as sentences that say what to fix."""
    from protean_celery.app import require_broker
    from protean_celery.errors import ConfigurationError

    found: list[str] = []
    try:
        require_broker(app)
    except ConfigurationError as exc:
        found.append(str(exc))
    conf = app.conf
    for key, (wanted, why) in GUARANTEES.items():
        if key == "task_serializer" and conf.get(key) == "auth" and getattr(app.settings, "security_key", None):
            continue  # message signing: Celery's auth serializer signs JSON
        if conf.get(key) != wanted:
            found.append(f"Celery setting {key} = {conf.get(key)!r} weakens a guarantee ({why}): set it to {wanted!r}.")
    broker = str(conf.get("broker_url") or "")
    if broker.startswith(("amqp", "pyamqp")) and not (conf.get("broker_transport_options") or {}).get(
        "confirm_publish"
    ):
        found.append(
            "broker_transport_options has no confirm_publish = True: on AMQP a message published on a connection "
            "that just died is lost while the relay marks it published. Set it (protean-celery's default)."
        )
    if "pickle" in (conf.get("accept_content") or []):
        found.append("accept_content allows pickle: task payloads must be JSON only.")
    if not _parks_undecodable(conf.get("worker_consumer")):
        found.append(
            f"Celery setting worker_consumer = {conf.get('worker_consumer')!r} is not "
            "protean_celery.worker.consumer:Consumer "
            "or a subclass, so task messages whose body cannot be decoded are dropped without a dead letter: "
            "use it or subclass it."
        )
    found.extend(_domain_problems(app.domain))
    found.extend(_toml_problems(app.domain))
    return found


def _parks_undecodable(consumer: Any) -> bool:
    from celery.utils.imports import symbol_by_name

    from protean_celery.worker.consumer import Consumer

    try:
        cls = symbol_by_name(consumer) if isinstance(consumer, str) else consumer
        return isinstance(cls, type) and issubclass(cls, Consumer)
    except (ImportError, AttributeError, ValueError):
        return False


def _domain_problems(domain: Any) -> list[str]:
    from protean_celery.errors import ConfigurationError
    from protean_celery.outbox.external import external_brokers

    config = domain.config
    found = []
    try:
        external_brokers(domain)  # the app refuses them at build; a later change to the config too
    except ConfigurationError as exc:
        found.append(str(exc))
    for name, conn in (config.get("databases") or {}).items():
        if name == "default" and conn.get("provider") == "memory":
            found.append(
                "[databases.default] uses the memory provider, which prefork children do not share: "
                "use sqlite or postgresql."
            )
    if (config.get("event_store") or {}).get("provider") == "memory":
        found.append(
            "[event_store] uses the memory store, which prefork children do not share: "
            'set provider = "sqlalchemy" (or "message_db") and a database_uri.'
        )
    return found


def _toml_problems(domain: Any) -> list[str]:
    from protean_celery.config_file import refuse_misplaced_celery_table
    from protean_celery.errors import ConfigurationError

    try:
        refuse_misplaced_celery_table(domain)
    except ConfigurationError as exc:
        return [str(exc)]
    return []
