"""The celery subprocesses for tests: a process that exits says why; children are read from /proc."""

import os
import subprocess

import pytest

from protean_celery.errors import ServerError
from protean_celery.testing import WorkerProcess
from protean_celery.testing.processes import children_of


def test_a_worker_whose_app_cannot_be_loaded_is_a_server_error_with_its_log(tmp_path):
    worker = WorkerProcess("no_such_module_here", log_path=tmp_path / "worker.log")
    with pytest.raises(ServerError, match="celery worker exited with"):
        worker.start(timeout=60)
    assert "no_such_module_here" in worker.log()


def test_children_are_the_live_processes_this_one_started():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in children_of(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert child.pid not in children_of(os.getpid())
