"""What an upgrade or downgrade would lock, rewrite, scan and destroy: measured, before it runs.

Private to :mod:`playlist_tools.migrations`, which re-exports :func:`impact`;
``playlist-tools migrate plan`` prints it. What a step destroys comes from
:func:`~._data_loss.data_loss` and the squawk findings from :func:`._lint.findings`.

**Measured on a replay.** Each revision's ``upgrade()`` (or ``downgrade()``)
runs through Alembic's own operations on a throwaway copy of the schema at
the database's current revision (``playlist_tools.history.replayed``: same
server, no rows); each statement Alembic sends runs in a transaction of its own::

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

**Read on the live database.** The rows, and the sessions in the way: the
lock modes a statement takes are measured on the replay; only the conflict
table is kept here, because it is PostgreSQL's documented one ("Conflicting
Lock Modes", the table of section 13.3.1 of the manual), the same on every
version since 8.2.

Examples
--------
>>> mode_name("ShareUpdateExclusiveLock")
'SHARE UPDATE EXCLUSIVE'
>>> strongest({"ACCESS SHARE", "SHARE ROW EXCLUSIVE", "ROW SHARE"})
'SHARE ROW EXCLUSIVE'
>>> conflicts("ACCESS SHARE", {"ACCESS EXCLUSIVE"}), conflicts("ROW EXCLUSIVE", {"SHARE UPDATE EXCLUSIVE"})
(True, False)
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from sqlalchemy import schema as sa_schema
from sqlalchemy.engine import Connection, Engine

from playlist_tools import db
from playlist_tools.db import activity
from playlist_tools.errors import DataLossError, MigrationError, RevisionError, first_line, one_line
from playlist_tools.history import (
    ONE_RUN_AT_A_TIME,
    alembic_errors,
    check_revision,
    connection,
    current_heads,
    installed_operations,
    replayed,
    resolve,
    script_directory,
    statement_runner,
)
from playlist_tools.migrations._data_loss import Loss, data_loss, describe_losses, drops, planned
from playlist_tools.migrations._env import lock_timeout_sql
from playlist_tools.migrations._lint import config_path, findings
from playlist_tools.schema import EXACT_COUNT_BELOW

__all__ = [
    "IMPACT_COLUMNS", "MODES", "Measured", "blockers", "conflicts", "impact", "measure", "mode_name", "quoted",
    "row_count", "strongest",
]

MODES = (
    "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE",
    "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE",
)
"""The table-level lock modes, weakest first (the order of PostgreSQL's manual)."""

_CONFLICTS: dict[str, frozenset[str]] = {
    "ACCESS SHARE": frozenset({"ACCESS EXCLUSIVE"}),
    "ROW SHARE": frozenset({"EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "ROW EXCLUSIVE": frozenset({"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "SHARE UPDATE EXCLUSIVE": frozenset(
        {"SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "SHARE": frozenset({"ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE",
                        "ACCESS EXCLUSIVE"}),
    "SHARE ROW EXCLUSIVE": frozenset({"ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
                                      "EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "EXCLUSIVE": frozenset(set(MODES) - {"ACCESS SHARE"}),
    "ACCESS EXCLUSIVE": frozenset(MODES),
}

_HELD = sa.text("""
    SELECT l.pid, l.mode FROM pg_locks l
    WHERE l.locktype = 'relation' AND l.granted AND l.relation = to_regclass(:name)
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.pid <> pg_backend_pid()
      -- An autovacuum worker gives way by itself: PostgreSQL cancels it when a lock
      -- request waits on it (deadlock_timeout), unless it runs to prevent wraparound.
      AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.pid
                      AND a.backend_type = 'autovacuum worker' AND a.query NOT LIKE '%(to prevent wraparound)%')
""")


def quoted(connection: Connection, table: str) -> str:
    """``table`` (``name``, or ``schema.name`` outside the current schema, as measured) quoted for SQL."""
    quote = connection.dialect.identifier_preparer.quote
    return ".".join(quote(part) for part in table.split(".", 1))


def mode_name(pg_locks_mode: str) -> str:
    """``pg_locks.mode`` (``AccessExclusiveLock``) as the manual and ``LOCK TABLE`` spell it (``ACCESS EXCLUSIVE``)."""
    return " ".join(re.findall(r"[A-Z][a-z]*", pg_locks_mode.removesuffix("Lock"))).upper()


def strongest(modes: Iterable[str]) -> str:
    """The strongest of ``modes`` in :data:`MODES` order."""
    return max(modes, key=MODES.index)


def conflicts(held: str, taken: Iterable[str]) -> bool:
    """Whether a session holding ``held`` makes a statement taking any of ``taken`` wait."""
    return any(held in _CONFLICTS[mode] for mode in taken)


def blockers(connection: Connection, table: str, taken: Iterable[str]) -> list[activity.SessionInfo]:
    """The other sessions of ``connection``'s database holding a lock on ``table`` that conflicts with ``taken``.

    Granted locks only, on the table itself (a session reading through an
    index holds a lock on the table too). Autovacuum workers are left out,
    since PostgreSQL cancels them for a waiting lock request, except those
    preventing wraparound, which it does not. Oldest transaction first, as
    :func:`playlist_tools.db.activity.lock_holders` orders them.
    """
    taken = set(taken)
    held = connection.execute(_HELD, {"name": quoted(connection, table)}).all()
    pids = {pid for pid, mode in held if conflicts(mode_name(mode), taken)}
    if not pids:
        return []
    return [s for s in activity.lock_holders(connection, [table]) if s.pid in pids]


def row_count(connection: Connection, table: str, exact_below: int) -> int | None:
    """``table``'s rows: ``count(*)`` when the planner estimates fewer than ``exact_below``, else that estimate.

    ``None`` when there is no such table (yet) in that database. A table
    never analysed (``reltuples`` -1) is counted exactly.
    """
    name = quoted(connection, table)
    estimate = connection.execute(
        sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:name)"), {"name": name}
    ).scalar()
    if estimate is None:
        return None
    if estimate >= exact_below:
        return int(estimate)
    return int(connection.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())


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
    with installed_operations(operations):  # inside a notebook's or env.py's own run of Alembic, theirs comes back
        yield operations


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
                recorder = statement_runner(context, lambda run: _Recorder(context, engine, run))
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


IMPACT_COLUMNS = {
    "revision": "string", "operation": "string", "table": "string", "sql": "string", "lock": "string",
    "rewrites": "boolean", "scans": "boolean", "rows": "Int64", "blocked_by": "string", "destroys": "string",
    "lint": "string", "note": "string",
}
"""The columns of :func:`impact` and their dtypes."""


def _lint(cfg: Config, measured: list[Measured]) -> list[str]:
    """Each statement's squawk findings (``rule: message; ...``), from one squawk run over all of them.

    The script is laid out as ``alembic upgrade --sql`` lays it out (the
    ``SET lock_timeout`` first, one transaction per revision, statements
    outside a transaction between them), so rules that look at the context
    judge each statement as they would judge the revision.
    """
    lines = [lock_timeout_sql(cfg) + ";", ""]
    owner: list[int | None] = [None, None]
    in_transaction, revision = False, None
    for index, entry in enumerate(measured):
        if in_transaction and (entry.revision != revision or entry.outside_transaction):
            lines += ["COMMIT;", ""]
            owner += [None, None]
            in_transaction = False
        if not in_transaction and not entry.outside_transaction:
            lines += ["BEGIN;", ""]
            owner += [None, None]
            in_transaction = True
        revision = entry.revision
        text = entry.sql.rstrip().rstrip(";") + ";"
        for line in [*text.splitlines(), ""]:
            lines.append(line)
            owner.append(index)
    if in_transaction:
        lines.append("COMMIT;")
    found = findings("\n".join(lines) + "\n", config_path(cfg), by_revision=False)
    per_statement: list[list[str]] = [[] for _ in measured]
    for row in found.itertuples():
        at = owner[int(row.line) - 1] if int(row.line) - 1 < len(owner) else None
        if at is not None:
            per_statement[at].append(f"{row.rule}: {row.message}")
    return ["; ".join(dict.fromkeys(texts)) for texts in per_statement]


def _losses(cfg: Config, target: str) -> pd.DataFrame | None:
    """:func:`data_loss` for this move; ``None`` (not counted) when a step does not render offline."""
    try:
        return data_loss(cfg, target)
    except DataLossError:
        return None


def _destroys(losses: pd.DataFrame | None, revision: str, table: str | None, sql: str) -> str | None:
    """What this statement destroys on this table, as :func:`describe_losses` says it."""
    if losses is None:
        return None
    if table is None:
        return ""
    own = losses[(losses["rev"] == revision) & (losses["table"] == table)]
    dropped = {column for dropped_table, column in drops(sql) if dropped_table == table}
    named = [c in dropped or (c != "*" and re.search(rf"\b{re.escape(c)}\b", sql) is not None) for c in own["column"]]
    mine = own[named]
    return describe_losses(Loss(*row) for row in mine.itertuples(index=False))


def _rows(measured: list[Measured], findings_by_statement: list[str]) -> list[dict[str, object]]:
    """One row per statement and table it locks (the operation's own table first); a statement locking none: one."""
    rows = []
    for entry, lint in zip(measured, findings_by_statement, strict=True):
        tables = sorted(entry.locks, key=lambda t: (t != entry.op_table, t)) or [entry.op_table]
        for table in tables:
            modes = entry.locks.get(table) if table else None
            rows.append({
                "revision": entry.revision, "operation": entry.operation, "table": table, "sql": entry.sql,
                "lock": strongest(modes) if modes else None,
                "rewrites": table in entry.rewrites,
                "scans": None if entry.scans is None else table in entry.scans,
                "modes": modes or set(), "lint": lint, "note": entry.note,
            })
    return rows


def impact(config: Config | None = None, target: str = "head") -> pd.DataFrame:
    """What moving the database to ``target`` would do, statement by statement, before it runs.

    ``playlist-tools migrate plan [TARGET]`` on the command line. Nothing
    is run on your database: each revision's ``upgrade()`` (a
    ``downgrade()`` when ``target`` is behind the database's revision)
    runs through Alembic on a throwaway copy of the schema at the
    database's current revision, on the same server, with no rows; there
    each statement runs in a transaction of its own and the server says
    which locks it took (``pg_locks``), whether it rewrote a table (its
    ``relfilenode`` changed) and whether it read a whole table
    (``seq_scan`` in ``pg_stat_xact_user_tables``). Then your database
    is asked how many rows each table has and who holds a conflicting lock
    on it right now.

    Parameters
    ----------
    config : alembic.config.Config or None
        See :mod:`playlist_tools.migrations`.
    target : str
        ``"head"``, an id, ``"+N"``, ``"-N"`` or ``"base"``, as for
        :func:`upgrade` and :func:`downgrade`.

    Returns
    -------
    pandas.DataFrame
        One row per statement and table it locks, in the order they would
        run (a statement locking no table: one row). Columns
        (:data:`IMPACT_COLUMNS`): ``revision``, ``operation`` (the ``op.``
        function: ``add_column``, ``create_index``, ``execute``, ...),
        ``table``, ``sql``, ``lock`` (the strongest table lock it takes
        there, e.g. ``ACCESS EXCLUSIVE``; NA when none or not measured),
        ``rewrites``, ``scans``, ``rows`` (exact below
        :data:`playlist_tools.schema.EXACT_COUNT_BELOW`, the planner's
        estimate above; NA for a table your database does not have yet),
        ``blocked_by`` (the sessions holding a lock that conflicts with any
        lock it takes there, as :meth:`~playlist_tools.db.activity.SessionInfo.describe`
        says them, ``"; "``-separated; empty when none), ``destroys`` (from
        :func:`data_loss`; empty when nothing, NA when not counted),
        ``lint`` (squawk's ``rule: message`` for the statement) and
        ``note`` (why something was not measured). Empty when the database
        is already at ``target``.

    Notes
    -----
    Every revision runs in one transaction, so each lock is held until the
    end of its revision, not only for its statement. A statement outside a
    transaction (``CREATE INDEX CONCURRENTLY`` in an ``autocommit_block``)
    is made to wait on a second session so its locks can be read; if it
    finishes without waiting, ``note`` says its locks were not measured.
    Statements a revision sends through ``op.get_bind()`` itself, rather
    than through ``op``, are run but not listed.

    Raises
    ------
    RevisionError
        For an unknown target, or a range.
    MigrationError
        When a statement fails on the replay (it would fail for real), or the role lacks CREATEDB.

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open(upto="0002") as ws:
    ...     _ = migrations.upgrade(ws.config, "0001")
    ...     plan = impact(ws.config)
    >>> plan[["revision", "operation", "table", "lock", "rewrites", "scans", "rows"]]
      revision   operation      table              lock  rewrites  scans  rows
    0     0002  add_column  playlists  ACCESS EXCLUSIVE     False  False     0
    """
    cfg = resolve(config)
    check_revision(target)
    if ":" in target:
        raise RevisionError(f"impact takes one target such as 'head' or '0002', not a range {target!r}")
    current = current_heads(cfg)
    with alembic_errors(cfg):
        plan = planned(script_directory(cfg), current, target)
    steps, upward = [step for step, _ in plan], all(up for _, up in plan)
    if not steps:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in IMPACT_COLUMNS.items()})
    measured = measure(cfg, ",".join(current) or "base", steps, upward)
    rows = _rows(measured, _lint(cfg, measured))
    losses = _losses(cfg, target)
    with connection(cfg) as conn:
        live: dict[str, tuple[int | None, str]] = {}
        for row in rows:
            table = row["table"]
            if table is None:
                row["rows"], row["blocked_by"] = None, ""
                continue
            if table not in live:
                live[table] = (row_count(conn, table, EXACT_COUNT_BELOW), "")
            in_the_way = blockers(conn, table, row["modes"]) if row["modes"] else []
            row["rows"] = live[table][0]
            row["blocked_by"] = "; ".join(session.describe() for session in in_the_way)
    for row in rows:
        row["destroys"] = _destroys(losses, str(row["revision"]), row["table"], str(row["sql"]))
    frame = pd.DataFrame(rows, columns=list(IMPACT_COLUMNS))
    return frame.astype(IMPACT_COLUMNS)
