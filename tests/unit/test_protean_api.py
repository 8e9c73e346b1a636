"""Every Protean internal that protean_celery.protean_api reaches still exists on the installed Protean.

A Protean release that moves or renames one of them fails here, naming it, before
anything else fails somewhere less obvious.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect

import pytest

SEAM = "protean_celery/protean_api.py"

#: (module, attribute path, parameters it must accept) for every private name the seam uses.
INTERNALS = [
    ("protean.domain", "Domain._get_outbox_repo", ("provider_name",)),
    ("protean.domain", "Domain._events_and_commands", ()),
    ("protean.domain", "Domain._upcaster_chain", ()),
    ("protean.domain", "Domain.has_outbox", ()),
    ("protean.utils.outbox", "OutboxRepository._eligibility_criteria", ("now", "target_broker")),
    ("protean.utils.outbox", "OutboxRepository.claim_batch", ()),
    ("protean.utils.outbox", "OutboxRepository.cleanup_old_messages", ()),
    ("protean.utils.outbox", "OutboxRepository.count_by_status", ()),
    ("protean.utils.outbox", "_outbox_provider_names", ("domain",)),
    ("protean.port.dao", "BaseDAO._update_all", ("criteria",)),
    ("protean.port.dao", "BaseDAO._claim", ("criteria", "claim_fields", "limit", "order_by")),
    ("protean.port.event_store", "BaseEventStore._read", ("stream_name", "position", "no_of_messages")),
    ("protean.core.process_manager", "_resolve_correlation_value", ("event", "correlate_spec")),
    ("protean.utils.mixins", "HandlerMixin._handle", ("item",)),
    ("protean.testing", "_events_for_correlation", ("domain", "correlation_id")),
    ("protean.utils.mixins", "_get_transient_retry_config", ("instance",)),
    ("protean.server.tracing", "TraceEmitter._ensure_initialized", ()),
    ("protean.server.tracing", "TraceEmitter._check_subscribers", ()),
    ("protean.server.engine", "_extract_correlation_id", ("message",)),
    ("protean.server.engine", "_extract_source_message_id", ("message",)),
    ("protean.port.broker", "BaseBroker._ensure_group", ("group_name", "stream")),
    ("protean.adapters.broker.redis", "RedisBroker._client", ()),
]


def _resolve(module_name: str, path: str) -> object:
    target: object = importlib.import_module(module_name)
    for part in path.split("."):
        if not hasattr(target, part):
            pytest.fail(f"Protean moved or renamed {module_name}.{path} (no {part!r}): update {SEAM}")
        target = inspect.getattr_static(target, part) if inspect.isclass(target) else getattr(target, part)
    return target


@pytest.mark.parametrize(("module_name", "path", "parameters"), INTERNALS, ids=[i[1] for i in INTERNALS])
def test_protean_internal_is_where_the_seam_reaches_it(module_name: str, path: str, parameters: tuple[str, ...]):
    found = _resolve(module_name, path)
    if not parameters:
        return
    function = found.__func__ if isinstance(found, classmethod | staticmethod) else found
    accepted = inspect.signature(function).parameters  # type: ignore[arg-type]
    missing = [name for name in parameters if name not in accepted]
    assert not missing, f"Protean's {module_name}.{path} no longer takes {missing}: update {SEAM}"


def test_sqlalchemy_provider_keeps_its_engine_in_engine():
    from protean.adapters.repository.sqlalchemy import SAProvider

    source = inspect.getsource(SAProvider)
    assert "self._engine" in source, (
        "Protean's SQLAlchemy provider no longer keeps self._engine: update provider_engine"
    )


def test_message_db_store_caches_its_client_in_client():
    source = _source_of("protean.adapters.event_store.message_db")
    assert "self._client" in source, "Protean's MessageDBStore no longer caches self._client: update reset_client"


def test_handle_decorator_records_start_and_correlate():
    from protean.utils.mixins import handle

    marker = handle("SomeEvent", start=True, correlate="order_id")
    assert marker._start is True, "protean.utils.mixins.handle no longer records _start: update is_start"
    assert marker._correlate == "order_id", "protean.utils.mixins.handle no longer records _correlate"


def test_handlers_keep_their_methods_by_type_in_handlers():
    from protean.core.process_manager import BaseProcessManager
    from protean.utils.mixins import HandlerMixin

    assert issubclass(BaseProcessManager, HandlerMixin)
    assert "cls._handlers" in inspect.getsource(HandlerMixin), (
        "Protean's HandlerMixin no longer keeps cls._handlers by message type: update process_manager_methods"
    )


def test_the_seam_resolves_types_on_a_real_domain(shop_app):
    from protean_celery import protean_api

    domain = shop_app.domain
    with domain.domain_context():
        names = protean_api.known_types(domain)
        assert names, "no event or command type registered"
        some = sorted(names)[0]
        assert protean_api.resolve_type(domain, some) is not None
        assert protean_api.resolve_type(domain, "Nobody.Knows.v1") is None


def test_trace_listening_is_false_without_a_redis_default_broker(shop_app):
    from protean_celery import protean_api

    emitter = shop_app.domain.trace_emitter
    assert emitter._persist  # Protean persists traces by default: only a broker without Redis says no
    assert protean_api.trace_listening(emitter) is False


def _source_of(module_name: str) -> str:
    """The module's source text, without importing it (its optional driver may be missing)."""
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin, f"Protean no longer ships {module_name}: update {SEAM}"
    with open(spec.origin, encoding="utf-8") as handle:
        return handle.read()


def test_the_redis_broker_keeps_its_client_and_consumer_name_where_the_seam_reads_them(shop_app):
    from protean.adapters.broker.redis import RedisBroker

    from protean_celery.protean_api import _redis_client

    broker = RedisBroker("partners", shop_app.domain, {"URI": "redis://127.0.0.1:1/0"})  # connects lazily
    assert broker._consumer_name and _redis_client(broker) is broker.redis_instance
    assert _redis_client(shop_app.domain.brokers["default"]) is None  # the inline broker: nothing to reclaim


def test_broker_messages_get_protean_s_correlation_and_source_id():
    from protean_celery.protean_api import broker_correlation_id, broker_source_id

    payload = {"metadata": {"headers": {"id": "e1"}, "domain": {"correlation_id": "c1"}}}
    assert (broker_correlation_id(payload), broker_source_id(payload)) == ("c1", "e1")
    assert broker_source_id({"ref": 1}) is None and broker_correlation_id({"ref": 1})
