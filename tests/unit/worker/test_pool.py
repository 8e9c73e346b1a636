"""The worker pool protean-celery sets: Celery's prefork pool, skipping a child that already exited."""

from types import SimpleNamespace

from celery import concurrency

from protean_celery.worker.pool import AsynPool, TaskPool


class _Hub:
    def __init__(self):
        self.readers = []

    def add_reader(self, fd, *args):
        if fd is None:
            raise ValueError("file descriptor is None")  # what Kombu's hub does
        self.readers.append(fd)


def test_the_apps_worker_pool_setting_names_this_pool(shop_app):
    assert concurrency.get_implementation(shop_app.conf.worker_pool) is TaskPool
    assert TaskPool.Pool is AsynPool


def test_a_child_that_exited_is_not_registered_with_the_event_loop_again():
    hub = _Hub()
    exited = SimpleNamespace(pid=41, _sentinel_poll=None)
    AsynPool._track_child_process(object.__new__(AsynPool), exited, hub)  # no ValueError: skipped
    assert hub.readers == []


def test_a_live_child_is_registered_as_before():
    hub = _Hub()
    pool = object.__new__(AsynPool)
    pool._event_process_exit = lambda *args: None
    AsynPool._track_child_process(pool, SimpleNamespace(pid=42, _sentinel_poll=7), hub)
    assert hub.readers == [7]
