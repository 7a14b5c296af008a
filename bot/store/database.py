"""Database engine and session factory (SQLite with WAL, or PostgreSQL)."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from bot.store import (
    handoff_tables,  # noqa: F401 - registers the handoff tables on Base
    source_tables,  # noqa: F401 - registers the source and webhook tables on Base
    touch_tables,  # noqa: F401 - registers the touch tables on Base
)
from bot.store import staff_tables  # noqa: F401 - registers the console's tables on Base
from bot.store.tables import Base

log = logging.getLogger(__name__)

# A safety net only (about 40 MB of WAL): every process checkpoints every second, off the hot path.
WAL_AUTOCHECKPOINT_PAGES = 10_000
CHECKPOINT_INTERVAL_S = 1.0


def make_engine(url: str) -> Engine:
    """Build an engine; SQLite gets WAL and a busy timeout so web and worker share it."""
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            from pathlib import Path

            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - DB-API objects
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # Checkpoints run in each process's background thread (start_checkpointer()); the commit
            # that crosses the limit would copy the WAL and fsync inside a request or a job.
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def checkpoint(engine: Engine) -> None:
    """Copy committed WAL pages into the SQLite database file without blocking anyone (no-op elsewhere)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _lock_file(engine: Engine, name: str) -> int | None:
    """An open `<db>-<name>.lock` beside a SQLite file, for flock; None for other databases."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or path in (None, "", ":memory:"):
        return None
    return os.open(f"{path}-{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)


def start_checkpointer(engine: Engine, interval: float = CHECKPOINT_INTERVAL_S) -> threading.Event | None:
    """Checkpoint a SQLite file's WAL every `interval` seconds in a daemon thread; set the event to stop.

    A commit that finds the WAL over `wal_autocheckpoint` pages copies it into the database and
    fsyncs both, inside whatever request or job made it: 70 ms and more here, heard by a prospect as
    silence. Every process that writes (web and worker) starts one, and the one holding an flock on
    `<db>-checkpoint.lock` does the work: one checkpoint (one fsync) a second whichever processes
    run, and another takes over when that process exits. The thread holds the engine weakly and
    ends when the engine is gone.
    """
    lock_fd = _lock_file(engine, "checkpoint")
    if lock_fd is None:
        return None
    stop, ref = threading.Event(), weakref.ref(engine)

    def loop() -> None:
        owner = False
        try:
            while not stop.wait(interval):
                target = ref()
                if target is None:
                    return
                if not owner:
                    try:
                        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        owner = True
                    except BlockingIOError:  # another process checkpoints
                        continue
                try:
                    checkpoint(target)
                except (OperationalError, ProgrammingError) as exc:  # locked, busy or closed: next time
                    log.debug("checkpoint skipped: %s", exc)
                del target
        finally:
            os.close(lock_fd)  # releases the lock for another process

    threading.Thread(target=loop, name="sqlite-checkpoint", daemon=True).start()
    return stop


class WriterLock:
    """Serializes hot-path SQLite write transactions across processes with a blocking flock.

    Two writers that meet in SQLite wait in its busy handler, which sleeps 1, 2, 5, 10... ms
    before it looks again, although the other transaction holds the lock for ~0.1 ms; a waiter
    on an flock is woken the moment it is released. Intake, the contact job's claim and a voice
    turn take it around their writes and commit. Take it before the transaction's first write:
    a transaction that already holds SQLite's write lock and then waits here could wait for a
    holder that is itself waiting for SQLite. A no-op for other databases.
    """

    def __init__(self, engine: Engine) -> None:
        self._fd = _lock_file(engine, "write")
        self._threads = threading.Lock()  # an flock is shared by every thread of the process

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the duration of the block."""
        if self._fd is None:
            yield
            return
        with self._threads:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def init_db(engine: Engine, tries: int = 5) -> None:
    """Create every table that does not exist yet, and every declared index a table lacks.

    `create_all` creates a table's indexes only with the table, so an index added in a later
    release would never reach an existing database; `_add_missing_indexes` brings it there.
    Every gunicorn worker runs this at boot: on a new database two of them can race between
    "does it exist?" and CREATE, so the loser retries and then finds it there.
    """
    for attempt in range(tries):
        try:
            Base.metadata.create_all(engine)
            _add_missing_columns(engine)
            _add_missing_indexes(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == tries - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _add_missing_columns(engine: Engine) -> list[str]:
    """ALTER TABLE ADD for each nullable column a table lacks (e.g. leads.state from a later release)."""
    inspector = inspect(engine)
    added = []
    for table in Base.metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.nullable:
                kind = column.type.compile(dialect=engine.dialect)
                with engine.begin() as conn:
                    conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
                added.append(f"{table.name}.{column.name}")
    if added:
        log.info("added missing columns: %s", ", ".join(added))
    return added


def _add_missing_indexes(engine: Engine) -> list[str]:
    """CREATE INDEX for each declared index its existing table lacks; returns their names."""
    inspector = inspect(engine)
    added = []
    for table in Base.metadata.sorted_tables:
        have = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have:
                index.create(engine)
                added.append(str(index.name))
    if added:
        log.info("created missing indexes: %s", ", ".join(added))
    return added


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
