"""The docs' mermaid diagrams parse with mermaid's own parser.

mermaid and jsdom come from the npm registry once, into ``~/.cache/protean-celery/mermaid``
(as the Message DB schema does); the test is skipped where npm is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.orders import ROOT

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed on this machine")]

PACKAGES = ("mermaid@12.3.0", "jsdom@29.1.1")
SCRIPT = ROOT / "tests" / "support" / "mermaid_parse.mjs"


@pytest.fixture(scope="module")
def parser() -> Path:
    """A folder holding mermaid, jsdom and the parse script (installed once per machine)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "protean-celery" / "mermaid"
    stamp = cache / ("installed-" + "-".join(PACKAGES).replace("/", "_"))
    if not stamp.exists():
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "package.json").write_text('{"name": "docs-diagrams", "private": true, "type": "module"}\n')
        result = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", *PACKAGES], cwd=cache,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"npm install {' '.join(PACKAGES)} failed:\n{result.stderr[-2000:]}"
        stamp.touch()
    shutil.copy(SCRIPT, cache / SCRIPT.name)
    return cache


def parse(parser: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(parser / SCRIPT.name), *map(str, files)], cwd=parser,
                          capture_output=True, text=True, timeout=120)


def test_every_mermaid_diagram_in_the_docs_parses(parser):
    pages = [p for p in sorted((ROOT / "docs").rglob("*.md")) if "```mermaid" in p.read_text()]
    blocks = sum(len(re.findall(r"^```mermaid$", p.read_text(), re.M)) for p in pages)
    assert {p.name for p in pages} >= {"message-flow.md", "topology.md"}
    result = parse(parser, *pages)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" ok\n") == blocks, result.stdout


def test_a_broken_diagram_is_reported(parser, tmp_path):
    page = tmp_path / "broken.md"
    page.write_text("```mermaid\nflowchart LR\n    relay -->|publishes|\n```\n")
    result = parse(parser, page)
    assert result.returncode == 1 and "Parse error" in result.stdout, result.stdout + result.stderr
