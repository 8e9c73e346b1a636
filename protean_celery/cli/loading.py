"""How ``celery -A module`` loads the app, made fit for users: help without I/O, errors in one line.

``celery`` imports the ``-A`` module before it looks at the sub-command, even for
``--help``. Two helpers keep that import honest:

* ``help_requested()`` lets an app module skip its I/O (creating the state folder,
  connecting to databases) when the command line only asks for help;
* ``guard_app_loading()`` makes a protean-celery or Protean configuration error
  raised while the module loads (a bad ``[custom.celery]`` value, a top-level
  ``[celery]`` table) print one line and exit 1, where Celery would print the whole
  traceback first. Other errors keep Celery's own report.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

__all__ = ["app_of", "help_requested", "guard_app_loading"]


def help_requested(argv: Sequence[str] | None = None) -> bool:
    """Whether this command line only asks for help (``--help`` before any ``--``).

    Args:
        argv: the command line (default: ``sys.argv``).

    Example::

        if help_requested():          # celery -A workers.orders.app … --help
            app = Celery("protean.orders")
        else:
            prepare_databases(domain.config)
            domain.init(traverse=False)
            app = ProteanCelery(domain)
    """
    args = list(sys.argv if argv is None else argv)[1:]
    if "--" in args:
        args = args[: args.index("--")]
    return "--help" in args


def guard_app_loading() -> None:
    """Report configuration errors of the ``-A`` module in one line (exit 1).

    Wraps the ``find_app`` that Celery's command line calls, once, and only when
    that command line is running (it loads this package's ``celery.commands``
    entry point first); a plain ``import protean_celery.cli`` changes nothing.
    """
    cli = sys.modules.get("celery.bin.celery")
    find_app = getattr(cli, "find_app", None)
    if find_app is None or getattr(find_app, "_protean_celery_guard", False):
        return
    cli.find_app = _guarded(find_app)  # type: ignore[union-attr]


def _guarded(find_app: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(app: str, *args: Any, **kwargs: Any) -> Any:
        from protean_celery.cli.errors import one_line

        try:
            return find_app(app, *args, **kwargs)
        except Exception as error:
            cause = _configuration_error(error)
            if cause is None:
                raise
            click.echo(f"Error: cannot load {app}: {one_line(str(cause))}", err=True)
            sys.exit(1)

    guarded._protean_celery_guard = True  # type: ignore[attr-defined]
    return guarded


def _configuration_error(error: BaseException) -> BaseException | None:
    """Our typed error or Protean's ``ConfigurationError`` in ``error``'s chain.

    Celery re-raises an import failure as ``ValueError("Couldn't import …")`` with the
    original as its context.
    """
    from protean.exceptions import ConfigurationError

    from protean_celery.errors import ProteanCeleryError

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ProteanCeleryError | ConfigurationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def app_of(ctx: click.Context) -> Any:
    """The ``ProteanCelery`` app Celery loaded with ``-A``.

    Raises:
        click.UsageError: ``-A`` did not name a ProteanCelery app.
    """
    from protean_celery.app import ProteanCelery

    app = getattr(ctx.find_root().obj, "app", None)
    if not isinstance(app, ProteanCelery):
        raise click.UsageError(
            "celery -A must name a ProteanCelery app, e.g. celery -A workers.orders.app protean topology"
        )
    return app
