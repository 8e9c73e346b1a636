"""The retry table: what kind of failure an error is, how often and how soon to retry it.

============================  =============================================  ==============================
failure                       examples                                       retries
============================  =============================================  ==============================
``CONFLICT``                  ``ExpectedVersionError`` left after the        ``transient_retries``, quick:
                              in-process ``version_retries``                 50 ms doubling, capped at 5 s
``TRANSIENT``                 connection refused or lost, timeouts,          ``transient_retries`` (10),
                              database operational errors (``database is     1 s doubling, capped at 300 s;
                              locked``, server restarting), broker errors    with Protean's transient retry
                                                                             on, its pace and budget (below)
``EARLY``                     a process manager's event whose instance       ``EARLY_RETRIES`` (12): 1 s
                              does not exist yet (``EarlyEventError``): its  doubling, capped at 60 s, about
                              start event is on its way, perhaps as the      7 minutes in all: longer than a
                              redelivery of a killed worker's message        redelivery (``redeliver_after``)
``HANDLER``                   anything else the handler raised               the handler's ``max_retries``,
                                                                             ``retry_delay_seconds`` doubling,
                                                                             capped at 300 s
============================  =============================================  ==============================

Every delay gets ±25% jitter so a crowd of failed tasks does not retry in step.
A command whose deadline (``headers.deadline``) passes before its next retry is
not retried: the task acks it as expired, as it acks a command that arrives
expired, and as Protean's own retry loop stops at the deadline.

**Protean's transient retry.** When ``[server.transient_retry] enabled = true``
(or the handler's ``retries`` option is set), Protean's ``@handle`` wrapper
retries transient errors in-process first, as under ``protean server``; what
still fails is retried by Celery at the same pace: ``backoff`` (exponential,
linear or fixed) from ``base_delay_seconds``, capped at ``max_delay_seconds``,
up to ``max_retries`` times, unless ``transient_retries`` is set under
``[custom.celery]``. With Protean's transient retry off, the 1 s / 300 s / 10
defaults above hold: Celery still rides out a broker or database restart.
Errors are classified through their whole chain (``__cause__``, ``__context__``,
Protean's ``original_exception`` and exception groups): Protean wraps a failed
commit in ``TransactionError``, the cause decides.

The handler's ``max_retries`` and ``retry_delay_seconds`` resolve as follows,
highest first:

1. ``[custom.celery.handlers.<HandlerName>]`` (or ``ProteanCelery`` overrides);
2. Protean's settings for that handler, through ``ConfigResolver``: the handler's
   ``Meta`` (``subscription_config``, ``subscription_profile``,
   ``subscription_type``) or ``[server.subscriptions.<HandlerName>]``;
3. ``[custom.celery]`` ``max_retries`` / ``retry_delay_seconds``;
4. Protean's server defaults (``[server.stream_subscription]``, the default
   profile), then Protean's built-in defaults (3 retries, 1 s).
"""

from __future__ import annotations

import functools
import random
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from protean.exceptions import ExpectedVersionError

from protean_celery.protean_api import transient_retry_config
from protean_celery.registry import HandlerSpec
from protean_celery.settings import BASE_HANDLER_OPTIONS, CelerySettings, HandlerOptions, merge_options
from protean_celery.tasks.process_manager import EarlyEventError

__all__ = [
    "Failure", "MAX_RETRY_DELAY", "Pace", "RetryPolicies", "RetryPolicy", "classify", "deadline_passes",
    "resolve_policy",
]

#: Longest wait between two retries of a handler task, in seconds.
MAX_RETRY_DELAY = 300.0
#: First retry delay of a transient error, in seconds.
TRANSIENT_BASE_DELAY = 1.0
#: First and longest retry delay of a version conflict, in seconds.
CONFLICT_BASE_DELAY, CONFLICT_MAX_DELAY = 0.05, 5.0
#: Retries of an early process-manager event, and their first and longest delay (about 7 minutes in all:
#: the start event it waits for may be the redelivery of a killed worker's message, ``redeliver_after``).
EARLY_RETRIES, EARLY_BASE_DELAY, EARLY_MAX_DELAY = 12, 1.0, 60.0


@dataclass(frozen=True)
class Pace:
    """How soon retries come, before jitter.

    Attributes:
        base: the first delay, in seconds.
        cap: the longest delay, in seconds.
        backoff: how delays grow, by Protean's names: ``exponential`` (doubling),
            ``linear`` (base, 2×base, 3×base …) or ``fixed``.
    """

    base: float
    cap: float
    backoff: str = "exponential"

    def delay(self, retries: int) -> float:
        """Seconds before retry number ``retries + 1``."""
        if self.backoff == "fixed":
            value = self.base
        elif self.backoff == "linear":
            value = self.base * (retries + 1)
        else:
            value = self.base * 2 ** min(retries, 32)
        return float(min(value, self.cap))


#: The pace of transient retries when Protean's transient retry is off.
TRANSIENT_PACE = Pace(TRANSIENT_BASE_DELAY, MAX_RETRY_DELAY)


class Failure(StrEnum):
    """The kinds of handler-task failure, each with its own retry budget and pace."""

    CONFLICT = "conflict"
    TRANSIENT = "transient"
    EARLY = "early"
    HANDLER = "handler"


@dataclass(frozen=True)
class RetryPolicy:
    """How one handler's failures are retried.

    Attributes:
        max_retries: retries of a handler error.
        retry_delay_seconds: first delay of a handler-error retry.
        version_retries: in-process retries of ``ExpectedVersionError`` (no Celery retry).
        transient_retries: retries of a transient or conflict failure.
        transient_pace: how soon transient failures are retried.
    """

    max_retries: int
    retry_delay_seconds: float
    version_retries: int
    transient_retries: int
    transient_pace: Pace = field(default=TRANSIENT_PACE)

    def budget(self, failure: Failure) -> int:
        """Celery retries allowed for ``failure``."""
        if failure is Failure.EARLY:
            return max(EARLY_RETRIES, self.max_retries)
        return self.max_retries if failure is Failure.HANDLER else self.transient_retries

    def delay(self, failure: Failure, retries: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retries + 1`` of ``failure``, jittered ±25%."""
        if failure is Failure.CONFLICT:
            pace = Pace(CONFLICT_BASE_DELAY, CONFLICT_MAX_DELAY)
        elif failure is Failure.TRANSIENT:
            pace = self.transient_pace
        elif failure is Failure.EARLY:
            pace = Pace(EARLY_BASE_DELAY, EARLY_MAX_DELAY)
        else:
            pace = Pace(self.retry_delay_seconds, MAX_RETRY_DELAY)
        return pace.delay(retries) * (0.75 + rand() / 2)


def deadline_passes(message: Any, delay: float, now: datetime) -> bool:
    """Whether ``message`` is a command whose deadline passes before a retry ``delay`` seconds after ``now``.

    Events and commands without a deadline never expire.
    """
    headers = getattr(getattr(message, "metadata", None), "headers", None)
    if headers is None or getattr(headers, "deadline", None) is None:
        return False
    return bool(headers.is_expired(now + timedelta(seconds=delay)))


@functools.cache
def _transient_types() -> tuple[type[BaseException], ...]:
    import kombu.exceptions
    import sqlalchemy.exc

    found: list[type[BaseException]] = [
        ConnectionError,
        TimeoutError,
        socket.timeout,
        socket.gaierror,
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        sqlalchemy.exc.DisconnectionError,
        sqlalchemy.exc.TimeoutError,
        kombu.exceptions.OperationalError,
    ]
    for module, names in (
        ("redis.exceptions", ("ConnectionError", "TimeoutError", "BusyLoadingError")),
        ("psycopg", ("OperationalError", "InterfaceError")),
        ("psycopg2", ("OperationalError", "InterfaceError")),
    ):
        try:
            imported = __import__(module, fromlist=list(names))
        except ImportError:
            continue
        found.extend(getattr(imported, name) for name in names if hasattr(imported, name))
    return tuple(found)


def classify(exc: BaseException) -> Failure:
    """The kind of failure ``exc`` is, judged by every exception in its chain."""
    chain = list(_chain(exc))
    if any(isinstance(item, ExpectedVersionError) for item in chain):
        return Failure.CONFLICT
    if any(isinstance(item, _transient_types()) for item in chain):
        return Failure.TRANSIENT
    if any(isinstance(item, EarlyEventError) for item in chain):
        return Failure.EARLY
    return Failure.HANDLER


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for linked in (item.__cause__, item.__context__, getattr(item, "original_exception", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)
        if isinstance(item, BaseExceptionGroup):
            pending.extend(item.exceptions)


def resolve_policy(domain: Any, settings: CelerySettings, handler_cls: Any, *names: str) -> RetryPolicy:
    """The retry policy of ``handler_cls`` (precedence in the module docstring).

    Args:
        domain: the Protean domain (its config feeds Protean's ``ConfigResolver``).
        settings: protean-celery settings.
        handler_cls: the handler class that runs (a command handler for a dispatcher).
        names: further ``[custom.celery.handlers.<name>]`` tables to consult, after the class name's.

    Raises:
        protean.exceptions.ConfigurationError: Protean's handler settings are invalid.
    """
    from protean.server.subscription.config_resolver import ConfigResolver

    own = [settings.handlers[name] for name in (handler_cls.__name__, *names) if name in settings.handlers]
    resolved = ConfigResolver(domain).resolve(handler_cls)
    protean = HandlerOptions(
        max_retries=int(resolved.max_retries), retry_delay_seconds=float(resolved.retry_delay_seconds)
    )
    specific = _protean_handler_keys(domain, handler_cls)
    protean_specific = HandlerOptions(**{key: getattr(protean, key) for key in specific})
    transient = transient_retry_config(domain, handler_cls)
    pace, budget = TRANSIENT_PACE, HandlerOptions()
    if int(transient["max_retries"]) > 0:  # Protean's transient retry is on for this handler
        pace = Pace(
            float(transient["base_delay_seconds"]), float(transient["max_delay_seconds"]), str(transient["backoff"])
        )
        budget = HandlerOptions(transient_retries=int(transient["max_retries"]))
    chosen = merge_options(*own, protean_specific, settings.handler_defaults, budget, protean, BASE_HANDLER_OPTIONS)
    return _policy(chosen, pace)


def _policy(options: HandlerOptions, pace: Pace = TRANSIENT_PACE) -> RetryPolicy:
    return RetryPolicy(
        max_retries=int(options.max_retries or 0),
        retry_delay_seconds=float(options.retry_delay_seconds or 0.0),
        version_retries=int(options.version_retries or 0),
        transient_retries=int(options.transient_retries or 0),
        transient_pace=pace,
    )


def _protean_handler_keys(domain: Any, handler_cls: Any) -> set[str]:
    """The retry keys Protean's settings give for this handler specifically (Meta or its server table)."""
    keys = {"max_retries", "retry_delay_seconds"}
    meta = getattr(handler_cls, "meta_", None)
    own_config = dict(getattr(meta, "subscription_config", None) or {})
    subscriptions = (domain.config.get("server") or {}).get("subscriptions") or {}
    server_table = dict(subscriptions.get(handler_cls.__name__) or {})
    if getattr(meta, "subscription_profile", None) or "profile" in own_config or "profile" in server_table:
        return keys  # a profile chosen for this handler sets both
    return {key for key in keys if key in own_config or key in server_table}


class RetryPolicies:
    """Every handler's retry policy, resolved once at start-up (bad settings fail early).

    Args:
        domain: the initialised Protean domain.
        settings: protean-celery settings.
        specs: the handlers (command dispatchers resolve one policy per command handler).
    """

    def __init__(self, domain: Any, settings: CelerySettings, specs: Iterable[HandlerSpec]) -> None:
        self._policies: dict[Any, RetryPolicy] = {}
        self._fallback: dict[str, RetryPolicy] = {}
        for spec in specs:
            classes = [spec.handler] if spec.handler is not None else list(spec.commands.values())
            for cls in classes:
                self._policies[cls] = resolve_policy(domain, settings, cls, spec.name)
            options = merge_options(settings.for_handler(spec.name), BASE_HANDLER_OPTIONS)
            self._fallback[spec.name] = _policy(options)

    def for_message(self, spec: HandlerSpec, message_type: str) -> RetryPolicy:
        """The policy of the handler class that takes ``message_type`` in ``spec``."""
        cls = spec.handler_for(message_type)
        policy = self._policies.get(cls) if cls is not None else None
        return policy or self._fallback[spec.name]
