"""The package has no import cycle (scripts/import_graph, annotation-only imports included)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, package: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "scripts" / "import_graph"), *args, str(package)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def test_protean_celery_has_no_import_cycle():
    result = _run("--annotations", package=ROOT / "protean_celery")
    assert result.returncode == 0, result.stdout


def test_a_cycle_is_named_and_fails(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.a import f\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    result = _run(package=package)
    assert result.returncode == 1
    assert "pkg.a -> pkg.b" in result.stdout and "pkg.b -> pkg.a" in result.stdout and "pkg.c" not in result.stdout
