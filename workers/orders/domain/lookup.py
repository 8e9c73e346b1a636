"""Load and store through the current domain's repositories (shared by the handlers)."""

from __future__ import annotations

from typing import Any, TypeVar

from protean import current_domain
from protean.exceptions import ObjectNotFoundError

_A = TypeVar("_A")


def find(cls: type[_A], order_id: str) -> _A | None:
    """Load ``cls`` by id through its repository, or ``None`` if absent."""
    try:
        return current_domain.repository_for(cls).get(order_id)
    except ObjectNotFoundError:
        return None


def save(item: Any) -> None:
    """Add ``item`` to its repository (inside the handler's Unit of Work)."""
    current_domain.repository_for(type(item)).add(item)
