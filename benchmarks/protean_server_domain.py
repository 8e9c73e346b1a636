"""The orders domain for ``protean server --domain benchmarks.protean_server_domain``.

``protean server`` calls ``domain.init()``, which by default imports every
module under the domain's root (``workers/orders``), under other module names:
``app.py`` would build the Celery app inside Protean's server, and the domain
package would register its elements a second time. The example registers every
element on import, so here ``init`` skips that traversal and nothing else.
"""

from __future__ import annotations

from functools import partial

from workers.orders.domain import domain

domain.init = partial(type(domain).init, domain, traverse=False)  # type: ignore[method-assign]

__all__ = ["domain"]
