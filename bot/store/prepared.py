"""Core statements compiled once per dialect and run on the pooled DB-API connection.

For a prebuilt statement SQLAlchemy still does ~100-150 µs of Python per execute on this machine
(execution context, cache key, result wrapping) while SQLite itself needs ~10-50 µs: on the voice
turn that overhead was most of the database time the prospect hears as silence. Here SQLAlchemy
still writes the SQL (for SQLite or PostgreSQL) and converts every value with the column types' own
bind and result processors; only the per-execute machinery is skipped. Pool checkout, pre-ping and
reset-on-return still apply, since the connection comes from `engine.raw_connection()`.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    """One statement for one dialect and one set of parameter names."""

    stmt: ClauseElement  # held, so its id is never reused while the plan is cached
    sql: str
    names: tuple[str, ...] | None  # order of positional parameters; None for named paramstyles
    binds: Mapping[str, Processor]
    defaults: Mapping[str, Any]  # values the statement carries itself, e.g. LIMIT 1
    row: type | None  # namedtuple class for SELECT rows
    results: tuple[Processor, ...]


# Keyed by the statement's id (statements compare by building SQL, not by value); each plan holds
# its statement, so the id cannot be reused by another one.
_plans: dict[tuple[int, str, tuple[str, ...]], _Plan] = {}


def _plan(stmt: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
    cache_key = (id(stmt), dialect.name, keys)
    plan = _plans.get(cache_key)
    if plan is None:
        compiled = cast(SQLCompiler, stmt.compile(dialect=dialect, column_keys=list(keys)))
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("expanding IN parameters are not supported here; use Connection.execute")
        binds = {name: bp.type.dialect_impl(dialect).bind_processor(dialect)
                 for name, bp in compiled.binds.items()}
        columns = list(getattr(stmt, "selected_columns", []))
        row = namedtuple("Row", [c.key for c in columns], rename=True) if columns else None  # noqa: PYI024
        results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
        names = tuple(compiled.positiontup or ()) if compiled.positional else None
        defaults = {name: bp.effective_value for bp, name in compiled.bind_names.items() if not bp.required}
        plan = _Plan(stmt, compiled.string, names, binds, defaults, row, results)
        _plans[cache_key] = plan
    return plan


class RawSession:
    """A pooled DB-API connection with `execute`, `first` and `commit` for prepared Core statements."""

    def __init__(self, dbapi_conn: Any, dialect: Dialect) -> None:
        self.conn, self.dialect = dbapi_conn, dialect
        self.cursor = dbapi_conn.cursor()
        self._dbapi_error = dialect.loaded_dbapi.Error

    def execute(self, stmt: ClauseElement, params: Mapping[str, Any]) -> Any:
        """Run a statement with these parameters; returns the DB-API cursor."""
        return self._run(stmt, params)[1]

    def first(self, stmt: ClauseElement, params: Mapping[str, Any]) -> Any:
        """The first row of a SELECT as a named tuple with each column's type applied, or None."""
        if not getattr(stmt, "selected_columns", None):
            raise TypeError("first() needs a SELECT")
        plan, cursor = self._run(stmt, params)
        raw = cursor.fetchone()
        if raw is None or plan.row is None:
            return None
        return plan.row(*(p(v) if p else v for p, v in zip(plan.results, raw, strict=True)))

    def _run(self, stmt: ClauseElement, params: Mapping[str, Any]) -> tuple[_Plan, Any]:
        plan = _plan(stmt, self.dialect, tuple(sorted(params)))
        given = {**plan.defaults, **params} if plan.defaults else params
        values = {k: (p(v) if (p := plan.binds.get(k)) else v) for k, v in given.items()}
        args = tuple(values[n] for n in plan.names) if plan.names is not None else values
        try:
            self.cursor.execute(plan.sql, args)
        except self._dbapi_error as exc:  # the same exception classes SQLAlchemy raises
            raise DBAPIError.instance(plan.sql, args, exc, self._dbapi_error) from exc
        return plan, self.cursor

    def commit(self) -> None:
        """Commit the transaction."""
        try:
            self.conn.commit()
        except self._dbapi_error as exc:
            raise DBAPIError.instance("COMMIT", None, exc, self._dbapi_error) from exc

    def rollback(self) -> None:
        """Roll the transaction back."""
        self.conn.rollback()


def joined(conn: Connection) -> RawSession:
    """Prepared statements inside a Connection's (or ORM Session's) current transaction.

    They run on its DB-API connection, so the session's commit or rollback covers them too.
    """
    return RawSession(conn.connection.dbapi_connection, conn.dialect)


@contextmanager
def raw_session(engine: Engine) -> Iterator[RawSession]:
    """Check a connection out of the engine's pool; anything uncommitted is rolled back on return.

    A failure to connect raises SQLAlchemy's exception class for it (OperationalError, …), as
    `engine.connect()` would; the pool's `raw_connection()` alone lets the driver's own escape.
    """
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        conn = engine.raw_connection()
    except dbapi_error as exc:
        raise DBAPIError.instance("(connect)", None, exc, dbapi_error) from exc
    try:
        yield RawSession(conn, engine.dialect)
    finally:
        conn.close()
