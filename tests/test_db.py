"""The database layer: the SQLite checkpointer and writer lock, and schema upkeep at boot."""

from __future__ import annotations

import fcntl
import os
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import inspect, text

from bot.jobs.sweeper import stale_attempts
from bot.store import database as db
from bot.store.tables import utcnow
from handoff.defaults import ACK_HISTORY_DAYS
from handoff.loststeps import lost_steps
from handoff.scorecard import ack_query
from handoff.transfer import tries_query


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



def index_names(engine, table: str) -> set[str]:  # noqa: ANN001
    return {ix["name"] for ix in inspect(engine).get_indexes(table)}


def test_init_db_adds_an_index_that_an_existing_table_lacks(db_url: str):
    """A database made before an index was declared gets it at the next boot (create_all would not)."""
    engine = db.make_engine(db_url)
    try:
        db.init_db(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_attempts_status_updated"))
        assert "ix_attempts_status_updated" not in index_names(engine, "attempts")
        db.init_db(engine)
        assert "ix_attempts_status_updated" in index_names(engine, "attempts")
        assert db._add_missing_indexes(engine) == []  # nothing left to add: a second boot is a no-op
    finally:
        engine.dispose()


def query_plan(tmp_path: Path, stmt) -> str:  # noqa: ANN001
    """SQLite's plan for a statement on a fresh, fully migrated database."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        db.init_db(engine)
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            return " ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    finally:
        engine.dispose()


def test_the_sweepers_stale_attempt_lookup_uses_an_index_not_a_scan(tmp_path: Path):
    """The sweeper runs every few seconds for the life of the install: it must not read every attempt."""
    plan = query_plan(tmp_path, stale_attempts(utcnow()))
    assert "ix_attempts_status_updated" in plan and "SCAN attempts" not in plan, plan


def test_matchings_response_speed_history_reads_only_its_window(tmp_path: Path):
    """Every qualified lead's match reads the reps' recent acknowledgements, not every handoff ever made."""
    plan = query_plan(tmp_path, ack_query(since=utcnow() - timedelta(days=ACK_HISTORY_DAYS)))
    assert "ix_handoffs_created_at" in plan and "SCAN handoffs" not in plan, plan


def test_a_warm_transfer_finds_its_tries_by_conference_through_an_index(tmp_path: Path):
    """Each rep-leg and conference webhook looks up the transfer's tries while the prospect is on hold."""
    plan = query_plan(tmp_path, tries_query("lead-abc"))
    assert "ix_handoffs_conference" in plan and "SCAN handoffs" not in plan, plan


def test_the_handoff_sweepers_lookups_use_an_index_not_a_scan(tmp_path: Path):
    """Every sweep asks which open SMS handoffs are unsent or overdue: never by reading them all."""
    for func, stmt in lost_steps(utcnow()):
        plan = query_plan(tmp_path, stmt)
        assert "USING INDEX" in plan and "SCAN handoffs" not in plan, (func, plan)


def test_init_db_adds_the_lead_columns_an_existing_table_lacks(db_url: str):
    """A database from before the calling rules gets leads.state and leads.zip at the next boot."""
    engine = db.make_engine(db_url)
    try:
        db.init_db(engine)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE leads DROP COLUMN state"))
            conn.execute(text("ALTER TABLE leads DROP COLUMN zip"))
        db.init_db(engine)
        assert {"state", "zip"} <= {c["name"] for c in inspect(engine).get_columns("leads")}
        assert db._add_missing_columns(engine) == []
    finally:
        engine.dispose()
