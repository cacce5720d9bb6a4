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
from playlist_tools.frames._driver import ERRORS, Driver, driver, driver_connection, quote, table_name

_UNDEFINED_TABLE = "42P01"
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
       a.attgenerated <> '', pg_get_serial_sequence(%(table)s, a.attname) IS NOT NULL
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
_ADVANCE_SEQUENCE = """
SELECT setval(s.seqrelid, %(largest)s::bigint) FROM pg_sequence s
WHERE s.seqrelid = pg_get_serial_sequence(%(table)s, %(column)s)::regclass AND s.seqincrement > 0
  AND %(largest)s::bigint >= coalesce(pg_sequence_last_value(s.seqrelid)::numeric + s.seqincrement, s.seqstart)
"""


def advance_sequence(table: str, column: str, largest: int) -> tuple[str, dict[str, Any]]:
    """SQL and parameters that move ``column``'s own sequence past ``largest``, never backwards.

    A no-op when the column owns no sequence (neither serial nor identity),
    when the sequence counts down, or when its next value is already past
    ``largest``. The parameters are in the ``pyformat`` style of psycopg and
    psycopg2 alike (``cursor.execute(*...)``, ``connection.exec_driver_sql(*...)``).

    Parameters
    ----------
    table : str
        The table's name as SQL would write it (quoted where it must be).
    column : str
        The column's exact name.
    largest : int
        The largest value written into it.

    Examples
    --------
    >>> from playlist_tools import db
    >>> with db.fresh_database() as url, db.transaction(url) as con:
    ...     _ = con.exec_driver_sql("CREATE TABLE t (id serial, x int); INSERT INTO t (id) VALUES (5)")
    ...     _ = con.exec_driver_sql(*advance_sequence("t", "id", 5))
    ...     _ = con.exec_driver_sql(*advance_sequence("t", "id", 3))  # never backwards
    ...     con.exec_driver_sql("INSERT INTO t (x) VALUES (0) RETURNING id").scalar_one()
    6
    """
    return _ADVANCE_SEQUENCE, {"table": table, "column": column, "largest": largest}


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
        fix = ".dt.tz_localize('UTC')" if arrow_target.tz else ".dt.tz_localize(None)"
        return None, [f"column {name!r} is {series.dtype} but {typname} needs {arrow_target}; use df[{name!r}]{fix}"]
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
        lengths = pc.utf8_length(array)
        longest = pc.max(lengths).as_py()
        if longest > typmod - 4:
            value = array[pc.index(lengths, longest).as_py()].as_py()
            problems.append(f"column {name!r} value {value[:40]!r} has {longest} characters, "
                            f"more than {typname}({typmod - 4}); shorten it")
    return array, problems


def _validate(df: pd.DataFrame, name: str, live: list[tuple[Any, ...]]) -> tuple[list[pa.Array], list[str]]:
    columns = {row[0]: row for row in live}
    problems = []
    if df.columns.duplicated().any():
        twice = sorted(map(str, set(df.columns[df.columns.duplicated()])))
        return [], [f"columns {twice} appear twice; drop the copies"]
    extra = [str(c) for c in df.columns if c not in columns]
    if extra:
        problems.append(f"columns {extra} are not in {name} (it has {', '.join(columns)}); rename or drop them")
    for column, _, _, _, not_null, has_default, generated, _ in live:
        if column not in df.columns and not_null and not has_default:
            problems.append(f"column {column!r} is required (NOT NULL, no default) but missing")
        elif column in df.columns and generated:
            problems.append(f"column {column!r} is generated by the database; drop it from the frame")
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
    """The driver in a transaction of ``con``'s: a URL for psycopg 3 gets a psycopg connection of its own."""
    if isinstance(con, (sa.Connection, sa.Engine)) or db.resolve_url(con).drivername not in _PSYCOPG3:
        with db.transaction(con) as connection:
            yield driver(connection)
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
    if isinstance(con, sa.Connection):
        driver(con)  # another driver is refused before the caller's transaction is touched
    callers = isinstance(con, sa.Connection) and con.in_transaction()
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


def write(df: pd.DataFrame, table: str | sa.Table | type, con: db.Connectable, if_exists: str) -> int:
    """:func:`playlist_tools.frames.write_frame`: check, then ``COPY``; the number of rows written."""
    if if_exists not in ("append", "fail", "replace"):
        raise FrameError(f"if_exists={if_exists!r} is not one of 'append', 'fail', 'replace'")
    name = table_name(table)
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
        arrays, problems = _validate(df, name, live)
        if problems:
            raise FrameError(f"cannot write to {name}: " + "; ".join(problems))
        if if_exists == "fail" and conn.execute(cursor, f"SELECT EXISTS (SELECT FROM {name})").fetchone()[0]:
            raise FrameError(f"table {name} already has rows; pass if_exists='append' or 'replace'")
        data = pa.Table.from_arrays(arrays, names=[str(c) for c in df.columns])
        sequences = [str(row[0]) for row in live if row[7] and row[0] in df.columns]
        try:
            if if_exists == "replace":
                cursor.execute(f"DELETE FROM {name}")
            columns = ", ".join(quote(str(c)) for c in df.columns)
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
