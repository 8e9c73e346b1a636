"""Passwords out of every URI we log, raise or print. Pure.

``redis://:s3cret@host:6379/0`` becomes ``redis://:***@host:6379/0`` and
``postgresql://user:s3cret@host/db`` becomes ``postgresql://user:***@host/db``.
Every broker or database URI that reaches a log line, an exception message or
CLI output goes through :func:`redact_url`; text that may quote one (a
library's error message) goes through :func:`redact`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "redact_url", "redact", "secrets_of"]

MASK = "***"

#: ``scheme://user:password@``: the password is everything between the first ``:`` and the last ``@``.
_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^\s/]*)@")


def redact_url(url: Any) -> str:
    """``url`` (a string or a SQLAlchemy ``URL``) with its password replaced by ``***``."""
    render = getattr(url, "render_as_string", None)
    text = render(hide_password=False) if callable(render) else str(url)
    return _CREDENTIALS.sub(lambda found: f"{found['head']}{MASK}@" if found["password"] else found[0], text)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URI's password masked, and every one of ``secrets`` too.

    Args:
        text: a message that may quote URIs (a library's error, a log line).
        secrets: further strings that must not appear (passwords taken from the
            configuration, see :func:`secrets_of`).
    """
    cleaned = redact_url(text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        cleaned = cleaned.replace(secret, MASK)
    return cleaned


def secrets_of(uris: Iterable[Any]) -> list[str]:
    """The passwords in ``uris`` (percent-decoded and as written), for :func:`redact`."""
    from urllib.parse import unquote, urlsplit

    found: list[str] = []
    for uri in uris:
        try:
            password = urlsplit(str(uri)).password
        except ValueError:
            continue
        if password:
            found.extend({password, unquote(password)})
    return found
