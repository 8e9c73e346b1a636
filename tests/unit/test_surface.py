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


def test_check_reports_an_amqp_broker_without_publisher_confirms(shop_app):
    from protean_celery.cli.inspect import problems

    shop_app.conf.broker_url = "amqp://guest:guest@127.0.0.1:5672//"
    assert not [line for line in problems(shop_app) if "confirm_publish" in line]  # the default is on
    shop_app.conf.broker_transport_options = {"visibility_timeout": 3600}
    assert [line for line in problems(shop_app) if "confirm_publish" in line]


def test_check_warns_when_nothing_would_republish_a_message_redis_lost(shop_app):
    from protean_celery.cli.inspect import warnings

    shop_app.conf.broker_url = "redis://127.0.0.1:6379/0"
    assert not shop_app.runtime.sweep.enabled  # the memory provider keeps no inbox markers
    assert [line for line in warnings(shop_app) if "redelivery sweep is off" in line]
    shop_app.conf.broker_url = "amqp://guest:guest@127.0.0.1:5672//"
    assert not [line for line in warnings(shop_app) if "redelivery sweep" in line]
