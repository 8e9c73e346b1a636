"""Liveness and readiness: small checks, each one component, each bounded by a timeout (I/O).

Behind ``celery -A app protean health --liveness|--readiness`` and the
connectivity part of ``protean check``. Every check is a function returning a
:class:`Check`; none raises. ``run`` runs a list of them at once, each in a
daemon thread (:mod:`protean_celery.bounded`), and turns one that has not
answered at the deadline into a failed check: a probe never hangs.

**Liveness** (``liveness``): the named worker answers Celery's ``ping``; without
a node name, any worker answering will do and, with none running, the broker
answering does (a beat or API process is alive while it can reach its broker).

**Readiness** (``readiness``): the broker, the default database and the state
database are reachable; the event store's table exists; protean-celery's tables
exist (inbox, dead letters, redelivery ledger, relay cursors); the relay keeps
up; workers answer. The relay check is what "beat is ticking" can honestly
mean from outside: no outbox row has been due for publishing longer than
``3 × relay_interval + relay_grace_seconds`` (a pending row since it was
written, a failed one since its retry time). A stopped beat with nothing to
relay passes (nothing is late); a beat that ticks while the broker is down, or
a relay that cannot keep up with the writes, fails, as it should. Commands past
the command-relay cursors carry no due time and are not judged here (the
``protean metrics`` gauge ``protean_celery_commands_unrelayed`` counts them).

Details never contain a password (:mod:`protean_celery.redact`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from protean_celery.bounded import within
from protean_celery.redact import redact, redact_url, secrets_of

__all__ = [
    "Check", "Unhealthy", "broker", "database", "state_database", "event_store", "tables", "relay", "workers",
    "liveness", "readiness", "reachability", "run", "failing",
]

#: The share of the timeout a check's own network wait may use (it answers itself, before the deadline).
INNER_SHARE = 0.8

#: The share of the timeout ``ping`` waits for replies: connecting and publishing it take time too, and a
#: live worker answers in milliseconds (the first reply ends the wait).
PING_SHARE = 0.5

#: How many relay intervals (plus the grace) an outbox row may stay due before the relay counts as stalled.
RELAY_TICKS = 3


class Unhealthy(Exception):
    """A failure whose message is already the one line to show (raised where a check is a step of more work)."""


@dataclass(frozen=True)
class Check:
    """One component's health.

    Attributes:
        name: the component (``broker``, ``database``, ``state_database``, ``event_store``,
            ``tables``, ``relay``, ``workers``).
        ok: whether it is healthy.
        detail: one line that says what was seen (and, when failing, what to fix).
    """

    name: str
    ok: bool
    detail: str


def broker(app: Any, timeout: float = 5.0) -> Check:
    """The broker accepts a connection (one attempt, no retries, ``timeout`` seconds at most)."""
    from protean_celery.lifecycle import require_broker

    url = redact_url(require_broker(app))

    def connect() -> None:
        with app.connection_for_read(connect_timeout=timeout) as connection:
            if connection.transport.driver_type == "redis":  # its client waits for a reply forever by default
                connection.transport_options.update(socket_timeout=timeout, socket_connect_timeout=timeout)
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)

    return _reach("broker", url, connect)


def database(app: Any) -> Check:
    """The default database answers ``SELECT 1`` (Protean's memory provider has nothing to reach)."""
    engine = app.runtime.inbox.engine
    if engine is None:
        return Check("database", True, "the default provider keeps data in memory: nothing to reach")
    return _reach("database", redact_url(engine.url), partial(_select_one, engine))


def state_database(app: Any) -> Check:
    """The state database (relay cursors, dead letters, redelivery ledger) answers ``SELECT 1``."""
    engine = app.runtime.state.engine
    return _reach("state_database", redact_url(engine.url), partial(_select_one, engine))


def event_store(app: Any) -> Check:
    """The event store is set up: the SQL store's table exists; any other store answers a read."""
    from sqlalchemy import inspect

    from protean_celery.event_store.schema import events

    store = app.domain.event_store.store
    engine = getattr(store, "engine", None)
    if engine is not None:
        if not inspect(engine).has_table(events.name):
            return Check("event_store", False, f"table {events.name} is missing: run `protean db setup`")
        return Check("event_store", True, f"table {events.name} exists")
    with app.domain.domain_context():
        store.read("protean_celery_probe-0", no_of_messages=1)
    return Check("event_store", True, f"{type(store).__name__} answers a read")


def tables(app: Any) -> Check:
    """protean-celery's tables exist: the state database's (cursors, dead letters, ledger), inbox and deadlines."""
    from sqlalchemy import inspect

    from protean_celery.deadlines.table import deadlines_table
    from protean_celery.inbox import inbox_table
    from protean_celery.state import STATE_TABLES

    state = app.runtime.state
    wanted = [(state.engine, table.name) for table in STATE_TABLES] if state.durable else []
    if app.runtime.inbox.enabled:
        wanted.append((app.runtime.inbox.engine, inbox_table.name))
        wanted.append((app.runtime.inbox.engine, deadlines_table.name))  # beside the inbox: the default database
    missing = [name for engine, name in wanted if not inspect(engine).has_table(name)]
    if missing:
        return Check("tables", False, f"missing {', '.join(missing)}: run `protean db setup`")
    return Check("tables", True, f"{len(wanted)} tables exist")


def relay(app: Any) -> Check:
    """No outbox row has been due for longer than ``3 × relay_interval + relay_grace_seconds``."""
    from protean_celery.waiting import oldest_due

    settings = app.runtime.settings
    limit = RELAY_TICKS * settings.relay_interval + settings.relay_grace_seconds
    late = {provider: age for provider, age in oldest_due(app.domain).items() if age is not None and age > limit}
    if late:
        worst = max(late.values())
        return Check(
            "relay", False,
            f"an outbox row in {', '.join(sorted(late))} has waited {worst:.0f} s (limit {limit:.0f} s): "
            "is beat running, and the broker reachable?",
        )
    return Check("relay", True, f"no outbox row due for more than {limit:.0f} s")


def workers(app: Any, timeout: float = 5.0, node: str | None = None) -> Check:
    """A worker answers Celery's ``ping`` within ``timeout`` (the one named ``node``, when given)."""
    replies = app.control.ping(timeout=timeout, destination=[node] if node else None, limit=1) or []
    names = sorted(name for reply in replies for name in reply)
    if not names:
        who = f"worker {node} did not answer" if node else "no worker answered"
        return Check("workers", False, f"{who} ping within {timeout:g} s: is it running?")
    return Check("workers", True, f"{', '.join(names)} answered ping")


def liveness(app: Any, timeout: float = 5.0, node: str | None = None) -> list[Check]:
    """The named worker answers; without a name, any worker or else the broker (see the module doc)."""
    inner, ping = timeout * INNER_SHARE, timeout * PING_SHARE
    if node:
        return run(app, {"workers": partial(workers, app, ping, node)}, timeout)
    broker_check, workers_check = run(
        app, {"broker": partial(broker, app, inner), "workers": partial(workers, app, ping)}, timeout
    )
    if workers_check.ok:
        return [workers_check]
    return [broker_check] if broker_check.ok else [broker_check, _not_asked(workers_check)]


def readiness(app: Any, timeout: float = 5.0, node: str | None = None) -> list[Check]:
    """Broker, databases, event store, tables, relay and workers, all at once, ``timeout`` seconds in all."""
    inner, ping = timeout * INNER_SHARE, timeout * PING_SHARE
    checks = run(app, {
        "broker": partial(broker, app, inner),
        "database": partial(database, app),
        "state_database": partial(state_database, app),
        "event_store": partial(event_store, app),
        "tables": partial(tables, app),
        "relay": partial(relay, app),
        "workers": partial(workers, app, ping, node),
    }, timeout)
    if not checks[0].ok:
        checks[-1] = _not_asked(checks[-1])
    return checks


def reachability(app: Any, timeout: float = 5.0) -> list[Check]:
    """The broker, the default database and the state database (what ``protean check`` adds)."""
    return run(app, {
        "broker": partial(broker, app, timeout * INNER_SHARE),
        "database": partial(database, app),
        "state_database": partial(state_database, app),
    }, timeout)


def run(app: Any, checks: dict[str, Callable[[], Check]], timeout: float) -> list[Check]:
    """Run ``checks`` at once, ``timeout`` seconds at most in all; an error or no answer fails its check.

    Args:
        app: the app whose URIs are masked in the details.
        checks: the check calls, by component name.
        timeout: seconds to wait for all of them.
    """
    outcomes = within(checks, timeout)
    secrets = _secrets(app)
    found = []
    for name, outcome in outcomes.items():
        if not outcome.done:
            found.append(Check(name, False, f"no answer within {timeout:g} s"))
        elif outcome.error is not None:
            found.append(Check(name, False, redact(_reason(outcome.error), secrets)))
        else:
            check = outcome.value
            found.append(Check(check.name, check.ok, redact(check.detail, secrets)))
    return found


def failing(checks: Sequence[Check]) -> list[Check]:
    """The checks that failed."""
    return [check for check in checks if not check.ok]


def _reach(name: str, url: str, call: Callable[[], Any]) -> Check:
    try:
        call()
    except Exception as error:
        return Check(name, False, f"cannot reach {url}: {_reason(error)}")
    return Check(name, True, f"{url} answers")


def _not_asked(check: Check) -> Check:
    if check.ok:
        return check
    return Check(check.name, False, "cannot be asked: the broker cannot be reached")


def _select_one(engine: Any) -> None:
    from sqlalchemy import text

    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _reason(error: BaseException) -> str:
    """One line for ``error``: the CLI's own when it names a fix (a missing table), else its driver's first line."""
    from sqlalchemy.exc import DBAPIError

    from protean_celery.cli.errors import user_error_message

    if isinstance(error, Unhealthy):
        return str(error)
    if isinstance(error, DBAPIError) and (message := user_error_message(error)) is not None:
        return message.replace("celery -A <app> ", "").rstrip(".")
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return f"{type(original).__name__}: {lines[0] if lines else ''}".rstrip(".: ")


def _secrets(app: Any) -> list[str]:
    from protean_celery.startup import configured_uris

    config = getattr(getattr(app, "domain", None), "config", None) or {}
    broker_url = str(getattr(app.conf, "broker_url", "") or "")
    return secrets_of([*configured_uris(config), broker_url])
