"""A read cut mid-statement gets its result in a process that is not a worker; a cut write is not repeated.

An API reads with Protean's repositories and the SQL event store, a CLI lists dead letters. The read is made
slow by a lock (another session holds ``LOCK TABLE … IN ACCESS EXCLUSIVE MODE``),
and its backend is terminated while it waits (``pg_terminate_backend``: what a
PostgreSQL crash or restart does to every connection). The read runs once more on a
fresh connection (a new backend waits on the lock) and, once the lock is released,
the caller gets its rows. A command placed (a write) and cut the same way fails
with an error and is not stored: a write whose commit may have happened is never
replayed behind the caller's back (see :mod:`protean_celery.cut_reads`).
"""

import threading

import pytest
import sqlalchemy as sa
from protean.core.unit_of_work import UnitOfWork

from protean_celery import ProteanCelery, storage
from protean_celery.cut_reads import retry_cut_read
from protean_celery.sql import make_engine
from protean_celery.testing.servers import PostgresServer
from tests.support.shop import Order, PlaceOrder, build_domain
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    with PostgresServer(crash_safe=True) as started:
        yield started


@pytest.fixture(scope="module")
def url(server):
    return server.create_database("cut_reads")


PROBE, WRITTEN = sa.table("cut_probe", sa.column("v")), sa.table("cut_written", sa.column("v"))


@pytest.fixture(scope="module")
def probe(url):
    """A table to lock and read (``cut_probe``, one row) and one to write (``cut_written``, empty)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS cut_probe (v text)")
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS cut_written (v text)")
        conn.exec_driver_sql("INSERT INTO cut_probe VALUES ('probe')")
    engine.dispose()


@pytest.fixture
def app(url, probe):
    domain = build_domain(databases={"default": {"provider": "postgresql", "database_uri": url}},
                          event_store={"provider": "sqlalchemy", "database_uri": url})
    domain.init(traverse=False)
    app = ProteanCelery(domain, config={"broker_url": "memory://", "task_always_eager": False})
    storage.setup(domain, app.runtime.state)
    with domain.domain_context():
        storage.truncate(domain, app.runtime.state)
    yield app
    domain.close()


class Cut:
    """Runs ``call`` in a thread while ``table`` is locked and cuts the backend waiting on the lock.

    Args:
        url: the database.
        table: the table to lock.
        crash: how to cut it (default: ``pg_terminate_backend`` of that backend only).
    """

    def __init__(self, url, table, crash=None):
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        self.locker = sa.create_engine(url).connect()
        self.table, self.crash = table, crash
        self.result, self.error, self.done, self.cut = None, None, False, []

    def run(self, call):
        lock = self.locker.begin()
        self.locker.exec_driver_sql(f'LOCK TABLE "{self.table}" IN ACCESS EXCLUSIVE MODE')
        thread = threading.Thread(target=self._call, args=(call,))
        thread.start()
        try:
            waiting = wait_until(self._waiting, what=f"a backend waiting on the lock of {self.table}")
            self.cut.append(waiting)
            self.crash() if self.crash else self._terminate(waiting)
            self._settle()
        finally:
            self._release(lock)
            thread.join(timeout=60)
            self.admin.dispose()
        return self

    def retried(self):
        """Whether a new backend (not a terminated one) waited on the lock after the cut."""
        return self._waiting() is not None

    def _call(self, call):
        try:
            self.result = call()
        except Exception as exc:  # the test asserts on it
            self.error = exc
        self.done = True

    def _release(self, lock):
        try:
            lock.commit()
        except sa.exc.DBAPIError:  # a crash-restart cut the locker too: its lock went with it
            pass
        self.locker.close()

    def _waiting(self):
        with self.admin.connect() as conn:
            pids = conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).scalars().all()
        fresh = [pid for pid in pids if pid not in self.cut]
        return fresh[0] if fresh else None

    def _terminate(self, pid):
        with self.admin.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar()

    def _settle(self):
        """Wait until the caller either failed or waits on the lock again (a repeat), so both show."""
        wait_until(lambda: self.done or self.retried(), what="the caller finished or read again")
        self.repeated = self.error is None and (self.done or self.retried())


def test_an_event_store_read_cut_mid_statement_returns_its_messages(app, url):
    with app.domain.domain_context():
        app.process(PlaceOrder(order_id="kept"))
        store = app.domain.event_store.store
        category = f"{app.domain.normalized_name}::order:command"

        cut = Cut(url, "protean_events").run(lambda: [m.data["order_id"] for m in store.read(category)])

    assert cut.error is None and cut.repeated
    assert cut.result == ["kept"]


def test_a_dead_letter_list_cut_mid_statement_returns_the_entries(app, url):
    cut = Cut(url, "protean_celery_dead_letters").run(lambda: app.runtime.state.dead_letters.list())

    assert cut.error is None and cut.repeated
    assert cut.result == []


def test_a_repository_read_cut_mid_statement_returns_its_rows(app, url):
    with app.domain.domain_context():
        app.domain.repository_for(Order).add(Order(order_id="o1", status="placed"))
        table = app.domain.repository_for(Order)._dao.database_model_cls.__table__.name

        def read():
            with app.domain.domain_context():
                order = app.domain.repository_for(Order).get("o1")
                return order.status, app.domain.repository_for(Order)._dao.query.all().total

        cut = Cut(url, table).run(read)

    assert cut.error is None and cut.repeated
    assert cut.result == ("placed", 1)


def test_a_read_in_a_unit_of_work_that_wrote_is_not_repeated(app, url):
    with app.domain.domain_context():

        def write_then_read():
            with app.domain.domain_context(), UnitOfWork() as uow:
                app.domain.repository_for(Order).add(Order(order_id="w1"))
                assert app.domain.repository_for(Order)._dao.query.all().total == 1  # w1 is flushed
                uow.get_session("default").execute(sa.select(PROBE.c.v)).all()  # cut here

        cut = Cut(url, "cut_probe").run(write_then_read)

    assert cut.error is not None and not cut.repeated
    with app.domain.domain_context():
        assert app.domain.repository_for(Order)._dao.query.all().total == 0  # w1 was rolled back with the cut


def test_a_command_cut_mid_commit_fails_and_is_not_stored_behind_the_callers_back(app, url):
    with app.domain.domain_context():
        store = app.domain.event_store.store
        category = f"{app.domain.normalized_name}::order:command"

        command = PlaceOrder(order_id="cut")
        cut = Cut(url, "protean_events").run(lambda: app.process(command))

        assert cut.error is not None and not cut.repeated  # the caller is told; nothing ran it again
        assert [m.data["order_id"] for m in store.read(category)] == []  # the lock is free: it would be here


def test_our_engines_repeat_a_cut_read_once_and_never_a_read_after_a_write(url, probe):
    engine = make_engine(url, "test")

    def read():
        with engine.connect() as conn:
            return conn.execute(sa.select(PROBE.c.v)).scalars().all()

    def write_then_read():
        with engine.begin() as conn:
            conn.execute(WRITTEN.insert().values(v="written"))
            return conn.execute(sa.select(PROBE.c.v)).scalars().all()  # cut here

    assert Cut(url, "cut_probe").run(lambda: retry_cut_read(engine, read)).result == ["probe"]
    cut = Cut(url, "cut_probe").run(lambda: retry_cut_read(engine, write_then_read))
    assert cut.error is not None and not cut.repeated
    with engine.connect() as conn:
        assert conn.execute(sa.select(WRITTEN.c.v)).scalars().all() == []  # rolled back with the cut
    engine.dispose()


def test_reads_running_when_postgres_crash_restarts_return_their_rows(app, url, server):
    with app.domain.domain_context():
        app.domain.repository_for(Order).add(Order(order_id="o2", status="placed"))
        app.process(PlaceOrder(order_id="kept"))
        store = app.domain.event_store.store
        category = f"{app.domain.normalized_name}::order:command"
        table = app.domain.repository_for(Order)._dao.database_model_cls.__table__.name

        def read_order():
            with app.domain.domain_context():
                return app.domain.repository_for(Order).get("o2").status

        events = Cut(url, "protean_events", crash=server.crash_restart).run(
            lambda: [m.data["order_id"] for m in store.read(category)])
        rows = Cut(url, table, crash=server.crash_restart).run(read_order)

    assert (events.error, events.result) == (None, ["kept"])
    assert (rows.error, rows.result) == (None, "placed")
