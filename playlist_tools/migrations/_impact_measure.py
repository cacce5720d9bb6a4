"""Run a migration's steps on a replay of the schema and measure each statement: locks, rewrites, scans.

Private to :mod:`playlist_tools.migrations` (:func:`~playlist_tools.migrations.impact`).

Each revision's ``upgrade()`` (or ``downgrade()``) runs through Alembic's
own operations on a throwaway copy of the schema at the database's current
revision (:func:`._replay.replayed`: same server, no rows); each statement
Alembic sends runs in a transaction of its own::

    BEGIN; <relfilenode and seq_scan of every table>; <the statement>;
    <this backend's relation locks from pg_locks>; <relfilenode and seq_scan again>; COMMIT;

A changed ``relfilenode`` is a rewrite; a grown ``seq_scan`` in
``pg_stat_xact_user_tables`` is a full read of the table (validating a
constraint, building an index, a data migration). A statement that runs
outside a transaction (Alembic's ``autocommit_block``, e.g. ``CREATE INDEX
CONCURRENTLY``) is measured differently: a second session holds a snapshot
(and an ``ACCESS SHARE`` lock on the operation's table) so that the
statement waits, its locks are read from ``pg_locks`` while it waits, and
the second session then lets it finish; its scans are read from
``pg_stat_user_tables`` after flushing this backend's statistics.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from sqlalchemy import schema as sa_schema
from sqlalchemy.engine import Connection, Engine

from playlist_tools import db
from playlist_tools.errors import MigrationError, first_line, one_line
from playlist_tools.migrations._impact_locks import mode_name, quoted
from playlist_tools.migrations._offline import kept_proxies
from playlist_tools.migrations._replay import ONE_RUN_AT_A_TIME, replayed

__all__ = ["Measured", "measure"]

_WAIT_SECONDS = 30.0  # for a statement outside a transaction to reach a wait; a replay has no rows
_TABLES = """
    SELECT CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END AS name,
           c.relfilenode, coalesce(s.seq_scan, 0) AS seq_scan
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN {stats} s ON s.relid = c.oid
    WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%'
"""
_IN_TRANSACTION = sa.text(_TABLES.format(stats="pg_stat_xact_user_tables"))
_FLUSHED = sa.text(_TABLES.format(stats="pg_stat_user_tables"))
_LOCKS = sa.text("""
    SELECT CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END AS name,
           l.mode
    FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE l.pid = :pid AND l.locktype = 'relation' AND c.relkind IN ('r', 'p', 'm', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
""")
_DATA = re.compile(r"^\s*(?:UPDATE|DELETE|INSERT|SELECT|WITH|MERGE)\b", re.IGNORECASE)
_FULL_READS = {"Seq Scan", "Index Scan", "Index Only Scan"}  # an index scan without a condition reads it all
_WAITING = sa.text("SELECT 1 FROM pg_locks WHERE pid = :pid AND NOT granted")


@dataclass
class Measured:
    """One statement as it ran on the replay, and what the server says it did."""

    revision: str
    operation: str
    op_table: str | None
    sql: str
    locks: dict[str, set[str]] = field(default_factory=dict)  # table -> modes taken (or waited for)
    rewrites: set[str] = field(default_factory=set)
    scans: set[str] | None = field(default_factory=set)  # None: not known
    outside_transaction: bool = False
    note: str | None = None


def _operation_name(operation: object) -> str:
    """``AddColumnOp`` -> ``add_column``: the ``op.`` function that made it."""
    name = type(operation).__name__
    if name == "ExecuteSQLOp":
        return "execute"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Op")).lower()


def _op_table(operation: object) -> str | None:
    for attribute in ("table_name", "source_table"):
        name = getattr(operation, attribute, None)
        if isinstance(name, str):
            owner = getattr(operation, "schema", None)
            return f"{owner}.{name}" if owner else name
    return None


def render(construct: object, dialect: sa.engine.Dialect) -> str:
    """The statement's SQL as ``alembic upgrade --sql`` prints it (literal values inlined where possible)."""
    clause = sa.text(construct) if isinstance(construct, str) else construct
    try:
        inline = {} if isinstance(clause, sa_schema.DDLElement) else {"compile_kwargs": {"literal_binds": True}}
        return str(clause.compile(dialect=dialect, **inline)).replace("\t", "    ").strip()
    except sa.exc.SQLAlchemyError:
        return str(clause.compile(dialect=dialect)).strip()


def _tables(connection: Connection, query: sa.TextClause) -> dict[str, tuple[int, int]]:
    return {row.name: (row.relfilenode, row.seq_scan) for row in connection.execute(query)}


def _locks(connection: Connection, pid: int | None = None) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    pid_sql = pid if pid is not None else connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    for name, mode in connection.execute(_LOCKS, {"pid": pid_sql}):
        found.setdefault(name, set()).add(mode_name(mode))
    return found


def _planned_reads(connection: Connection, sql: str) -> set[str]:
    """Tables the server's plan for ``sql`` reads whole (``EXPLAIN``): what a data migration scans.

    Counting at run time misses them on a replay: on empty tables the
    executor skips scans it would run on real ones (a hash join whose other
    side is empty never starts its scan).
    """
    try:
        with connection.begin_nested():
            plan = connection.exec_driver_sql(f"EXPLAIN (VERBOSE, FORMAT JSON) {sql}").scalar_one()
    except sa.exc.DBAPIError:
        return set()  # not explainable (bound parameters): the run-time count stands alone
    plan = json.loads(plan) if isinstance(plan, str) else plan
    here = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    found, nodes = set(), [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes += node.get("Plans", [])
        if node["Node Type"] in _FULL_READS and "Index Cond" not in node and "Relation Name" in node:
            schema = node.get("Schema", here)
            found.add(node["Relation Name"] if schema == here else f"{schema}.{node['Relation Name']}")
    return found


def _compare(entry: Measured, before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> None:
    entry.rewrites = {t for t, (node, _) in after.items() if t in before and before[t][0] != node}
    entry.scans = {t for t, (_, scans) in after.items() if t in before and scans > before[t][1]}


class _Recorder:
    """Stands in for Alembic's ``impl._exec``: runs each statement, measured, and keeps the measurements."""

    def __init__(self, context: MigrationContext, engine: Engine, run: Callable[..., Any]) -> None:
        self.context, self.engine, self.run = context, engine, run
        self.revision = ""
        self.operations: list[object] = []
        self.measured: list[Measured] = []

    def __call__(self, construct: object, *args: Any, **kwargs: Any) -> Any:
        connection = self.context.impl.connection
        operation = self.operations[0] if self.operations else None
        entry = Measured(
            self.revision, _operation_name(operation) if operation else "execute",
            _op_table(operation) if operation else None, render(construct, connection.dialect),
        )
        self.measured.append(entry)
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return self._outside_transaction(connection, entry, construct, args, kwargs)
        if connection.in_transaction():
            connection.commit()  # what the revision's own code read through op.get_bind()
        try:
            before = _tables(connection, _IN_TRANSACTION)
            planned = _planned_reads(connection, entry.sql) if _DATA.match(entry.sql) else set()
            result = self.run(construct, *args, **kwargs)
            entry.locks = _locks(connection)
            _compare(entry, before, _tables(connection, _IN_TRANSACTION))
            entry.scans = (entry.scans or set()) | planned
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return result

    def _flushed(self, connection: Connection) -> tuple[dict[str, tuple[int, int]], bool]:
        """Every table's relfilenode and seq_scan, and whether this backend's statistics were flushed first.

        ``pg_stat_force_next_flush`` (PostgreSQL 15+): flushed when it next idles, before the read.
        """
        try:
            connection.exec_driver_sql("SELECT pg_stat_force_next_flush()")
            flushed = True
        except sa.exc.DBAPIError:
            flushed = False
        return _tables(connection, _FLUSHED), flushed

    def _outside_transaction(
        self, connection: Connection, entry: Measured, construct: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        entry.outside_transaction = True
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        before = self._flushed(connection)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = self.run(construct, *args, **kwargs)
            except BaseException as err:  # re-raised in the caller's thread
                outcome["error"] = err

        with self.engine.connect() as holder:
            holder.execution_options(isolation_level="REPEATABLE READ")
            holder.exec_driver_sql("SELECT 1")  # an open snapshot: CONCURRENTLY waits for it to end
            table = entry.op_table and holder.execute(
                sa.text("SELECT to_regclass(:n)::text"), {"n": quoted(holder, entry.op_table)}).scalar()
            if table:
                holder.exec_driver_sql(f"LOCK TABLE {quoted(holder, entry.op_table)} IN ACCESS SHARE MODE")
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            deadline = time.monotonic() + _WAIT_SECONDS
            while worker.is_alive() and time.monotonic() < deadline:
                if holder.execute(_WAITING, {"pid": pid}).first():
                    entry.locks = _locks(holder, pid)
                    break
                time.sleep(0.002)
            else:
                entry.note = ("locks not measured: it runs outside a transaction and finished "
                              "before it had to wait, so its locks could not be read")
            holder.rollback()
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        after = self._flushed(connection)
        _compare(entry, before[0], after[0])
        if not (before[1] and after[1]):
            entry.scans = None
            entry.note = entry.note or "scans not measured: needs PostgreSQL 15+ (pg_stat_force_next_flush)"
        return outcome.get("result")


@contextlib.contextmanager
def _operations(context: MigrationContext, recorder: _Recorder) -> Iterator[Operations]:
    """Alembic's ``op`` for ``context``, remembering which operation each statement comes from."""
    operations = Operations(context)
    invoke = operations.invoke

    def remembering(operation: Any) -> Any:
        recorder.operations.append(operation)
        try:
            return invoke(operation)
        finally:
            recorder.operations.pop()

    operations.invoke = remembering  # type: ignore[method-assign]
    with kept_proxies():  # inside a notebook's or env.py's own run of Alembic, theirs comes back after
        operations._install_proxy()
        try:
            yield operations
        finally:
            operations._remove_proxy()


def measure(cfg: Config, current: str, steps: list[Script], upward: bool) -> list[Measured]:
    """Run ``steps`` (in order) from ``current`` on a replay and measure every statement they send.

    Raises
    ------
    MigrationError
        When a statement fails on the replay: the real run would fail there too.
    """
    with replayed(cfg, current, prefix="playlist_tools_impact") as url:
        engine = db.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                context = MigrationContext.configure(connection=connection)
                recorder = _Recorder(context, engine, context.impl._exec)
                context.impl._exec = recorder  # type: ignore[method-assign]
                with ONE_RUN_AT_A_TIME, _operations(context, recorder):
                    for step in steps:
                        recorder.revision = step.revision
                        try:
                            (step.module.upgrade if upward else step.module.downgrade)()
                            if connection.in_transaction():
                                connection.commit()
                        except sa.exc.DBAPIError as err:
                            done = recorder.measured[-1].sql if recorder.measured else "?"
                            raise MigrationError(
                                f"{step.revision} fails on a copy of the schema at {current}, so it would fail "
                                f"for real: {one_line(first_line(err.orig), 120)} "
                                f"(in {one_line(' '.join(done.split()), 80)})"
                            ) from err
                return recorder.measured
        finally:
            engine.dispose()
