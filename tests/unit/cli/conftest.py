"""The CLI tests also use the app with a broker subscriber."""

from tests.unit.subscribers.conftest import feed_app  # noqa: F401  (a fixture)
