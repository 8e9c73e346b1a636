import pytest

from protean_celery import init_domain
from protean_celery.errors import ConfigurationError
from protean_celery.redact import redact, redact_url, secrets_of
from protean_celery.testing.servers import free_port
from tests.support.shop import build_domain


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("postgresql://app:s3cret@db:5432/orders", "postgresql://app:***@db:5432/orders"),
        ("amqp://guest:p@ss@rabbit:5672//", "amqp://guest:***@rabbit:5672//"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("sqlite:////var/lib/orders.db", "sqlite:////var/lib/orders.db"),
    ],
)
def test_uris_keep_everything_but_the_password(url, shown):
    assert redact_url(url) == shown


def test_text_quoting_uris_and_bare_passwords_is_masked():
    uri = "postgresql://app:s%40cret@db/orders"
    text = f"Could not connect to database at {uri} (password s@cret)"
    masked = "Could not connect to database at postgresql://app:***@db/orders (password ***)"
    assert redact(text, secrets_of([uri])) == masked


def test_protean_connection_error_at_init_is_reraised_without_the_password():
    uri = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/orders"
    domain = build_domain(databases={"default": {"provider": "postgresql", "database_uri": uri}})
    with pytest.raises(ConfigurationError) as info:
        init_domain(domain, traverse=False)
    assert "s3cret" not in str(info.value) and "postgresql://app:***@127.0.0.1:" in str(info.value)
    assert str(info.value).startswith("domain.init() failed: ")
    assert info.value.__cause__ is None and info.value.__suppress_context__
