import pytest

from protean_celery.redact import redact, redact_url, secrets_of


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
