"""The write path of :mod:`playlist_tools.frames`: a DataFrame checked against the live table, then COPY.

Internal; :func:`playlist_tools.frames.write_frame` is the public face.
Every problem of the frame is found before anything is sent, and the rows
travel as one ``COPY ... FROM STDIN (FORMAT csv)`` written by pyarrow, in
one transaction (or a savepoint of the caller's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from playlist_tools import db
from playlist_tools.connecting import Con, driver, first_line, quote, table_name
from playlist_tools.errors import FrameError

__all__ = ["write"]

_ARROW_OF_TYPNAME = {
    "bool": pa.bool_(), "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(),
    "float4": pa.float32(), "float8": pa.float64(), "date": pa.date32(),
    "timestamp": pa.timestamp("us"), "timestamptz": pa.timestamp("us", "UTC"),
}
_KINDS = ("integer", "floating", "decimal", "boolean", "date32", "timestamp", "string", "large_string")
# What may go into what: numbers into numbers (a safe cast checks range and
# fractions), everything else only into its own kind; text is for text, json, uuid...
_NUMBERS = {"integer", "floating", "decimal"}
_ACCEPTS = {
    "integer": _NUMBERS, "floating": _NUMBERS, "decimal": _NUMBERS, "boolean": {"boolean"},
    "date32": {"date32"}, "timestamp": {"timestamp"}, "string": {"string", "large_string"},
}
_LIVE_COLUMNS = """
SELECT a.attname, t.typname, a.atttypmod, a.attnotnull, a.atthasdef OR a.attidentity <> '', a.attgenerated <> ''
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""


def _kind(arrow: pa.DataType) -> str:
    return next((k for k in _KINDS if getattr(pa.types, f"is_{k}")(arrow)), str(arrow))


def _target(typname: str, typmod: int) -> pa.DataType:
    if typname == "numeric" and typmod >= 4 and ((typmod - 4) & 0xFFFF) <= (typmod - 4) >> 16 <= 38:
        return pa.decimal128((typmod - 4) >> 16, (typmod - 4) & 0xFFFF)
    return _ARROW_OF_TYPNAME.get(typname, pa.string())  # PostgreSQL parses the text of other types


def _check(
    name: str, series: pd.Series, typname: str, typmod: int, not_null: bool
) -> tuple[pa.Array | None, list[str]]:
    """The column as an Arrow array of the table's type, or what is wrong with it."""
    target = _target(typname, typmod)
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        return None, [f"column {name!r} mixes types ({first_line(err)}); give it one dtype"]
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count == len(array):
        array = pa.nulls(len(array), target)  # an all-NULL column has no type of its own
    elif _kind(array.type) not in _ACCEPTS.get(_kind(target), {"string"}):
        return None, [f"column {name!r} is {series.dtype} but {typname} needs {target}; convert it first"]
    elif pa.types.is_timestamp(target) and (array.type.tz is None) != (target.tz is None):
        fix = ".dt.tz_localize('UTC')" if target.tz else ".dt.tz_localize(None)"
        return None, [f"column {name!r} is {series.dtype} but {typname} needs {target}; use df[{name!r}]{fix}"]
    problems = []
    if not_null and array.null_count:
        problems.append(f"column {name!r} has {array.null_count} NULL(s) but is NOT NULL; fill or drop them")
    try:
        array = array.cast(target)  # a safe cast: overflow and lost fractions raise
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
    for column, _, _, not_null, has_default, generated in live:
        if column not in df.columns and not_null and not has_default:
            problems.append(f"column {column!r} is required (NOT NULL, no default) but missing")
        elif column in df.columns and generated:
            problems.append(f"column {column!r} is generated by the database; drop it from the frame")
    arrays = []
    for column in df.columns:
        if column in columns:
            _, typname, typmod, not_null, _, _ = columns[column]
            array, issues = _check(str(column), df[column], typname, typmod, not_null)
            arrays.append(array)
            problems += issues
    return arrays, problems


@contextlib.contextmanager
def _transaction(con: Con) -> Iterator[psycopg.Connection]:
    """psycopg inside a transaction we commit, or inside a savepoint of the caller's transaction."""
    if isinstance(con, sa.Connection):
        driver(con)  # another driver is refused before the caller's transaction is touched
    with db.transaction(con) as connection:
        yield driver(connection)


def write(df: pd.DataFrame, table: str | sa.Table | type, con: Con, if_exists: str) -> int:
    """:func:`playlist_tools.frames.write_frame`: check, then ``COPY``; the number of rows written."""
    if if_exists not in ("append", "fail", "replace"):
        raise FrameError(f"if_exists={if_exists!r} is not one of 'append', 'fail', 'replace'")
    name = table_name(table)
    with _transaction(con) as conn, conn.cursor() as cursor:
        live = cursor.execute(_LIVE_COLUMNS, [name]).fetchall()
        if not live:
            raise FrameError(f"table {name} does not exist; create it first (alembic upgrade head) or check the name")
        arrays, problems = _validate(df, name, live)
        if problems:
            raise FrameError(f"cannot write to {name}: " + "; ".join(problems))
        has_rows = cursor.execute(f"SELECT EXISTS (SELECT FROM {name})").fetchone()[0]  # type: ignore[index]
        if if_exists == "fail" and has_rows:
            raise FrameError(f"table {name} already has rows; pass if_exists='append' or 'replace'")
        data = pa.Table.from_arrays(arrays, names=[str(c) for c in df.columns])
        try:
            if if_exists == "replace":
                cursor.execute(f"DELETE FROM {name}")
            columns = ", ".join(quote(str(c)) for c in df.columns)
            with cursor.copy(f"COPY {name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                for batch in data.to_batches(max_chunksize=65_536):
                    sink = pa.BufferOutputStream()
                    # pyarrow writes NULL as nothing and "" quoted, which is what COPY's CSV means.
                    pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=False))
                    copy.write(sink.getvalue())
        except psycopg.Error as err:
            detail = f" ({err.diag.message_detail})" if err.diag.message_detail else ""
            raise FrameError(f"writing {len(df)} rows to {name} failed: {first_line(err)}{detail}; "
                             "nothing was written: fix those rows and write again") from err
    return len(df)
