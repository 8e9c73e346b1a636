"""Fixtures for every test of this project."""

import copy

import pytest
from kombu.serialization import registry


@pytest.fixture(autouse=True)
def kombu_serializers():
    """Kombu's serializer registry as it was before the test.

    A signed app's ``setup_security()`` (``[custom.celery] security_key``) makes ``auth``
    the process's default serializer and disables the others, process-wide, as a worker
    wants. Later tests of that process would then publish ``auth`` messages their
    consumers refuse (a random order once failed 7 broker and metrics tests that way).
    """
    saved = {key: copy.copy(value) for key, value in vars(registry).items()}
    yield
    vars(registry).clear()
    vars(registry).update(saved)
