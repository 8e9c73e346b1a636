"""Fitness tests: the public surface and cheap imports."""

import subprocess
import sys

import protean_celery


def test_public_surface():
    assert set(protean_celery.__all__) >= {"ProteanCelery", "ConfigurationError", "TopologyError", "__version__"}
    for name in protean_celery.__all__:
        assert getattr(protean_celery, name)


def test_importing_the_plugin_and_pure_modules_loads_no_driver():
    code = (
        "import sys, protean_celery.testing.plugin, protean_celery.naming, protean_celery.settings, "
        "protean_celery.topology, protean_celery.envelope; "
        "print(sorted(m for m in ('psycopg', 'psycopg2', 'redis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
