"""Every error protean-celery raises pickles whole (prefork pipes and result backends pickle them).

The errors are found, not listed: every subclass of ``ProteanCeleryError`` defined in any module of the
package (``errors.__all__``, and those defined or left out elsewhere: ``ParkingFailed``, ``EarlyEventError``).
"""

import importlib
import pickle
import pkgutil

import pytest
from protean.exceptions import ConfigurationError as ProteanConfigurationError

import protean_celery
from protean_celery import errors
from protean_celery.errors import ProteanCeleryError

#: Modules not imported to find errors: importing builds an app from the environment.
NOT_IMPORTED = {"protean_celery.auto"}


def _every_error() -> list[type[ProteanCeleryError]]:
    for module in pkgutil.walk_packages(protean_celery.__path__, "protean_celery."):
        if module.name not in NOT_IMPORTED:
            importlib.import_module(module.name)
    found, todo = set(), [ProteanCeleryError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("protean_celery.") and cls not in found:
            found.add(cls)
            todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


ERRORS = _every_error()


def test_the_search_finds_every_exported_error_and_those_outside_all():
    from protean_celery.tasks.process_manager import EarlyEventError

    names = {cls.__name__ for cls in ERRORS}
    assert set(errors.__all__) <= names
    assert {"ParkingFailed", "EarlyEventError"} <= names and EarlyEventError in ERRORS


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_pickles_with_its_message_and_fields(cls):
    error = cls("what to fix", handler="x.Y")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == "what to fix"
    assert copy.handler == "x.Y" and copy.fields == {"handler": "x.Y"}


def test_users_catch_what_they_already_catch():
    assert issubclass(errors.ConfigurationError, ProteanConfigurationError)
    assert issubclass(errors.TopologyError, ValueError)
    assert issubclass(errors.UnknownHandlerError, KeyError)
    assert str(errors.UnknownHandlerError("no handler")) == "no handler"
