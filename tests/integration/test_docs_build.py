"""``mkdocs build --strict`` passes: every page in the nav, every link, every included
file and every API reference entry resolves (skipped without the ``docs`` extra)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.integration.orders import ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("mkdocstrings") is None,
                       reason="the docs extra is not installed (pip install -e '.[docs]')"),
]


def test_the_site_builds_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text()
    assert 'id="protean_celery.ProteanCelery"' in api and 'id="protean_celery.testing.WorkerProcess"' in api
    started = (tmp_path / "site" / "getting-started" / "index.html").read_text()
    assert "BookCommands" in started  # the quickstart files are included, not just named
