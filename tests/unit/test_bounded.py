"""``within``: calls against one deadline, with their errors and what still runs."""

import threading

from protean_celery.bounded import within


def test_within_reports_errors_and_calls_still_running_at_the_deadline():
    released = threading.Event()
    outcomes = within({"ok": lambda: 1, "boom": lambda: 1 / 0, "stuck": lambda: released.wait(30)}, 0.3)
    released.set()
    assert outcomes["ok"].value == 1 and outcomes["ok"].done
    assert isinstance(outcomes["boom"].error, ZeroDivisionError)
    assert not outcomes["stuck"].done
