"""``celery -A protean_celery.auto …``: find the domain as Protean's CLI does.

The domain comes from ``PROTEAN_DOMAIN`` (or ``domain.py`` in the current folder),
in any form Protean's own CLI accepts: a path (``src/shop``), a module
(``shop.domain``) or ``module:instance`` (``shop.domain:domain``)::

    PROTEAN_DOMAIN=workers.orders.domain:domain celery -A protean_celery.auto worker -c 2

The domain's SQLite folders and missing databases are created, the domain is
initialised (traversing its folder for elements, as ``protean`` does; set
``PROTEAN_CELERY_TRAVERSE=0`` when every element is imported with the domain
module), and ``app`` is its ``ProteanCelery``.
"""

from __future__ import annotations

import os

from celery import Celery
from protean.utils.domain_discovery import derive_domain

from protean_celery import ProteanCelery, prepare_databases
from protean_celery.cli.loading import help_requested
from protean_celery.errors import ConfigurationError

__all__ = ["app", "load_app"]


def load_app(domain_path: str | None = None) -> ProteanCelery:
    """Derive, prepare and initialise the domain, and build its app.

    Raises:
        ConfigurationError: no domain could be found.
    """
    try:
        domain = derive_domain(domain_path)
    except Exception as exc:  # Protean raises NoDomainException and import errors here
        raise ConfigurationError(
            f"No Protean domain found ({exc}). Set PROTEAN_DOMAIN to a path, a module or module:instance, "
            "e.g. PROTEAN_DOMAIN=workers.orders.domain:domain."
        ) from exc
    if domain is None:
        raise ConfigurationError(
            "No Protean domain found: set PROTEAN_DOMAIN (a path, a module or module:instance) "
            f"or run from the folder holding domain.py (current folder: {os.getcwd()})."
        )
    prepare_databases(domain.config)
    if domain.event_store.store is None:
        domain.init(traverse=os.environ.get("PROTEAN_CELERY_TRAVERSE", "1") not in ("0", "false", "no"))
    return ProteanCelery(domain)


#: For ``--help`` a plain Celery app: help creates no files and connects to nothing.
app: Celery = Celery("protean") if help_requested() else load_app()
