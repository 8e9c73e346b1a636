"""Unit tests mirror the package: ``protean_celery/a/b.py`` is tested in ``tests/unit/a/test_b.py``.

A package's ``__init__.py`` that defines something is tested in ``tests/unit/<package>/test_<package>.py``
(the root package in ``tests/unit/test_protean_celery.py``); a module that only re-exports
(no top-level function or class) has nothing of its own to test.
"""

import ast
from pathlib import Path

import protean_celery

PACKAGE = Path(protean_celery.__file__).parent
UNIT = Path(__file__).parent

# Modules tested only through real servers and worker processes, and the tests that cover them.
INTEGRATION_ONLY = {
    "auto.py": "builds its app at import from PROTEAN_DOMAIN: tests/integration/test_worker_shutdown.py, "
    "test_cli_and_bad_input.py (celery -A protean_celery.auto)",
    "event_store/message_db.py": "tests/integration/test_database_restart.py (PostgreSQL crash-restarted)",
    "event_store/postgres.py": "tests/integration/test_event_store_contract.py (PostgreSQL)",
    "event_store/schema.py": "tests/integration/test_event_store_contract.py (SQLite and PostgreSQL)",
    "event_store/store.py": "tests/integration/test_event_store_contract.py (SQLite and PostgreSQL)",
    "testing/message_db.py": "tests/integration/test_orders_saga.py (the message_db profile)",
    "testing/plugin.py": "tests/examples/test_orders_toolkit.py (app fixtures), tests/integration (server fixtures)",
    "testing/rabbitmq.py": "tests/integration/test_orders_saga.py (the rabbitmq profile)",
    "testing/celery_fixtures.py": "tests/examples/test_celery_fixtures.py (Celery's in-thread worker on memory://)",
}


# Unit test files about the repository as a whole, not one module.
WHOLE_REPOSITORY = {
    "test_deploy_recipes.py": "the deploy/ recipes (systemd, Compose, Kubernetes)",
    "test_import_graph.py": "the package's import graph has no cycle (scripts/import_graph)",
    "test_bootstrap_services.py": "scripts/bootstrap-services (what scripts/test installs on a fresh machine)",
    "test_test_support.py": "tests/support (the shared test domain's guard)",
    "test_docs_links.py": "README.md and docs/index.md link every guide",
}


def _defines_something(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for node in tree.body)


def _mirror(module: Path) -> Path:
    relative = module.relative_to(PACKAGE)
    if relative.name != "__init__.py":
        return UNIT / relative.parent / f"test_{relative.name}"
    package = relative.parent.name or PACKAGE.name
    return UNIT / relative.parent / f"test_{package}.py"


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if _defines_something(path))


def test_every_module_has_its_mirrored_unit_test_or_a_reason():
    missing = [
        str(module.relative_to(PACKAGE))
        for module in _modules()
        if not _mirror(module).exists() and str(module.relative_to(PACKAGE)) not in INTEGRATION_ONLY
    ]
    assert missing == [], f"no tests/unit/<path>/test_<module>.py for: {missing}"


def test_the_allow_list_names_only_modules_that_exist_and_still_lack_a_unit_test():
    modules = {str(module.relative_to(PACKAGE)): module for module in _modules()}
    stale = [name for name in INTEGRATION_ONLY if name not in modules or _mirror(modules[name]).exists()]
    assert stale == [], f"remove from INTEGRATION_ONLY: {stale}"


def test_every_unit_test_file_mirrors_a_module():
    mirrors = {_mirror(module) for module in PACKAGE.rglob("*.py")}
    own = {Path(__file__)}
    strays = [
        str(path.relative_to(UNIT))
        for path in UNIT.rglob("test_*.py")
        if path not in mirrors | own and path.parent.name != "examples"
        and str(path.relative_to(UNIT)) not in WHOLE_REPOSITORY
    ]
    assert strays == [], f"unit test files with no module of that name: {strays}"
