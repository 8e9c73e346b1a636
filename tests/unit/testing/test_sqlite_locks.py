"""A SQLite writer found in /proc/locks and killed mid-transaction: the lock goes with it, nothing is corrupted."""

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from protean_celery.testing.sqlite_locks import child_of, kill_writer, write_lock_holders

HOLD = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN IMMEDIATE" if sys.argv[2] == "write" else "BEGIN")
    conn.execute("INSERT INTO t VALUES ('uncommitted')" if sys.argv[2] == "write" else "SELECT * FROM t").fetchall()
    print("inside", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.execute("INSERT INTO t VALUES ('committed')")
    yield path, conn
    conn.close()


@pytest.fixture
def holder(database):
    started = []

    def start(mode):
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(database[0]), mode], stdout=subprocess.PIPE,
                                   text=True)
        assert process.stdout.readline().strip() == "inside"
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_process_inside_a_write_transaction_holds_the_write_lock_and_is_killed_holding_it(database, holder):
    path, conn = database
    writer = holder("write")
    assert write_lock_holders(path) == {writer.pid}

    killed = kill_writer([path], lambda pid: pid == writer.pid, timeout=30)

    assert killed is not None and (killed.pid, killed.database) == (writer.pid, path)
    assert writer.wait(timeout=10) == -9
    assert write_lock_holders(path) == set()
    conn.execute("BEGIN IMMEDIATE")  # the lock went with the process: no busy wait
    conn.execute("INSERT INTO t VALUES ('after')")
    conn.execute("COMMIT")
    assert [row[0] for row in conn.execute("SELECT v FROM t ORDER BY rowid")] == ["committed", "after"]
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_a_reader_holds_no_write_lock_and_is_not_killed(database, holder):
    path, _conn = database
    reader = holder("read")
    assert write_lock_holders(path) == set()
    assert kill_writer([path], lambda pid: pid == reader.pid, timeout=0.2) is None
    assert reader.poll() is None


def test_a_writer_the_target_refuses_is_left_alone(database, holder):
    path, _conn = database
    writer = holder("write")
    assert kill_writer([path], child_of(lambda: [1]), timeout=0.2) is None  # not a child of init
    assert writer.poll() is None
    assert child_of(lambda: [os.getpid()])(writer.pid)


def test_holders_are_read_from_the_shm_files_write_lock_byte_only(database):
    path, _conn = database
    shm = os.stat(f"{path}-shm")
    where = f"{os.major(shm.st_dev):02x}:{os.minor(shm.st_dev):02x}:{shm.st_ino}"
    locks = "\n".join([
        f"1: POSIX  ADVISORY  WRITE 101 {where} 120 120",
        f"1: -> POSIX  ADVISORY  WRITE 102 {where} 120 120",  # waiting, not holding
        f"2: POSIX  ADVISORY  READ 103 {where} 120 120",
        f"3: POSIX  ADVISORY  WRITE 104 {where} 121 121",  # the checkpoint lock
        f"4: POSIX  ADVISORY  WRITE 105 {where} 0 EOF",
        "5: POSIX  ADVISORY  WRITE 106 00:00:1 120 120",  # another file
    ])
    assert write_lock_holders(path, locks) == {101, 105}
    assert write_lock_holders(path.with_name("none.db"), locks) == set()
