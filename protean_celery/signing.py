"""Signed task messages: Celery's ``auth`` serializer, switched on from ``[custom.celery]`` (I/O at build).

Protean's checksum (``metadata.envelope.checksum``) shows a payload was not
altered, but anyone who can write to the broker can compute one. Signing shows
who sent it: with ``security_key``, ``security_certificate`` and
``security_cert_store`` set, ``ProteanCelery`` configures Celery's message
signing (``task_serializer = "auth"``, ``accept_content = ["auth"]``, the
``security_*`` settings, ``app.setup_security()``). Every process that builds
the app (workers, beat, an API placing commands, the CLI) then signs what it
publishes with the key, over JSON, and a worker runs only messages signed by a
certificate in the store:

* an unsigned message (plain JSON) is refused by ``accept_content``; Celery's
  ``task_rejected`` signal parks it (:mod:`protean_celery.worker.consumer`);
* a message whose signature does not verify (signed with another key, by a
  certificate not in the store, or altered) fails to decode, and the worker's
  consumer parks it (:func:`refused_signature` words its dead letter).

Both end in the dead letters as ``DecodeError`` with the raw body; no task runs.
Results stay JSON (``result_accept_content = ["json"]`` unless set).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protean_celery.errors import ConfigurationError

if TYPE_CHECKING:
    from celery import Celery

    from protean_celery.settings import CelerySettings

__all__ = ["AUTH_CONTENT_TYPE", "SIGNING_SETTINGS", "enable_signing", "refused_signature", "signing_enabled"]

#: The content type of messages Celery's ``auth`` serializer signs.
AUTH_CONTENT_TYPE = "application/data"

#: The settings that switch signing on; all three or none.
SIGNING_SETTINGS = ("security_key", "security_certificate", "security_cert_store")


def enable_signing(app: Celery, settings: CelerySettings) -> bool:
    """Configure Celery's message signing on ``app`` when the settings ask for it.

    Args:
        app: the app being built (its ``conf`` is updated).
        settings: protean-celery settings (``security_*``).

    Returns:
        Whether signing is on.

    Raises:
        ConfigurationError: a key, certificate or store path that does not exist or
            cannot be read as PEM (naming the setting), or ``cryptography`` missing.
    """
    if not settings.security_key:
        return False
    for name in SIGNING_SETTINGS:
        _require_path(name, str(getattr(settings, name)))
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "[custom.celery] security_key turns message signing on, which needs the cryptography package: "
            "pip install 'protean-celery[signing]'."
        ) from None
    _load(settings)
    app.conf.update(
        task_serializer="auth",
        accept_content=["auth"],
        security_key=settings.security_key,
        security_key_password=settings.security_key_password,
        security_certificate=settings.security_certificate,
        security_cert_store=settings.security_cert_store,
        security_digest=settings.security_digest,
    )
    if app.configured:
        _setup(app)
    else:  # set up once the configuration is loaded, so config_from_object after the build still applies
        app.on_after_configure.connect(lambda sender=None, **_: _setup(app), weak=False)
    return True


def signing_enabled(app: Any) -> bool:
    """Whether ``app`` signs its task messages (and accepts only signed ones)."""
    return app.conf.get("task_serializer") == "auth"


def refused_signature(exc: BaseException) -> str:
    """What a dead letter says about a signed message that could not be verified (``exc``: why)."""
    return (
        f"The task message's signature does not verify ({exc}): it was not signed by a certificate in "
        "[custom.celery] security_cert_store, or it was altered after signing. No task ran; the raw body "
        "is kept here."
    )


def _setup(app: Celery) -> None:
    """``app.setup_security()``, keeping JSON enabled for control replies and results."""
    if app.conf.result_accept_content is None:
        app.conf.result_accept_content = ["json"]
    app.setup_security(allowed_serializers=["json"], serializer="json")


def _load(settings: CelerySettings) -> None:
    """Read the key, certificate and store now, so a bad one fails the build and names its setting."""
    from celery.exceptions import SecurityError
    from celery.security.certificate import Certificate, FSCertStore
    from celery.security.key import PrivateKey

    loaders = {
        "security_key": lambda path: PrivateKey(Path(path).read_text(), password=settings.security_key_password),
        "security_certificate": lambda path: Certificate(Path(path).read_text()),
        "security_cert_store": FSCertStore,
    }
    for name, load in loaders.items():
        path = str(getattr(settings, name))
        try:
            load(path)
        except (SecurityError, ValueError, TypeError, OSError) as exc:
            raise ConfigurationError(
                f"[custom.celery] {name} = {path!r} cannot be loaded: {_first_line(exc)}. It must be the PEM "
                f"{_WHAT[name]} (RSA; security_key_password when the key is encrypted).",
                setting=name,
            ) from None


def _require_path(name: str, path: str) -> None:
    if not Path(path).exists() and not (name == "security_cert_store" and glob.glob(path)):
        raise ConfigurationError(
            f"[custom.celery] {name} = {path!r}: no such file or directory. Point it at the PEM "
            f"{_WHAT[name]}, or remove the security_* settings to run without message signing.",
            setting=name,
        )
    if name == "security_cert_store" and not glob.glob(os.path.join(path, "*") if os.path.isdir(path) else path):
        raise ConfigurationError(
            f"[custom.celery] security_cert_store = {path!r} holds no certificate: every message would be "
            "refused. Put the PEM certificates of the apps whose messages workers accept there.",
            setting=name,
        )


_WHAT = {
    "security_key": "private key that signs this app's messages",
    "security_certificate": "certificate of that key",
    "security_cert_store": "certificates (a directory or a glob) whose messages workers accept",
}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
