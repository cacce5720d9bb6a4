"""Query results as DataFrames, and DataFrames into tables: fast, with faithful dtypes.

:func:`read_frame` asks the server for the result's column types first
(``LIMIT 0``), then fetches it as Arrow through ADBC (``adbc-driver-postgresql``:
PostgreSQL's binary ``COPY``, decoded in C). A whole table of 32 MB or more
is read as several ``ctid`` ranges at once, on one snapshot. ``numeric(p, s)``
travels as an exactly scaled ``bigint`` (ADBC would turn it into text, the
slowest part of a read). Through a caller's ``Connection`` the rows come
from psycopg instead, inside that connection's transaction.
:func:`write_frame` checks the frame against the live table, then sends it
as one ``COPY ... FROM STDIN (FORMAT csv)`` written by pyarrow.

Dtypes of a result, by PostgreSQL type (``NULL`` is always NA):

=============================  ==============================================
``smallint/integer/bigint``    ``Int16`` / ``Int32`` / ``Int64`` (nullable)
``real/double precision``      ``Float32`` / ``Float64`` (pandas: ``NaN`` is NA too)
``boolean``                    ``boolean``
``text/varchar/char``          ``string`` (``pd.StringDtype("pyarrow")``)
``numeric(p, s)``, p <= 38     ``decimal128(p, s)[pyarrow]``: exact
other ``numeric``              ``object`` holding :class:`decimal.Decimal`
``date``                       ``date32[day][pyarrow]`` (``datetime.date`` values)
``timestamp``                  ``datetime64[us]``
``timestamptz``                ``datetime64[us, UTC]``
``bytea``                      ``binary[pyarrow]``
anything else                  ``string``: its PostgreSQL text (json, uuid, ...)
=============================  ==============================================

Examples
--------
>>> from playlist_tools import db, frames
>>> with db.fresh_database() as url:
...     frames.read_frame("SELECT 9007199254740993::bigint AS n UNION ALL SELECT NULL", url)
                  n
0  9007199254740993
1              <NA>
"""

from __future__ import annotations

import contextlib
import decimal
import itertools
import os
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import adbc_driver_manager
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from sqlalchemy.engine import URL

from playlist_tools import db
from playlist_tools.errors import DatabaseUnavailableError, FrameError

__all__ = ["read_frame", "to_parquet", "write_frame"]

Query = Union[str, sa.Select, sa.TextClause, sa.Table, type]
Con = Union[sa.Connection, sa.Engine, URL, str, None]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?")
_PYFORMAT = pg_dialect.dialect()  # psycopg's placeholders
_DOLLAR = pg_dialect.dialect(paramstyle="numeric_dollar")  # ADBC's
_QUOTE = _PYFORMAT.identifier_preparer.quote
# PostgreSQL types with a faithful Arrow twin, by type OID.
_ARROW_OF_OID = {
    16: pa.bool_(), 17: pa.binary(), 19: pa.string(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(),
    25: pa.string(), 700: pa.float32(), 701: pa.float64(), 1042: pa.string(), 1043: pa.string(),
    1082: pa.date32(), 1114: pa.timestamp("us"), 1184: pa.timestamp("us", "UTC"),
}
_NUMERIC = 1700
_PARALLEL_MIN_PAGES = 4096  # 32 MB: below that, extra connections cost more than they save
_MASKED = {
    pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
    pa.float32(): pd.Float32Dtype(), pa.float64(): pd.Float64Dtype(), pa.bool_(): pd.BooleanDtype(),
}


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _table_name(table: str | sa.Table | type) -> str:
    """A table given by name, ``Table`` or model, quoted; anything else is refused."""
    table = getattr(table, "__table__", table)
    if isinstance(table, sa.Table):
        return ".".join(_QUOTE(part) for part in filter(None, (table.schema, table.name)))
    if not _IDENTIFIER.fullmatch(str(table)):
        raise FrameError(
            f"table name {table!r} is not a plain identifier; pass the name as it is in the database, e.g. 'songs'"
        )
    return ".".join(_QUOTE(part) for part in str(table).split("."))


# -- what a query returns -----------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    expr: str  # the select-list expression that travels, over the aliased source ``_q``
    wire: pa.DataType  # Arrow type as it arrives
    final: pa.DataType  # Arrow type in the result
    decimals: bool = False  # unconstrained numeric: its text travels, pandas gets Decimal objects


def _column(i: int, name: str, oid: int, precision: int | None, scale: int | None) -> _Column:
    ref = f"_q.c{i}"
    if oid in _ARROW_OF_OID:
        # Text becomes large_string, pandas' own string storage, so that pandas need not convert it again.
        wire = _ARROW_OF_OID[oid]
        return _Column(name, ref, wire, pa.large_string() if wire == pa.string() else wire)
    if oid == _NUMERIC and precision is not None and scale is not None and 0 <= scale <= precision <= 38:
        if precision <= 18:  # the unscaled value fits a bigint, which decodes ~3x faster than numeric
            return _Column(name, f"({ref} * 1{'0' * scale})::int8", pa.int64(), pa.decimal128(precision, scale))
        return _Column(name, f"{ref}::text", pa.string(), pa.decimal128(precision, scale))
    return _Column(name, f"{ref}::text", pa.string(), pa.large_string(), decimals=oid == _NUMERIC)


@dataclass(frozen=True)
class _Source:
    statement: sa.ClauseElement | None  # a query, or
    table: str | None  # a whole table, quoted

    @classmethod
    def of(cls, query: Query, params: Mapping[str, Any] | None) -> _Source:
        if isinstance(getattr(query, "__table__", query), sa.Table) or (
            isinstance(query, str) and _IDENTIFIER.fullmatch(query.strip())
        ):
            return cls(None, _table_name(query.strip() if isinstance(query, str) else query))  # type: ignore[arg-type]
        statement = sa.text(query) if isinstance(query, str) else query
        if not isinstance(statement, (sa.TextClause, sa.Select)):
            raise FrameError(f"cannot read {query!r}; pass SQL text, a select(), a table name or a model")
        if isinstance(statement, sa.TextClause):
            # text() would quietly send NULL for a placeholder without a value.
            missing = [name for name in statement.compile().binds if name not in (params or {})]
            if missing:
                raise FrameError(f"query {str(statement)[:80]!r} has no value for :{missing[0]}; "
                                 f"pass params={{{missing[0]!r}: ...}}")
        return cls(statement.params(**params) if params else statement, None)

    def sql(self, dialect: sa.Dialect) -> tuple[str, Any]:
        """The source for ``FROM``, with its parameters in ``dialect``'s style."""
        if self.statement is None:
            return str(self.table), {} if dialect is _PYFORMAT else []
        compiled = self.statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.params
        # The newlines keep a trailing "--" comment of the query from eating our closing parenthesis.
        args = dict(params) if dialect is _PYFORMAT else [params[k] for k in compiled.positiontup or ()]
        return f"(\n{compiled}\n)", args


def _select(source: str, columns: list[_Column], where: str = "") -> str:
    # Positional aliases c0..cn: the query's own column names may repeat or need quoting.
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    exprs = ", ".join(f"{c.expr} AS {_QUOTE(c.name)}" for c in columns)
    return f"SELECT {exprs} FROM {source} AS _q({aliases}){where}"


def _describe(conn: psycopg.Connection, source: _Source) -> tuple[list[_Column], int]:
    """The result's columns, from the server without running the query, and the table's pages."""
    sql, params = source.sql(_PYFORMAT)
    try:
        # transaction(): a savepoint inside a caller's transaction, so a bad query doesn't doom it.
        # binary=True: the extended protocol, which refuses a second statement smuggled into the text.
        with conn.transaction(), conn.cursor(binary=True) as cursor:
            cursor.execute(f"SELECT * FROM {sql} AS _q LIMIT 0", params)
            description = cursor.description or []
            pages = 0
            if source.table is not None:
                size = "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int"
                cursor.execute(size, [source.table])
                pages = int(cursor.fetchone()[0])  # type: ignore[index]
    except psycopg.Error as err:
        what = f"table {source.table}" if source.table else f"query {str(source.statement)[:80]!r}"
        hint = "; write CAST(:name AS type), not :name::type" if re.search(r":\w+::", str(source.statement)) else ""
        raise FrameError(
            f"cannot read {what}: {_first_line(err)}{hint}; pass an existing table or model, "
            "or one SELECT query with :name placeholders and params="
        ) from err
    return [_column(i, d.name, d.type_code, d.precision, d.scale) for i, d in enumerate(description)], pages


# -- connections ----------------------------------------------------------------------


def _libpq_uri(url: URL) -> str:
    url = url.set(drivername="postgresql").update_query_dict({"application_name": db.APPLICATION_NAME})
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def _connection(con: Con) -> Iterator[tuple[psycopg.Connection, str | None]]:
    """A psycopg connection, and the URI for ADBC: None when it is the caller's connection."""
    if isinstance(con, sa.Connection):
        driver = con.connection.driver_connection
        if not isinstance(driver, psycopg.Connection):
            raise FrameError(
                f"the connection's driver is {con.dialect.driver!r}; frames needs psycopg 3: "
                "make the engine from a postgresql:// or postgresql+psycopg:// URL"
            )
        yield driver, None
        return
    url = con.url if isinstance(con, sa.Engine) else db.resolve_url(con)
    try:
        conn = psycopg.connect(_libpq_uri(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as err:
        raise DatabaseUnavailableError(
            f"cannot connect to {db.mask_url(url)}: {_first_line(err)}; "
            "check that the server is running and the URL is right"
        ) from err
    with conn:
        yield conn, _libpq_uri(url)


# -- reading ----------------------------------------------------------------------------


def _adbc(
    uri: str, sql: str, params: list[Any], columns: list[_Column], snapshot: str | None = None
) -> Iterator[pa.RecordBatch]:
    import adbc_driver_postgresql.dbapi as adbc  # here, not at the top: its import takes 0.3 s

    # autocommit: a notebook kernel must not sit "idle in transaction" afterwards.
    with adbc.connect(uri, autocommit=True) as conn, conn.cursor() as cursor:
        if snapshot is not None:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        cursor.execute(sql, params or None)
        for batch in cursor.fetch_record_batch():
            yield _finish(batch, columns)


def _adbc_parallel(uri: str, table: str, columns: list[_Column], pages: int, parts: int) -> Iterator[pa.RecordBatch]:
    """A whole table as ``parts`` ctid ranges read at once, all on the snapshot of a leader."""
    import adbc_driver_postgresql.dbapi as adbc

    bounds = [pages * i // parts for i in range(parts)] + [None]
    wheres = [f" WHERE _q.ctid >= '({lo},0)'" + ("" if hi is None else f" AND _q.ctid < '({hi},0)'")
              for lo, hi in itertools.pairwise(bounds)]
    with adbc.connect(uri, autocommit=True) as leader, leader.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = str(cursor.fetchone()[0])  # type: ignore[index]
        if not re.fullmatch(r"[0-9A-F-]+", snapshot):  # pragma: no cover - the server makes it
            raise FrameError(f"unexpected snapshot id {snapshot!r} from the server")
        with ThreadPoolExecutor(parts) as pool:  # ADBC decodes with the GIL released
            parts_read = pool.map(lambda w: list(_adbc(uri, _select(table, columns, w), [], columns, snapshot)), wheres)
            batches = [batch for part in parts_read for batch in part]
        cursor.execute("COMMIT")
    yield from batches


def _psycopg(
    conn: psycopg.Connection, sql: str, params: dict[str, Any], columns: list[_Column], rows: int
) -> Iterator[pa.RecordBatch]:
    schema = _schema(columns, "wire")
    with conn.transaction(), conn.cursor(binary=True) as cursor:
        stream = cursor.stream(sql, params, size=min(rows, 10_000))
        try:
            while chunk := list(itertools.islice(stream, rows)):
                arrays = [pa.array(values, spec.wire) for values, spec in zip(zip(*chunk), columns)]
                yield _finish(pa.RecordBatch.from_arrays(arrays, schema=schema), columns)
        finally:
            stream.close()  # psycopg cancels a stream left half-read; the connection is free again


def _schema(columns: list[_Column], which: str = "final") -> pa.Schema:
    return pa.schema([pa.field(c.name, getattr(c, which)) for c in columns])


def _finish(batch: pa.RecordBatch, columns: list[_Column]) -> pa.RecordBatch:
    """Wire types to final types; a scaled bigint is reinterpreted as its decimal, no arithmetic."""
    arrays = []
    for array, spec in zip(batch.columns, columns):
        if pa.types.is_integer(spec.wire) and pa.types.is_decimal(spec.final):
            array = pc.cast(array, pa.decimal128(38, 0)).view(spec.final)
        arrays.append(array.cast(spec.final))
    return pa.RecordBatch.from_arrays(arrays, schema=_schema(columns))


def _tables(
    query: Query, con: Con, params: Mapping[str, Any] | None, rows: int, parts: int
) -> Iterator[tuple[pa.Table, list[_Column]]]:
    """The result as Arrow tables of final types and ``rows`` rows each; at least one, maybe empty."""
    source = _Source.of(query, params)
    with _connection(con) as (conn, uri):
        columns, pages = _describe(conn, source)
        final = _schema(columns)
        if uri is None:
            sql, args = source.sql(_PYFORMAT)
            batches = _psycopg(conn, _select(sql, columns), args, columns, min(rows, 100_000))
        elif source.table is not None and parts > 1 and pages >= _PARALLEL_MIN_PAGES:
            batches = _adbc_parallel(uri, source.table, columns, pages, parts)
        else:
            sql, args = source.sql(_DOLLAR)
            batches = _adbc(uri, _select(sql, columns), args, columns)
        pending: list[pa.RecordBatch] = []
        sent = False
        try:
            for batch in itertools.chain(batches, [None]):
                pending += [] if batch is None else [batch]
                whole = pa.Table.from_batches(pending, schema=final)
                while whole.num_rows >= rows or (batch is None and (whole.num_rows or not sent)):
                    yield whole.slice(0, rows), columns
                    whole, sent = whole.slice(rows), True
                pending = whole.to_batches()
        # pyarrow reports ADBC's errors in the middle of a stream as OSError.
        except (psycopg.Error, adbc_driver_manager.Error, OSError) as err:
            raise FrameError(f"reading the result failed: {_first_line(err)}; nothing was changed") from err


def _pandas_dtype(arrow: pa.DataType) -> Any:
    if arrow in _MASKED:
        return _MASKED[arrow]
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return pd.StringDtype("pyarrow")
    if pa.types.is_decimal(arrow) or pa.types.is_date(arrow) or pa.types.is_binary(arrow):
        return pd.ArrowDtype(arrow)
    return None  # timestamps: pandas' own datetime64[us], zone-aware for timestamptz


def _to_pandas(table: pa.Table, columns: list[_Column]) -> pd.DataFrame:
    exact = {i: [None if v is None else decimal.Decimal(v) for v in table.column(i).to_pylist()]
             for i, spec in enumerate(columns) if spec.decimals}
    # self_destruct frees each Arrow column once converted, so the peak stays near one copy.
    frame = table.to_pandas(types_mapper=_pandas_dtype, split_blocks=True, self_destruct=True)
    for i, values in exact.items():
        frame.isetitem(i, pd.Series(values, index=frame.index, dtype=object))
    return frame


def read_frame(
    query: Query,
    con: Con = None,
    params: Mapping[str, Any] | None = None,
    *,
    chunksize: int | None = None,
    parallel: int | None = None,
) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Run a query and return its result as a DataFrame with faithful dtypes.

    The module docstring lists the dtype of each PostgreSQL type.

    Parameters
    ----------
    query : str, sqlalchemy.Select, sqlalchemy.TextClause, sqlalchemy.Table or model class
        One query as SQL text (``SELECT``, ``WITH``, ``VALUES``, ``TABLE``;
        ``:name`` placeholders), a ``select(...)`` (ORM selects too), or a
        whole table: its exact name (``"songs"``, ``"public.songs"``; quoted
        for you), its ``Table`` or its model (``Song``).
    con : sqlalchemy.Connection, sqlalchemy.Engine, str, URL or None
        Where to read; ``None`` is :func:`playlist_tools.db.resolve_url`
        (``$DATABASE_URL``, else the embedded server). With an Engine, a URL
        or ``None`` we open our own connections (the fast path) and close
        them before returning. A Connection is used as it is, inside its
        transaction (its uncommitted rows are seen), and we neither commit
        nor close it; rows then come through psycopg, several times slower.
    params : mapping, optional
        Values of the ``:name`` placeholders: always bound, never formatted
        into the SQL.
    chunksize : int, optional
        Return an iterator of DataFrames of ``chunksize`` rows (the last one
        shorter), for results larger than memory. Its connections close when
        it is exhausted or closed.
    parallel : int, optional
        How many connections read a whole table at once (defaults to the
        number of CPUs, at most 4). Only tables of 32 MB or more are split,
        and never a query, ``chunksize`` or a caller's Connection.

    Returns
    -------
    pandas.DataFrame or iterator of pandas.DataFrame

    Raises
    ------
    FrameError
        When the table does not exist or the query fails; nothing is changed.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> from playlist_tools import db, frames
    >>> from playlist_tools.models import Base, Song
    >>> with db.fresh_database() as url:
    ...     engine = db.create_engine(url)
    ...     Base.metadata.create_all(engine)
    ...     with engine.begin() as con:
    ...         _ = con.execute(sa.insert(Song), [
    ...             {"title": "Fast as a Shark", "duration_ms": 230619, "unit_price": None},
    ...             {"title": "Lamento", "duration_ms": None, "unit_price": "0.99"}])
    ...     songs = frames.read_frame(sa.select(Song.title, Song.duration_ms, Song.unit_price), engine)
    ...     lamento = frames.read_frame("SELECT title FROM songs WHERE title = :t", engine, {"t": "Lamento"})
    ...     engine.dispose()
    >>> songs
                 title  duration_ms  unit_price
    0  Fast as a Shark       230619        <NA>
    1          Lamento         <NA>        0.99
    >>> songs.dtypes.astype(str).tolist()
    ['string', 'Int32', 'decimal128(10, 2)[pyarrow]']
    >>> lamento.title.tolist()
    ['Lamento']
    """
    if chunksize is not None:
        if chunksize < 1:
            raise FrameError(f"chunksize={chunksize} must be a positive number of rows")
        return (_to_pandas(table, columns) for table, columns in _tables(query, con, params, chunksize, 1))
    parts = parallel or min(os.cpu_count() or 1, 4)
    [(table, columns)] = _tables(query, con, params, 2**62, parts)
    return _to_pandas(table, columns)


def to_parquet(
    query: Query,
    path: str | os.PathLike[str],
    con: Con = None,
    params: Mapping[str, Any] | None = None,
    *,
    batch_rows: int = 100_000,
) -> int:
    """Stream a query's result into a Parquet file, ``batch_rows`` rows at a time.

    ``query``, ``con`` and ``params`` are those of :func:`read_frame`, and so
    are the Arrow types (an unconstrained ``numeric`` is stored as its text).
    The file appears whole or not at all. Read it back with
    ``pd.read_parquet(path, dtype_backend="pyarrow")`` to keep integers with
    NULLs integers.

    Returns
    -------
    int
        The number of rows written.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> from playlist_tools import db, frames
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "numbers.parquet"
    >>> with db.fresh_database() as url:
    ...     frames.to_parquet("SELECT n FROM generate_series(1, 250000) AS n", path, url)
    250000
    >>> int(pd.read_parquet(path).n.sum())
    31250125000
    >>> path.unlink(); path.parent.rmdir()
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    rows = 0
    try:
        writer = None
        for table, _ in _tables(query, con, params, batch_rows, 1):
            writer = writer or pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            rows += table.num_rows
        writer.close()  # type: ignore[union-attr]
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return rows


# -- writing -----------------------------------------------------------------------------

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
        return None, [f"column {name!r} mixes types ({_first_line(err)}); give it one dtype"]
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
                                 f"to {high}: {_first_line(err)}); use a wider column type or fix the values"]
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
        with _connection(con) as (conn, _), con.begin_nested() if con.in_transaction() else con.begin():
            yield conn
        return
    engine = con if isinstance(con, sa.Engine) else db.create_engine(con, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection, _transaction(connection) as conn:
            yield conn
    finally:
        if engine is not con:
            engine.dispose()


def write_frame(
    df: pd.DataFrame,
    table: str | sa.Table | type,
    con: Con = None,
    *,
    if_exists: Literal["append", "fail", "replace"] = "append",
) -> int:
    """Add a DataFrame's rows to an existing table in one ``COPY``: all rows or none.

    Before anything is sent, the frame is checked against the live table,
    and every problem is named in one :class:`FrameError`: an unknown table,
    missing required columns, extra columns, wrong dtypes, values that do
    not fit (an int64 beyond ``integer``, text longer than ``varchar(n)``,
    too many digits for ``numeric(p, s)``), NULLs in ``NOT NULL`` columns.
    Integral floats go into integer columns; empty strings stay empty
    strings, not NULL; ``NaN`` in a float64 column is NULL, as pandas means
    it; floats into ``numeric`` round to its scale, as PostgreSQL does.

    Parameters
    ----------
    df : pandas.DataFrame
        Its column names are the table's; the index is not written.
    table : str, sqlalchemy.Table or model class
        The table (``"songs"``, ``"public.songs"``, ``Song``). It must exist:
        the schema belongs to the migrations.
    con : sqlalchemy.Connection, sqlalchemy.Engine, str, URL or None
        As in :func:`read_frame`. A Connection in a transaction gets the rows
        inside it (in a savepoint, so a failed write leaves the transaction
        usable) and the caller commits; otherwise we begin and commit our
        own transaction. We close only what we open.
    if_exists : {"append", "fail", "replace"}
        When the table already has rows: add to them, refuse, or first
        delete them in the same transaction (foreign keys apply).

    Returns
    -------
    int
        The number of rows written.

    Examples
    --------
    >>> import pandas as pd
    >>> from playlist_tools import db, frames
    >>> from playlist_tools.models import Base
    >>> with db.fresh_database() as url:
    ...     engine = db.create_engine(url)
    ...     Base.metadata.create_all(engine)
    ...     frames.write_frame(pd.DataFrame({"playlist_id": [1, 2], "title": ["Music", ""]}), "playlists", engine)
    ...     try:
    ...         frames.write_frame(pd.DataFrame({"playlist_id": [2**40], "name": ["x"]}), "playlists", engine)
    ...     except frames.FrameError as err:
    ...         print(err)
    ...     frames.read_frame("SELECT playlist_id, title FROM playlists", engine)
    ...     engine.dispose()
    2
    cannot write to playlists: columns ['name'] are not in playlists (...); rename or drop them; column 'title' is required (NOT NULL, no default) but missing; column 'playlist_id' has values that do not fit int4 (...); ...
       playlist_id  title
    0            1  Music
    1            2
    """
    if if_exists not in ("append", "fail", "replace"):
        raise FrameError(f"if_exists={if_exists!r} is not one of 'append', 'fail', 'replace'")
    name = _table_name(table)
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
            columns = ", ".join(_QUOTE(str(c)) for c in df.columns)
            with cursor.copy(f"COPY {name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                for batch in data.to_batches(max_chunksize=65_536):
                    sink = pa.BufferOutputStream()
                    # pyarrow writes NULL as nothing and "" quoted, which is what COPY's CSV means.
                    pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=False))
                    copy.write(sink.getvalue())
        except psycopg.Error as err:
            detail = f" ({err.diag.message_detail})" if err.diag.message_detail else ""
            raise FrameError(f"writing {len(df)} rows to {name} failed: {_first_line(err)}{detail}; "
                             "nothing was written: fix those rows and write again") from err
    return len(df)
