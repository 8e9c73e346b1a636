"""The domain's config file, read for what Protean drops: a top-level ``[celery]`` table (I/O).

Protean keeps only the top-level tables it knows, so ``[celery]`` in ``domain.toml``
vanishes without a word and its settings never apply. ``ProteanCelery`` refuses it at
build time; settings belong under ``[custom.celery]``. The file is found as Protean
finds it: ``.domain.toml``, ``domain.toml`` or ``pyproject.toml`` (``[tool.protean]``)
in the domain's root path or one of its two parents.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from protean_celery.errors import ConfigurationError

__all__ = ["find_config_file", "refuse_misplaced_celery_table"]

_NAMES = (".domain.toml", "domain.toml", "pyproject.toml")


def find_config_file(root: Path | str) -> Path | None:
    """The config file Protean reads for a domain rooted at ``root``, or ``None``."""
    folder = Path(root)
    for candidate in (folder, *list(folder.parents)[:2]):
        for name in _NAMES:
            path = candidate / name
            if path.is_file():
                return path
    return None


def refuse_misplaced_celery_table(domain: Any) -> None:
    """Refuse a top-level ``[celery]`` table in the domain's config file.

    A file that is not valid TOML is left to Protean, which reads it first.

    Args:
        domain: a Protean domain (its ``root_path`` locates the file).

    Raises:
        ConfigurationError: the file has a top-level ``[celery]`` table
            (``[tool.protean.celery]`` in ``pyproject.toml``).
    """
    path = find_config_file(getattr(domain, "root_path", None) or ".")
    if path is None:
        return
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    if path.name == "pyproject.toml":
        data = (data.get("tool") or {}).get("protean") or {}
    if "celery" in data:
        raise ConfigurationError(
            f"{path}: Protean ignores a top-level [celery] table, so none of its settings apply: "
            "move it to [custom.celery].",
            path=str(path),
        )
