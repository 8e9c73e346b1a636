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

__all__ = ["CelerySettings", "HandlerOptions", "MIN_RELAY_INTERVAL", "load_settings"]

#: Beat fires the relay at most this often (seconds) by default.
MIN_RELAY_INTERVAL = 1.0

_HANDLER_KEYS = {"max_retries", "retry_delay_seconds", "version_retries"}


@dataclass(frozen=True)
class HandlerOptions:
    """Retry options for one handler task.

    Attributes:
        max_retries: Celery retries after the first failed attempt.
        retry_delay_seconds: base delay between retries (doubled each retry, capped).
        version_retries: immediate in-process retries on ``ExpectedVersionError``.
    """

    max_retries: int = 3
    retry_delay_seconds: float = 1.0
    version_retries: int = 5


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
        handler_defaults: retry options for every handler.
        handlers: per-handler retry options keyed by handler class name.
        queue_prefix: first part of every task, queue and exchange name.
        state_database_uri: database of the relay cursors (default: the default database).
        maintenance_interval: seconds between beat ticks of the maintenance task.
        inbox_retention_hours: inbox markers older than this are pruned. Must stay
            above the longest redelivery window (the visibility timeout, the outbox
            claim lock, plus your worst queue backlog): a message redelivered after
            its marker was pruned is handled again.
        dead_letter_retention_days: dead letters older than this are pruned
            (``0``, the default, keeps them until you purge them).
    """

    broker_url: str | None = None
    relay_interval: float = MIN_RELAY_INTERVAL
    relay_batch_size: int = 50
    relay_max_batches: int = 20
    nudge: bool = True
    visibility_timeout: int = 3600
    lock_minutes: int = 5
    handler_defaults: HandlerOptions = field(default_factory=HandlerOptions)
    handlers: Mapping[str, HandlerOptions] = field(default_factory=dict)
    queue_prefix: str = "protean"
    state_database_uri: str | None = None
    maintenance_interval: float = 300.0
    inbox_retention_hours: float = 168.0
    dead_letter_retention_days: float = 0.0

    def for_handler(self, name: str) -> HandlerOptions:
        """The retry options of the handler class called ``name``."""
        return self.handlers.get(name, self.handler_defaults)


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
    defaults = _handler_options(HandlerOptions(), _pick(table, _HANDLER_KEYS), "[custom.celery]")
    known = {f.name for f in fields(CelerySettings)} - {"handler_defaults", "handlers"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigurationError(
            f"Unknown [custom.celery] setting(s) {', '.join(unknown)}. "
            f"Known settings: {', '.join(sorted(known | _HANDLER_KEYS | {'handlers'}))}."
        )
    values = {key: _coerce(key, table[key], getattr(base, key)) for key in table}
    handlers = {
        name: _handler_options(defaults, dict(opts or {}), f"[custom.celery.handlers.{name}]")
        for name, opts in dict(per_handler).items()
    }
    settings = replace(base, handler_defaults=defaults, handlers=handlers, **values)
    _validate(settings)
    return settings


def _pick(table: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {key: table.pop(key) for key in list(table) if key in keys}


def _handler_options(base: HandlerOptions, table: dict[str, Any], where: str) -> HandlerOptions:
    unknown = sorted(set(table) - _HANDLER_KEYS)
    if unknown:
        raise ConfigurationError(
            f"Unknown {where} setting(s) {', '.join(unknown)}. Known: {', '.join(sorted(_HANDLER_KEYS))}."
        )
    values = {key: _coerce(f"{where} {key}", value, getattr(base, key)) for key, value in table.items()}
    options = replace(base, **values)
    if options.max_retries < 0 or options.retry_delay_seconds < 0 or options.version_retries < 0:
        raise ConfigurationError(f"{where}: retry settings must be zero or positive, got {options}.")
    return options


def _coerce(key: str, value: Any, default: Any) -> Any:
    if default is None or isinstance(value, type(default)):
        return value
    try:
        if isinstance(default, bool):
            raise TypeError
        return type(default)(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"[custom.celery] {key} must be a {type(default).__name__}, got {value!r}."
        ) from None


def _validate(settings: CelerySettings) -> None:
    if settings.relay_interval <= 0:
        raise ConfigurationError("[custom.celery] relay_interval must be positive (seconds).")
    if settings.relay_batch_size < 1 or settings.relay_max_batches < 1:
        raise ConfigurationError("[custom.celery] relay_batch_size and relay_max_batches must be >= 1.")
    if settings.visibility_timeout < 60:
        raise ConfigurationError(
            "[custom.celery] visibility_timeout must be at least 60 s and above your longest handler."
        )
    _validate_maintenance(settings)
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
