"""Help is recognised without loading the app (no I/O for --help)."""

import pytest

from protean_celery.cli.loading import help_requested


@pytest.mark.parametrize(
    ("argv", "asked"),
    [
        (["celery", "-A", "x", "protean", "--help"], True),
        (["celery", "-A", "x", "protean", "status", "--help"], True),
        (["celery", "-A", "x", "protean", "status"], False),
        (["celery", "-A", "x", "call", "t", "--", "--help"], False),
    ],
)
def test_help_is_recognised(argv, asked):
    assert help_requested(argv) is asked
