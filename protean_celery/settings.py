"""protean-celery's own settings, read from the domain config. Pure: no I/O.

Two homes, split by owner:

* Celery's own settings (``broker_url``, ``worker_concurrency``, ``task_acks_late`` …)
  stay in Celery's configuration (``celeryconfig.py``, ``CELERY_*`` environment
  variables, ``app.conf``) and keep Celery's names.
* protean-celery's knobs live in the domain config under ``[custom.celery]``.
  Protean drops unknown top-level tables, so a top-level ``[celery]`` table would
  vanish silently; ``[custom]`` survives and gets ``PROTEAN_ENV`` overlays and
  ``${VAR|default}`` expansion.

Precedence, highest first:

1. keyword overrides to ``ProteanCelery(domain, **overrides)``
2. ``[custom.celery.handlers.<HandlerName>]`` (per-handler keys only)
3. ``[custom.celery]``
4. the defaults below (the relay batch size and interval default to Protean's
   ``[outbox] messages_per_tick`` and ``tick_interval``, the latter floored at
   ``MIN_RELAY_INTERVAL``: beat is the safety net, nudges are the fast path)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from protean_celery.errors import ConfigurationError

__all__ = [
    "BASE_HANDLER_OPTIONS", "CelerySettings", "HandlerOptions", "MIN_RELAY_INTERVAL", "load_settings", "merge_options"
]

#: Beat fires the relay at most this often (seconds) by default.
MIN_RELAY_INTERVAL = 1.0

#: Per-handler keys and their types.
_HANDLER_KEYS: dict[str, type] = {
    "max_retries": int,
    "retry_delay_seconds": float,
    "version_retries": int,
    "transient_retries": int,
    "ordered": bool,
}


@dataclass(frozen=True)
class HandlerOptions:
    """Retry options for one handler task, as configured under ``[custom.celery]``.

    ``None`` means "not set here": ``max_retries`` and ``retry_delay_seconds``
    then come from Protean's own handler settings (``ConfigResolver``: the
    handler's ``Meta``, ``[server.subscriptions.<Name>]``,
    ``[server.stream_subscription]``); see ``tasks/retry.py``.

    Attributes:
        max_retries: Celery retries of a handler error after the first attempt.
        retry_delay_seconds: base delay between those retries (doubled each retry, capped).
        version_retries: immediate in-process retries on ``ExpectedVersionError``.
        transient_retries: Celery retries of a transient infrastructure error
            (connection lost, timeout, database operational error).
        ordered: handle the messages of one stream in their stream order
            (:mod:`protean_celery.ordering`); off by default.
    """

    max_retries: int | None = None
    retry_delay_seconds: float | None = None
    version_retries: int | None = None
    transient_retries: int | None = None
    ordered: bool | None = None


#: What a handler gets when nothing is configured anywhere.
BASE_HANDLER_OPTIONS = HandlerOptions(max_retries=3, retry_delay_seconds=1.0, version_retries=5, transient_retries=10)


@dataclass(frozen=True)
class CelerySettings:
    """Every protean-celery setting, resolved and validated.

    Attributes:
        broker_url: used only when Celery's own configuration has none.
        relay_interval: seconds between beat ticks of the outbox and command relays.
        relay_batch_size: rows claimed (or commands read) per relay round trip.
        relay_max_batches: round trips one relay run may make before it yields.
        nudge: relay right after a handler commits (the low-latency path).
        visibility_timeout: Redis visibility timeout (s); above the longest handler.
        lock_minutes: how long an outbox claim is held before another relay may retake it.
        relay_grace_seconds: a beat tick leaves outbox rows and commands younger than this
            to the fast path of the process that committed them (which publishes them at
            once, or handles them in-process); a message whose fast path was lost (the
            process died) is relayed by the first tick after this age. ``0``: ticks relay
            everything at once (duplicates are absorbed).
        handler_defaults: retry options for every handler.
        handlers: per-handler retry options keyed by handler class name.
        queue_prefix: first part of every task, queue and exchange name.
        state_database_uri: database of the relay cursors (default: the default database).
        max_payload_bytes: largest encoded task payload the relay publishes and a task
            accepts (JSON bytes); 0 means no limit.
        maintenance_interval: seconds between beat ticks of the maintenance task.
        inbox_retention_hours: inbox markers older than this are pruned. Must stay
            above the longest redelivery window (the visibility timeout, the outbox
            claim lock, plus your worst queue backlog): a message redelivered after
            its marker was pruned is handled again.
        dead_letter_retention_days: dead letters older than this are pruned
            (``0``, the default, keeps them until you purge them).
        sweep_interval: seconds between redelivery sweeps (``0`` turns the sweep off).
        redeliver_after: seconds a relayed message may go unhandled, with no copy in
            its queue or held by a worker, before the sweep republishes it.
        sweep_horizon_hours: messages relayed longer ago than this are not swept;
            must stay below ``inbox_retention_hours``.
        redelivery_attempts: republications of one lost message before the sweep
            dead-letters it.
        deadline_interval: seconds between beat ticks that fire due deadlines
            (:mod:`protean_celery.deadlines`): a deadline fires within this of its time.
        deadline_batch_size: due deadlines fired per transaction; a tick fires batches
            until none is due.
        deadline_attempts: tries to fire one deadline whose message cannot be built or
            processed before it is left as ``failed`` (``protean deadlines list``).
        continuation_messages: a handler task goes on to handle, in its own process, up
            to this many of the messages its commits produced for handlers this worker
            consumes, before the relay publishes the rest (:mod:`protean_celery.continuation`);
            ``0``: one task per handler invocation.
        ordering_retries: how often an ordered handler's message that arrived before its
            predecessor is deferred (a short countdown, not counted against the handler's
            retries) before it is dead-lettered as ``OrderingGap``.
        subscriber_reclaim_seconds: a broker subscriber's stream entry read but not acknowledged
            for this long (its bridge died between publishing and acknowledging) is taken over
            by the next bridge run.
        accept_unsigned: run task payloads without Protean's checksum
            (``metadata.envelope.checksum``) instead of dead-lettering them; for a
            migration from producers that do not sign, off by default.
        security_key: path of the PEM (RSA) private key this app signs its task messages
            with; with ``security_certificate`` and ``security_cert_store`` it turns Celery's
            message signing on (:mod:`protean_celery.signing`). ``None``: no signing.
        security_key_password: the key's password, when it is encrypted.
        security_certificate: path of the PEM certificate of ``security_key``.
        security_cert_store: directory (or glob) of the PEM certificates whose signed
            messages workers accept.
        security_digest: the signature's digest (Celery's ``security_digest``).
    """

    broker_url: str | None = None
    relay_interval: float = MIN_RELAY_INTERVAL
    relay_batch_size: int = 50
    relay_max_batches: int = 20
    nudge: bool = True
    visibility_timeout: int = 3600
    lock_minutes: float = 5.0
    relay_grace_seconds: float = 2.0
    handler_defaults: HandlerOptions = field(default_factory=HandlerOptions)
    handlers: Mapping[str, HandlerOptions] = field(default_factory=dict)
    queue_prefix: str = "protean"
    state_database_uri: str | None = None
    max_payload_bytes: int = 1_048_576
    maintenance_interval: float = 300.0
    inbox_retention_hours: float = 168.0
    dead_letter_retention_days: float = 0.0
    sweep_interval: float = 60.0
    redeliver_after: float = 300.0
    sweep_horizon_hours: float = 24.0
    redelivery_attempts: int = 3
    deadline_interval: float = 1.0
    deadline_batch_size: int = 200
    deadline_attempts: int = 5
    accept_unsigned: bool = False
    continuation_messages: int = 32
    ordering_retries: int = 100
    subscriber_reclaim_seconds: float = 60.0
    security_key: str | None = None
    security_key_password: str | None = None
    security_certificate: str | None = None
    security_cert_store: str | None = None
    security_digest: str = "sha256"

    def for_handler(self, name: str) -> HandlerOptions:
        """The retry options set for the handler class ``name``: its own table over ``[custom.celery]``.

        Keys set nowhere stay ``None``.
        """
        own = self.handlers.get(name)
        if own is None:
            return self.handler_defaults
        return merge_options(own, self.handler_defaults)


def merge_options(first: HandlerOptions, *rest: HandlerOptions) -> HandlerOptions:
    """Each key from the first options that set it (``None`` is unset)."""
    values = {}
    for item in fields(HandlerOptions):
        for options in (first, *rest):
            value = getattr(options, item.name)
            if value is not None:
                values[item.name] = value
                break
    return HandlerOptions(**values)


def load_settings(config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> CelerySettings:
    """Resolve settings from a Protean domain config and keyword overrides.

    Args:
        config: the domain's config (``domain.config``).
        overrides: keyword overrides given to ``ProteanCelery``.

    Returns:
        The validated settings.

    Raises:
        ConfigurationError: an unknown key, a value of the wrong type, or a
            top-level ``[celery]`` table.
    """
    if "celery" in config:
        raise ConfigurationError(
            "Protean ignores a top-level [celery] table: move it to [custom.celery] in domain.toml."
        )
    table = dict((config.get("custom") or {}).get("celery") or {})
    table.update(overrides or {})
    outbox = config.get("outbox") or {}
    base = CelerySettings(
        relay_interval=max(float(outbox.get("tick_interval") or 0), MIN_RELAY_INTERVAL),
        relay_batch_size=int(outbox.get("messages_per_tick") or 50),
    )
    per_handler = table.pop("handlers", {}) or {}
    defaults = _handler_options(_pick(table, set(_HANDLER_KEYS)), "[custom.celery]")
    known = {f.name for f in fields(CelerySettings)} - {"handler_defaults", "handlers"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigurationError(
            f"Unknown [custom.celery] setting(s) {', '.join(unknown)}. "
            f"Known settings: {', '.join(sorted(known | set(_HANDLER_KEYS) | {'handlers'}))}."
        )
    values = {key: _coerce(key, table[key], getattr(base, key)) for key in table}
    handlers = {
        name: _handler_options(dict(opts or {}), f"[custom.celery.handlers.{name}]")
        for name, opts in dict(per_handler).items()
    }
    settings = replace(base, handler_defaults=defaults, handlers=handlers, **values)
    _validate(settings)
    return settings


def _pick(table: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {key: table.pop(key) for key in list(table) if key in keys}


def _handler_options(table: dict[str, Any], where: str) -> HandlerOptions:
    unknown = sorted(set(table) - set(_HANDLER_KEYS))
    if unknown:
        raise ConfigurationError(
            f"Unknown {where} setting(s) {', '.join(unknown)}. Known: {', '.join(sorted(_HANDLER_KEYS))}."
        )
    values = {key: _coerce(f"{where} {key}", value, _HANDLER_KEYS[key](0)) for key, value in table.items()}
    negative = sorted(key for key, value in values.items() if value < 0)
    if negative:
        raise ConfigurationError(f"{where}: retry settings must be zero or positive, got {', '.join(negative)} < 0.")
    return HandlerOptions(**values)


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _coerce(key: str, value: Any, default: Any) -> Any:
    if default is None or (isinstance(value, type(default)) and isinstance(value, bool) == isinstance(default, bool)):
        return value
    try:
        if isinstance(default, bool) or isinstance(value, bool):  # true is not a number of retries
            raise TypeError
        return type(default)(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"[custom.celery] {key} must be {_KINDS.get(type(default), type(default).__name__)}, got {value!r}."
        ) from None


def _validate(settings: CelerySettings) -> None:
    if settings.relay_interval <= 0:
        raise ConfigurationError("[custom.celery] relay_interval must be positive (seconds).")
    if settings.relay_grace_seconds < 0:
        raise ConfigurationError("[custom.celery] relay_grace_seconds must be zero or positive (seconds).")
    if settings.lock_minutes <= 0:
        raise ConfigurationError("[custom.celery] lock_minutes must be positive (fractions allowed: 0.5 = 30 s).")
    if settings.relay_batch_size < 1 or settings.relay_max_batches < 1:
        raise ConfigurationError("[custom.celery] relay_batch_size and relay_max_batches must be >= 1.")
    if settings.visibility_timeout < 60:
        raise ConfigurationError(
            "[custom.celery] visibility_timeout must be at least 60 s and above your longest handler."
        )
    if isinstance(settings.max_payload_bytes, bool) or settings.max_payload_bytes < 0:
        raise ConfigurationError(
            "[custom.celery] max_payload_bytes must be zero (no limit) or a positive number of bytes."
        )
    if settings.ordering_retries < 0:
        raise ConfigurationError("[custom.celery] ordering_retries must be zero or positive.")
    _validate_maintenance(settings)
    _validate_sweep(settings)
    _validate_deadlines(settings)
    _validate_signing(settings)
    if not settings.queue_prefix or any(ch in settings.queue_prefix for ch in ".*# "):
        raise ConfigurationError("[custom.celery] queue_prefix must be a non-empty word without . * # or spaces.")


def _validate_maintenance(settings: CelerySettings) -> None:
    if settings.maintenance_interval <= 0:
        raise ConfigurationError("[custom.celery] maintenance_interval must be positive (seconds).")
    if settings.dead_letter_retention_days < 0:
        raise ConfigurationError("[custom.celery] dead_letter_retention_days must be 0 (keep) or positive.")
    window = max(settings.visibility_timeout / 3600, settings.lock_minutes / 60)
    if settings.inbox_retention_hours <= window:
        raise ConfigurationError(
            f"[custom.celery] inbox_retention_hours ({settings.inbox_retention_hours:g}) must exceed the longest "
            f"redelivery window ({window:g} h: visibility_timeout and lock_minutes), or redelivered messages "
            "would be handled twice."
        )


def _validate_sweep(settings: CelerySettings) -> None:
    if settings.sweep_interval < 0:
        raise ConfigurationError("[custom.celery] sweep_interval must be 0 (no sweep) or positive (seconds).")
    if settings.redeliver_after < 5:
        raise ConfigurationError("[custom.celery] redeliver_after must be at least 5 seconds.")
    if settings.redelivery_attempts < 1:
        raise ConfigurationError("[custom.celery] redelivery_attempts must be at least 1.")
    if settings.subscriber_reclaim_seconds <= 0:
        raise ConfigurationError("[custom.celery] subscriber_reclaim_seconds must be positive (seconds).")
    if not settings.redeliver_after / 3600 < settings.sweep_horizon_hours < settings.inbox_retention_hours:
        raise ConfigurationError(
            f"[custom.celery] sweep_horizon_hours ({settings.sweep_horizon_hours:g}) must exceed redeliver_after "
            f"({settings.redeliver_after:g} s) and stay below inbox_retention_hours "
            f"({settings.inbox_retention_hours:g}): the sweep decides what was handled from the inbox markers."
        )


def _validate_deadlines(settings: CelerySettings) -> None:
    if settings.deadline_interval <= 0:
        raise ConfigurationError("[custom.celery] deadline_interval must be positive (seconds).")
    if settings.deadline_batch_size < 1 or settings.deadline_attempts < 1:
        raise ConfigurationError("[custom.celery] deadline_batch_size and deadline_attempts must be >= 1.")
_SIGNING = ("security_key", "security_certificate", "security_cert_store")


def _validate_signing(settings: CelerySettings) -> None:
    for key in _SIGNING:
        value = getattr(settings, key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigurationError(f"[custom.celery] {key} must be a file path, got {value!r}.", setting=key)
    if settings.security_key_password is not None and not isinstance(settings.security_key_password, str):
        raise ConfigurationError("[custom.celery] security_key_password must be a string.",  # never the value
                                 setting="security_key_password")
    given = [key for key in _SIGNING if getattr(settings, key)]
    if given and len(given) < len(_SIGNING):
        missing = [key for key in _SIGNING if key not in given]
        raise ConfigurationError(
            f"[custom.celery] message signing needs {', '.join(_SIGNING)} together; {', '.join(given)} "
            f"set, {', '.join(missing)} missing.",
            setting=missing[0],
        )
