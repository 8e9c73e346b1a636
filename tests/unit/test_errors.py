import pickle

import pytest
from protean.exceptions import ConfigurationError as ProteanConfigurationError

from protean_celery import errors


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_pickles_with_its_message_and_fields(name):
    cls = getattr(errors, name)
    error = cls("what to fix", handler="x.Y")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == "what to fix"
    assert copy.handler == "x.Y"


def test_users_catch_what_they_already_catch():
    assert issubclass(errors.ConfigurationError, ProteanConfigurationError)
    assert issubclass(errors.TopologyError, ValueError)
    assert issubclass(errors.UnknownHandlerError, KeyError)
    assert str(errors.UnknownHandlerError("no handler")) == "no handler"
