"""The SQLite checkpointer: one process at a time copies the WAL into the database, off the hot path."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from sqlalchemy import text

from bot import db


def lock_is_free(path: Path) -> bool:
    fd = os.open(f"{path}-checkpoint.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def wait_for(predicate, timeout: float = 5.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_one_checkpointer_copies_the_wal_and_hands_over_when_it_stops(tmp_path: Path):
    path = tmp_path / "ck.db"
    engines = [db.make_engine(f"sqlite:///{path}") for _ in range(2)]
    with engines[0].begin() as conn:
        conn.execute(text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)"))
    size_before = path.stat().st_size
    stops = [db.start_checkpointer(e, interval=0.05) for e in engines]
    with engines[1].begin() as conn:  # ~2 MB lands in the WAL, not in the database file
        conn.execute(text("INSERT INTO blobs (body) VALUES (randomblob(4000))"), [{}] * 500)
    assert wait_for(lambda: path.stat().st_size > size_before + 1_000_000)
    assert not lock_is_free(path)  # one of the two holds the checkpoint lock
    for stop in stops:
        stop.set()
    assert wait_for(lambda: lock_is_free(path))  # and lets go when it stops
    for e in engines:
        e.dispose()


def test_no_checkpointer_for_memory_databases():
    assert db.start_checkpointer(db.make_engine("sqlite:///:memory:")) is None


def test_writer_lock_excludes_another_process_until_released(tmp_path: Path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    lock = db.WriterLock(engine)
    probe = os.open(f"{tmp_path / 'w.db'}-write.lock", os.O_RDWR)
    try:
        with lock.held():
            try:  # another open file description stands for another process
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                raised = False
            except BlockingIOError:
                raised = True
            assert raised
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again after the block
        fcntl.flock(probe, fcntl.LOCK_UN)
    finally:
        os.close(probe)
        lock.close()
        engine.dispose()

