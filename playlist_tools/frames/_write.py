"""The write path of :mod:`playlist_tools.frames`: a DataFrame checked against the live table, then COPY.

Private to :mod:`playlist_tools.frames`, whose
:func:`~playlist_tools.frames.write_frame` is the public face; the types
come from its ``_types`` map and the values are converted by ``_copy``.
Every problem of the frame is found before anything is sent, and the rows
travel as one ``COPY ... FROM STDIN``, in one transaction (or a savepoint of
the caller's): in the binary format, which ``_copy_binary`` encodes a column
at a time and the server reads fastest, when every column's type is one it
encodes (numbers, booleans, dates, timestamps, text, exact decimals); else
as CSV written by pyarrow. Either way the next block is encoded in a thread
while the server reads the last.

``if_exists="fail"`` and ``"replace"`` first lock the table in ``SHARE ROW
EXCLUSIVE`` mode: the weakest mode that conflicts with itself (so two such
writers take turns) and with the ``ROW EXCLUSIVE`` lock of every ``INSERT``,
``UPDATE``, ``DELETE`` and ``COPY`` (so no one adds rows between our check
or delete and our commit). Readers are not blocked; they see the old rows
until the commit. ``append`` takes no such lock: appenders run side by side.
The lock comes first, before any query, so that even a ``REPEATABLE READ``
transaction of ours sees what the writer before it committed.

``replace`` deletes (``DELETE``, never ``TRUNCATE`` or ``DROP``) only after
:func:`_effects` found no row of another table that the delete would reach
through a foreign key's ``ON DELETE CASCADE``/``SET NULL``/``SET DEFAULT``
(cascades followed down), or the caller consented (``allow_data_loss``).
``COPY`` skips the check of ``GENERATED ALWAYS AS IDENTITY``, so such a
column in the frame is refused unless ``overriding_system_value``. The
frame's named index levels are columns (``index=True``), as pandas writes
them. Everything runs in a savepoint of a caller's Connection's transaction
(begun if it had none: the caller commits), else in one transaction of ours.

Afterwards the sequence behind each serial or identity column the frame
wrote (:func:`advance_sequence`) is moved past the largest value written,
never backwards, so the next ``INSERT`` without an id gets a fresh one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import psycopg
import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from playlist_tools import db
from playlist_tools.errors import FrameError, first_line, sqlstate
from playlist_tools.frames import _copy_binary
from playlist_tools.frames._copy import Refused, Target, advice, convert
from playlist_tools.frames._driver import ERRORS, Driver, driver, driver_connection, joined, quote, table_name
from playlist_tools.frames._sequence import advance_sequence

_UNDEFINED_TABLE = "42P01"
_STILL_REFERENCED = ("23503", "23001")  # foreign_key_violation (NO ACTION), restrict_violation
_PSYCOPG3 = ("postgresql", "postgresql+psycopg")
_KINDS = ("integer", "floating", "decimal", "boolean", "date32", "timestamp", "string", "large_string")
# What may go into what: numbers into numbers (a safe cast checks range and
# fractions), everything else only into its own kind; text is for text, json, uuid...
_NUMBERS = {"integer", "floating", "decimal"}
_ACCEPTS = {
    "integer": _NUMBERS, "floating": _NUMBERS, "decimal": _NUMBERS, "boolean": {"boolean"},
    "date32": {"date32"}, "timestamp": {"timestamp"}, "string": {"string", "large_string"},
}
# A domain's column is written as its base type (down a chain of domains), with the typmod found on the way.
_LIVE_COLUMNS = """
SELECT a.attname, base.typname, base.typmod, base.typcategory, a.attnotnull, a.atthasdef OR a.attidentity <> '',
       a.attgenerated <> '', pg_get_serial_sequence(%(table)s, a.attname) IS NOT NULL, a.attidentity = 'a'
FROM pg_attribute a CROSS JOIN LATERAL (
    WITH RECURSIVE chain(oid, depth, typmod) AS (
        SELECT a.atttypid, 0, a.atttypmod
        UNION ALL
        SELECT t.typbasetype, chain.depth + 1, greatest(chain.typmod, t.typtypmod)
        FROM chain JOIN pg_type t ON t.oid = chain.oid WHERE t.typtype = 'd'
    )
    SELECT t.typname, chain.typmod, t.typcategory FROM chain JOIN pg_type t ON t.oid = chain.oid
    ORDER BY chain.depth DESC LIMIT 1
) base
WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
# The foreign keys that point at a table from other tables, with their columns in key order.
_REFERENCING = """
SELECT c.conrelid::regclass::text, c.conname, c.confdeltype,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n),
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n)
FROM pg_constraint c
WHERE c.contype = 'f' AND c.confrelid = to_regclass(%(table)s) AND c.conrelid <> c.confrelid
ORDER BY 1, 2
"""
# What a DELETE does to the rows that reference a deleted row (pg_constraint.confdeltype); NO ACTION and
# RESTRICT are absent: they make the DELETE fail instead (or, deferred, the COMMIT, unless the rows come back).
_ON_DELETE = {"c": ("delete", "ON DELETE CASCADE"), "n": ("set to NULL", "ON DELETE SET NULL"),
              "d": ("set to their default", "ON DELETE SET DEFAULT")}
def _kind(arrow: pa.DataType) -> str:
    return next((k for k in _KINDS if getattr(pa.types, f"is_{k}")(arrow)), str(arrow))


def _check(name: str, series: pd.Series, target: Target) -> tuple[pa.Array | None, list[str]]:
    """The column as an Arrow array of the table's type, or what is wrong with it."""
    typname, typmod = target.typname, target.typmod
    try:
        array, arrow_target = convert(name, series, target)
    except Refused as refused:
        return None, [str(refused)]
    if array.null_count == len(array):
        array = pa.nulls(len(array), arrow_target)  # an all-NULL column has no type of its own
    elif _kind(array.type) not in _ACCEPTS.get(_kind(arrow_target), {"string"}):
        return None, [f"column {name!r} is {series.dtype} but {typname} needs {arrow_target}; {advice(target)}"]
    elif pa.types.is_timestamp(arrow_target) and (array.type.tz is None) != (arrow_target.tz is None):
        # pd.to_datetime, not .dt: it works on an object column of datetimes too.
        fix = (f"pd.to_datetime(df[{name!r}]).dt.tz_localize('UTC')" if arrow_target.tz
               else f"pd.to_datetime(df[{name!r}], utc=True).dt.tz_localize(None) (UTC wall times)")
        zone = "zone-aware" if array.type.tz else "naive"
        return None, [f"column {name!r} holds {zone} timestamps but {typname} needs "
                      f"{'zone-aware' if arrow_target.tz else 'naive'} ones; write {fix}"]
    problems = []
    if target.not_null and array.null_count:
        problems.append(f"column {name!r} has {array.null_count} NULL(s) but is NOT NULL; fill or drop them")
    try:
        array = array.cast(arrow_target)  # a safe cast: overflow and lost fractions raise
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        low, high = pc.min_max(array).values()
        return None, [*problems, f"column {name!r} has values that do not fit {typname} (they range from {low} "
                                 f"to {high}: {first_line(err)}); use a wider column type or fix the values"]
    if typname in ("varchar", "bpchar") and typmod >= 4 and array.null_count < len(array):
        # PostgreSQL trims trailing spaces beyond the length on assignment ('ab    ' into varchar(3) is 'ab ').
        lengths = pc.utf8_length(pc.utf8_rtrim(array, characters=" "))
        longest = pc.max(lengths).as_py()
        if longest > typmod - 4:
            value = array[pc.index(lengths, longest).as_py()].as_py()
            problems.append(f"column {name!r} value {value[:40]!r} has {longest} characters, "
                            f"more than {typname}({typmod - 4}); shorten it")
    return array, problems


def _validate(
    df: pd.DataFrame, name: str, live: list[tuple[Any, ...]], from_index: list[str], overriding: bool
) -> tuple[list[pa.Array], list[str]]:
    columns = {row[0]: row for row in live}
    problems = []
    if df.columns.duplicated().any():
        twice = sorted(map(str, set(df.columns[df.columns.duplicated()])))
        return [], [f"columns {twice} appear twice; drop the copies"]
    extra = [str(c) for c in df.columns if c not in columns and c not in from_index]
    if extra:
        problems.append(f"columns {extra} are not in {name} (it has {', '.join(columns)}); rename or drop them")
    extra_index = [str(c) for c in df.columns if c not in columns and c in from_index]
    if extra_index:
        problems.append(f"the index {extra_index} is written as columns, as pandas does, and {name} has no such "
                        "column; pass index=False to leave the index out, or rename it (df.rename_axis(...))")
    for column, _, _, _, not_null, has_default, generated, _, always in live:
        if column not in df.columns and not_null and not has_default:
            problems.append(f"column {column!r} is required (NOT NULL, no default) but missing")
        elif column in df.columns and generated:
            problems.append(f"column {column!r} is generated by the database; drop it from the frame")
        elif column in df.columns and always and not overriding:
            problems.append(f"column {column!r} is GENERATED ALWAYS AS IDENTITY, numbered by the database; drop it "
                            f"from the frame (df.drop(columns={column!r})), or pass overriding_system_value=True "
                            "to store these values as they are")
    arrays = []
    for column in df.columns:
        if column in columns:
            _, typname, typmod, category, not_null, *_ = columns[column]
            array, issues = _check(str(column), df[column], Target(typname, typmod, category, not_null))
            arrays.append(array)
            problems += issues
    return arrays, problems


def _server_says(err: Exception) -> str:
    """The server's first line, its detail, and where in the COPY it was (the last line of its context)."""
    diag = err.diag  # type: ignore[attr-defined]
    where = (diag.context or "").strip().splitlines()[-1:]
    said = "; ".join(filter(None, [diag.message_detail, *where]))
    return first_line(err) + (f" ({said})" if said else "")


@contextlib.contextmanager
def _connected(con: db.Connectable) -> Iterator[Driver]:
    """The driver inside a transaction for this write: a savepoint in a caller's Connection's transaction, else ours.

    A caller's Connection joins its transaction (begun as SQLAlchemy's autobegin would: the caller commits or
    rolls back); one in ``AUTOCOMMIT`` isolation, an Engine or a URL gets one transaction of ours, committed here.
    """
    if isinstance(con, sa.Connection):
        conn = joined(con)
        with conn.transaction():
            yield conn
        return
    if isinstance(con, sa.Engine) or db.resolve_url(con).drivername not in _PSYCOPG3:
        with db.connection(con) as connection:
            conn = driver(connection)
            with conn.transaction():
                yield conn
        return
    # As read_frame does: no engine to make and dispose of, and none of its start-up queries (some 50 ms).
    with driver_connection(con) as (conn, _), conn.transaction():
        yield conn


@contextlib.contextmanager
def _transaction(con: db.Connectable, what: str) -> Iterator[Driver]:
    """The driver inside a transaction we commit, or inside a savepoint of the caller's transaction.

    A connection lost on the way is one :class:`FrameError`; the server rolls
    back what it had not committed, so only a loss during our own ``COMMIT``
    leaves the outcome unknown.
    """
    # Another driver is refused before the caller's transaction is touched; a Connection's commit is the caller's.
    callers = isinstance(con, sa.Connection) and not driver(con).autocommit
    conn, committing, lost = None, False, None
    try:
        with _connected(con) as conn:
            try:
                yield conn
            except BaseException:
                # Now, not below: leaving _connected closes a connection of our own, lost or not.
                lost = conn.broken
                raise
            committing = not callers  # releasing a savepoint commits nothing
    except (sa.exc.DBAPIError, psycopg.OperationalError, psycopg2.OperationalError, FrameError) as err:
        if conn is None or not (conn.broken if lost is None else lost):
            raise
        first: BaseException = err  # the driver's own first complaint, not SQLAlchemy's "connection is lost" after it
        while isinstance(first.__context__, (*ERRORS, sa.exc.DBAPIError, FrameError)):
            first = first.__context__
        reason = first_line(getattr(first, "orig", None) or first)
        outcome = ("the rows may or may not have been committed: look before writing again" if committing
                   else "nothing was written, and the open transaction is gone: begin again" if callers
                   else "nothing was written: write again")
        raise FrameError(f"{what} failed: the connection was lost ({reason}); {outcome}") from err


def _ahead(parts: Iterator[pa.Buffer]) -> Iterator[pa.Buffer]:
    """``parts`` made one ahead in a thread: numpy and pyarrow encode the next block while this one is sent."""
    with ThreadPoolExecutor(1, thread_name_prefix="frames-encode") as pool:
        pending = pool.submit(next, parts, None)
        while (part := pending.result()) is not None:
            pending = pool.submit(next, parts, None)
            yield part


def _csv(data: pa.Table) -> Iterator[pa.Buffer]:
    """The rows as COPY's CSV, 65,536 at a time: pyarrow writes NULL as nothing and "" quoted, as COPY means."""
    for batch in data.to_batches(max_chunksize=65_536):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=False))
        yield sink.getvalue()


def _verbatim(name: str) -> str:
    """``name`` quoted for SQL sent without parameters: :func:`quote` doubles each ``%`` for ``pyformat``."""
    return quote(name).replace("%%", "%")


def _frame(df: object, index: bool) -> tuple[pd.DataFrame, list[str]]:
    """``df`` with its named index levels as columns (``index=True``, as pandas writes them), and their names."""
    if not isinstance(df, pd.DataFrame):
        fix = ("series.to_frame() (its name becomes the column's)" if isinstance(df, pd.Series)
               else "pd.DataFrame(rows, columns=[...])")
        raise FrameError(f"write_frame needs a pandas DataFrame, not {type(df).__name__}; make one first: {fix}")
    names = [str(n) for n in df.index.names if n is not None] if index else []
    if not names:
        return df, []  # an unnamed index (a RangeIndex, row labels) is no column
    clash = [n for n in names if n in df.columns]
    if clash:
        raise FrameError(f"the index {clash} is also a column of the frame; drop one of them "
                         "(df.reset_index(drop=True), or pass index=False)")
    return df.reset_index(level=[n for n in df.index.names if n is not None]), names


def _effects(conn: Driver, cursor: Any, name: str) -> list[str]:
    """What deleting every row of ``name`` does to other tables, through their foreign keys, with row counts.

    A cascade is followed further down (the rows it deletes may be referenced in turn); a row counts when it
    references a deleted row (every column of its key not NULL: MATCH SIMPLE), as the server would delete it.
    """
    effects: list[str] = []

    def visit(table: str, deleted: str | None, alias: str, path: tuple[str, ...]) -> None:
        for child, conname, action, keys, referenced in conn.execute(cursor, _REFERENCING, {"table": table}).fetchall():
            if action not in _ON_DELETE or child in path:
                continue
            here = f"_c{len(path)}"
            if deleted is None:  # every row of the table is deleted
                refers = " AND ".join(f"{here}.{_verbatim(k)} IS NOT NULL" for k in keys)
            else:
                pairs = " AND ".join(f"{alias}.{_verbatim(r)} = {here}.{_verbatim(k)}"
                                     for k, r in zip(keys, referenced, strict=True))
                refers = f"EXISTS (SELECT FROM {table} AS {alias} WHERE {pairs} AND {deleted})"
            rows = conn.execute(cursor, f"SELECT count(*) FROM {child} AS {here} WHERE {refers}").fetchone()[0]
            if rows:
                verb, clause = _ON_DELETE[action]
                effects.append(f"{verb} {rows} rows of {child} ({clause}, {conname})")
                if action == "c":
                    visit(child, refers, here, (*path, child))

    visit(name, None, "_c0", (name,))
    return effects


def write(
    df: pd.DataFrame, table: str | sa.Table | type, con: db.Connectable, if_exists: str, *,
    index: bool = True, allow_data_loss: bool = False, overriding_system_value: bool = False,
) -> int:
    """:func:`playlist_tools.frames.write_frame`: check, then ``COPY``; the number of rows written."""
    if if_exists not in ("append", "fail", "replace"):
        raise FrameError(f"if_exists={if_exists!r} is not one of 'append', 'fail', 'replace'")
    df, from_index = _frame(df, index)
    name = table_name(table)
    if len(df) and not len(df.columns):
        raise FrameError(f"cannot write to {name}: the frame has {len(df)} rows but no columns; "
                         "give it the columns to write (COPY needs at least one)")
    missing = f"table {name} does not exist; create it first (alembic upgrade head) or check the name"
    with _transaction(con, f"writing {len(df)} rows to {name}") as conn, conn.cursor() as cursor:
        db.require_writable(conn.conn, f"write to {name}", FrameError)  # a standby: refused before anything
        if if_exists != "append":
            try:  # before anything else: see the module docstring
                cursor.execute(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE")
            except ERRORS as err:
                if sqlstate(err) == _UNDEFINED_TABLE:
                    raise FrameError(missing) from err
                raise FrameError(f"cannot lock {name} for if_exists={if_exists!r}: {first_line(err)}") from err
        live = conn.execute(cursor, _LIVE_COLUMNS, {"table": name}).fetchall()
        if not live:
            raise FrameError(missing)
        arrays, problems = _validate(df, name, live, from_index, overriding_system_value)
        if problems:
            raise FrameError(f"cannot write to {name}: " + "; ".join(problems))
        if if_exists == "fail" and conn.execute(cursor, f"SELECT EXISTS (SELECT FROM {name})").fetchone()[0]:
            raise FrameError(f"table {name} already has rows; pass if_exists='append' or 'replace'")
        if if_exists == "replace" and not allow_data_loss:
            try:
                effects = _effects(conn, cursor, name)
            except ERRORS as err:  # e.g. no SELECT on a referencing table: what cannot be counted is refused
                raise FrameError(f"if_exists='replace' on {name} cannot count the rows other tables reference in it "
                                 f"({first_line(err)}); nothing was written: get SELECT on those tables, or pass "
                                 "allow_data_loss=True to replace anyway") from err
            if effects:
                raise FrameError(f"if_exists='replace' deletes every row of {name}, which would also "
                                 f"{'; '.join(effects)}; nothing was written: pass allow_data_loss=True to let it, "
                                 "or write only new rows with if_exists='append'")
        data = pa.Table.from_arrays(arrays, names=[str(c) for c in df.columns])
        sequences = [str(row[0]) for row in live if row[7] and row[0] in df.columns]
        try:
            if if_exists == "replace":
                try:
                    cursor.execute(f"DELETE FROM {name}")
                except ERRORS as err:
                    if sqlstate(err) not in _STILL_REFERENCED:
                        raise
                    raise FrameError(f"if_exists='replace' cannot delete the rows of {name}: {_server_says(err)}; "
                                     "nothing was written: write only new rows with if_exists='append', or delete "
                                     "the rows that reference them first") from err
            if not len(df.columns):  # an empty frame: nothing to COPY (which needs a column)
                return 0
            columns = ", ".join(_verbatim(str(c)) for c in df.columns)
            typnames = {row[0]: row[1] for row in live}
            binary = _copy_binary.encode([(typnames[c], a) for c, a in zip(df.columns, arrays, strict=True)])
            fmt, parts = ("binary", binary) if binary is not None else ("csv", _csv(data))
            conn.copy_in(cursor, f"COPY {name} ({columns}) FROM STDIN (FORMAT {fmt})", _ahead(parts))
            for column in sequences:
                largest = pc.max(data.column(column)).as_py()
                if largest is not None:
                    cursor.execute(*advance_sequence(name, column, largest))
        except ERRORS as err:
            if conn.broken:
                raise  # _transaction says it in its own words
            raise FrameError(f"writing {len(df)} rows to {name} failed: {_server_says(err)}; "
                             "nothing was written: fix those rows and write again") from err
    return len(df)
