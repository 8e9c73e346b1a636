"""``--json`` for the read-only commands: one JSON document on stdout, for scripts and probes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import click

__all__ = ["json_option", "echo_json", "jsonable"]

F = TypeVar("F", bound=Callable[..., Any])


def json_option(command: F) -> F:
    """Add ``--json`` (passed to the command as ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")(command)


def jsonable(value: Any) -> Any:
    """``value`` with dataclasses as dicts and datetimes as ISO 8601 strings."""
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON (``jsonable`` first; anything else as its ``str``)."""
    click.echo(json.dumps(jsonable(value), indent=2, default=str))
