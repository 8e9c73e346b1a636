"""``Testbed``: a ProteanCelery app bound to Kombu's memory transport, for in-process tests.

Usable without pytest (the plugin's fixtures are thin wrappers)::

    bed = Testbed(domain, state_dir=tmp_path)
    app = bed.setup()
    app.process(PlaceOrder(...)); drain(app)
    bed.reset()      # between tests: empty tables, event store, cursors, queues
    bed.teardown()

The domain's databases and event store are pointed at SQLite files in
``state_dir`` (unless ``keep_config=True``), so tests run the same SQL paths
as a worker, with no server to start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["Testbed"]


class Testbed:
    """Build, reset and tear down an in-process ProteanCelery app.

    Args:
        domain: the Protean domain (not yet initialised, unless ``keep_config``).
        state_dir: where the SQLite files go.
        settings: protean-celery setting overrides (``[custom.celery]`` keys).
        keep_config: use the domain's own database configuration as it is.
    """

    def __init__(
        self, domain: Any, state_dir: Path | str, settings: dict[str, Any] | None = None, keep_config: bool = False
    ) -> None:
        self.domain = domain
        self.state_dir = Path(state_dir)
        self.settings = dict(settings or {})
        self.keep_config = keep_config
        self.app: Any = None

    def setup(self) -> Any:
        """Initialise the domain, create every table and return the app."""
        import protean_celery  # noqa: F401  (registers the SQL event store)
        from protean_celery import ProteanCelery, storage

        if not self.keep_config:
            self._point_at_state_dir()
        storage.prepare_databases(self.domain.config)
        if self.domain.event_store.store is None:
            self.domain.init(traverse=False)
        self.app = ProteanCelery(self.domain, config={"broker_url": "memory://"}, **self.settings)
        storage.setup(self.domain, self.app.runtime.state)
        self._purge_queues()
        return self.app

    def reset(self) -> None:
        """Empty every table, the event store, the relay cursors and the queues."""
        from protean_celery import storage

        storage.truncate(self.domain, self.app.runtime.state)
        self._purge_queues()

    def teardown(self) -> None:
        """Close the domain's connections."""
        self._purge_queues()
        self.domain.close()

    def _point_at_state_dir(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        sqlite = f"sqlite:///{self.state_dir}"
        self.domain.config["databases"] = {"default": {"provider": "sqlite", "database_uri": f"{sqlite}/domain.db"}}
        self.domain.config["event_store"] = {"provider": "sqlalchemy", "database_uri": f"{sqlite}/domain.db"}
        self.settings.setdefault("state_database_uri", f"{sqlite}/relay.db")

    def _purge_queues(self) -> None:
        if self.app is None:
            return
        with self.app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in self.app.topology.queues:
                bound = queue.bind(channel)
                bound.declare()
                bound.purge()
