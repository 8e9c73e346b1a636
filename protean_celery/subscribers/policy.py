"""How a broker subscriber's failures are retried. Pure: reads config only.

The same table as every handler task (``tasks/retry.py``): a subscriber error is
retried ``max_retries`` times after the first attempt, from ``retry_delay_seconds``
doubling, then dead-lettered; transient errors (a database or broker connection)
get ``transient_retries``. The subscriber's ``max_retries`` and
``retry_delay_seconds`` resolve as follows, highest first:

1. ``[custom.celery.handlers.<SubscriberName>]`` (or ``ProteanCelery`` overrides);
2. Protean's ``[server.broker_subscription]``, the table its own server reads for subscribers;
3. ``[custom.celery]`` ``max_retries`` / ``retry_delay_seconds``;
4. protean-celery's defaults (3 retries, 1 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protean_celery.errors import ConfigurationError
from protean_celery.settings import BASE_HANDLER_OPTIONS, CelerySettings, HandlerOptions, merge_options
from protean_celery.tasks.retry import RetryPolicy

__all__ = ["subscriber_policy"]


def subscriber_policy(config: Mapping[str, Any], settings: CelerySettings, name: str) -> RetryPolicy:
    """The retry policy of the subscriber class ``name``.

    Args:
        config: the domain's config (``[server.broker_subscription]``).
        settings: protean-celery settings.
        name: the subscriber class name.

    Raises:
        ConfigurationError: ``[server.broker_subscription]`` holds a value of the wrong type.
    """
    table = (config.get("server") or {}).get("broker_subscription") or {}
    try:
        protean = HandlerOptions(
            max_retries=int(table["max_retries"]) if "max_retries" in table else None,
            retry_delay_seconds=float(table["retry_delay_seconds"]) if "retry_delay_seconds" in table else None,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"[server.broker_subscription] max_retries must be an integer and retry_delay_seconds a number: {exc}"
        ) from exc
    own = settings.handlers.get(name, HandlerOptions())
    chosen = merge_options(own, protean, settings.handler_defaults, BASE_HANDLER_OPTIONS)
    return RetryPolicy(
        max_retries=int(chosen.max_retries or 0),
        retry_delay_seconds=float(chosen.retry_delay_seconds or 0.0),
        version_retries=int(chosen.version_retries or 0),
        transient_retries=int(chosen.transient_retries or 0),
    )
