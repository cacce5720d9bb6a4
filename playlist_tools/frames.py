"""Query results as DataFrames, and DataFrames into tables, fast and with faithful dtypes.

Reads go through Arrow: PostgreSQL's binary ``COPY`` decoded by ADBC
(``adbc-driver-postgresql``) when we open the connection ourselves, split
into parallel ``ctid`` ranges on one snapshot when a whole large table is
read. Writes are one ``COPY ... FROM STDIN (FORMAT csv)`` fed by pyarrow's
CSV writer, after the frame has been checked against the live table.

Dtypes of :func:`read_frame`, by PostgreSQL type (``NULL`` is always NA):

============================  =============================================
``smallint/integer/bigint``   ``Int16`` / ``Int32`` / ``Int64`` (nullable)
``real/double precision``     ``Float32`` / ``Float64`` (nullable; ``NaN`` is NA too)
``boolean``                   ``boolean`` (nullable)
``text/varchar/char``         ``string`` (``pd.StringDtype("pyarrow")``)
``numeric(p, s)``             ``decimal128(p, s)[pyarrow]``: exact
``numeric`` (no precision)    ``object`` holding :class:`decimal.Decimal`
``date``                      ``date32[day][pyarrow]``: ``datetime.date`` values
``timestamp``                 ``datetime64[us]``
``timestamptz``               ``datetime64[us, UTC]``
``bytea``                     ``binary[pyarrow]``
anything else                 ``string``: PostgreSQL's text form (json, uuid...)
============================  =============================================

Examples
--------
>>> import pandas as pd
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
from playlist_tools.errors import FrameError

__all__ = ["read_frame", "to_parquet", "write_frame"]

Query = Union[str, sa.Select, sa.TextClause, sa.Table, type]
Con = Union[sa.Connection, sa.Engine, URL, str, None]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?")
_PYFORMAT = pg_dialect.dialect()
_DOLLAR = pg_dialect.dialect(paramstyle="numeric_dollar")
_PREPARER = _PYFORMAT.identifier_preparer
# The PostgreSQL types that have a faithful Arrow twin, by type OID.
_ARROW_OF_OID = {
    16: pa.bool_(), 17: pa.binary(), 21: pa.int16(), 23: pa.int32(), 20: pa.int64(),
    700: pa.float32(), 701: pa.float64(), 25: pa.string(), 1043: pa.string(),
    1042: pa.string(), 19: pa.string(), 1082: pa.date32(),
    1114: pa.timestamp("us"), 1184: pa.timestamp("us", "UTC"),
}
_NUMERIC_OID = 1700
_PARALLEL_MIN_PAGES = 4096  # 32 MB: below that, a second connection costs more than it saves


@dataclass(frozen=True)
class _Column:
    name: str
    expr: str  # what travels: a select-list expression over the subquery ``_q``
    wire: pa.DataType  # its Arrow type as it arrives
    final: pa.DataType  # its Arrow type in the result
    decimals: bool = False  # unconstrained numeric: text on the wire, Decimal objects in pandas


@dataclass(frozen=True)
class _Plan:
    source: str  # ``(<query>)`` or a quoted table name
    columns: list[_Column]
    pages: int  # size of the table when ``source`` is one, else 0

    def select(self, where: str = "") -> str:
        aliases = ", ".join(f"c{i}" for i in range(len(self.columns)))
        exprs = ", ".join(f"{c.expr} AS {_PREPARER.quote(c.name)}" for c in self.columns) or "*"
        return f"SELECT {exprs} FROM {self.source} AS _q({aliases}){where}"


def _column(i: int, name: str, oid: int, precision: int | None, scale: int | None) -> _Column:
    ref = f"_q.c{i}"
    if oid in _ARROW_OF_OID:
        return _Column(name, ref, _ARROW_OF_OID[oid], _ARROW_OF_OID[oid])
    if oid == _NUMERIC_OID and precision is not None and scale is not None and 0 <= scale <= precision <= 38:
        final = pa.decimal128(precision, scale)
        if precision <= 18:
            # ADBC turns numeric into text slowly (a third of a 10-column read);
            # an exactly scaled bigint travels and decodes ~3x faster.
            return _Column(name, f"({ref} * 1{'0' * scale})::int8", pa.int64(), final)
        return _Column(name, f"{ref}::text", pa.string(), final)
    return _Column(name, f"{ref}::text", pa.string(), pa.string(), decimals=oid == _NUMERIC_OID)


def _statement(query: Query, params: Mapping[str, Any] | None) -> tuple[sa.ClauseElement | None, str | None]:
    """The query as a SQLAlchemy statement, or as a quoted table name."""
    if isinstance(query, type) and hasattr(query, "__table__"):
        query = query.__table__
    if isinstance(query, sa.Table):
        return None, _PREPARER.format_table(query)
    if isinstance(query, str) and _IDENTIFIER.fullmatch(query.strip()):
        return None, ".".join(_PREPARER.quote(part) for part in query.strip().split("."))
    if isinstance(query, str):
        query = sa.text(query)
    if not isinstance(query, (sa.TextClause, sa.Select)):
        raise FrameError(
            f"cannot read {type(query).__name__} {query!r}; pass SQL text, a select(), a table name or a model"
        )
    if params:
        query = query.params(**params)
    return query, None


def _compiled(statement: sa.ClauseElement | None, table: str | None, dialect: sa.Dialect) -> tuple[str, Any]:
    if statement is None:
        return str(table), ({} if dialect is _PYFORMAT else [])
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    if dialect is _DOLLAR:
        return f"(\n{compiled}\n)", [compiled.params[name] for name in compiled.positiontup or ()]
    return f"(\n{compiled}\n)", dict(compiled.params)


def _plan(conn: psycopg.Connection, statement: sa.ClauseElement | None, table: str | None) -> _Plan:
    """Describe the query's columns without running it (``LIMIT 0``)."""
    source, params = _compiled(statement, table, _PYFORMAT)
    # binary=True forces the extended protocol, which refuses a second statement
    # smuggled into the text: this describe is also the injection gate.
    with conn.cursor(binary=True) as cursor:
        try:
            cursor.execute(f"SELECT * FROM {source} AS _q LIMIT 0", params)
            description, pages = cursor.description or [], 0
            if table is not None:
                cursor.execute(
                    "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int", [table]
                )
                pages = int(cursor.fetchone()[0])  # type: ignore[index]
        except psycopg.Error as err:
            conn.rollback()
            what = f"table {table}" if table else f"query {str(statement)[:80]!r}"
            raise FrameError(
                f"cannot read {what}: {str(err).strip().splitlines()[0]}; pass an existing table name, "
                "a model, or one SELECT query with :name placeholders and params="
            ) from err
    columns = [_column(i, d.name, d.type_code, d.precision, d.scale) for i, d in enumerate(description)]
    return _Plan(source, columns, pages)


def _libpq_uri(url: URL) -> str:
    url = url.set(drivername="postgresql").update_query_dict({"application_name": db.APPLICATION_NAME})
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def _describer(con: Con) -> Iterator[tuple[psycopg.Connection, str | None]]:
    """A psycopg connection to describe queries on, and the URI for ADBC (None: use the caller's)."""
    if isinstance(con, sa.Connection):
        driver = con.connection.driver_connection
        if not isinstance(driver, psycopg.Connection):
            raise FrameError(
                f"connection uses driver {con.dialect.driver!r}; frames needs psycopg 3: "
                "make the engine with a postgresql:// or postgresql+psycopg:// URL"
            )
        yield driver, None
        return
    url = con.url if isinstance(con, sa.Engine) else db.resolve_url(con)
    uri = _libpq_uri(url)
    try:
        conn = psycopg.connect(uri, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as err:
        raise FrameError(f"cannot connect to {db.mask_url(url)}: {str(err).strip().splitlines()[-1]}") from err
    with conn:
        yield conn, uri


def _adbc_read(uri: str, sql: str, params: list[Any], snapshot: str | None = None) -> pa.RecordBatchReader:
    import adbc_driver_postgresql.dbapi as adbc

    # autocommit: a notebook kernel must not sit "idle in transaction" afterwards.
    conn = adbc.connect(uri, autocommit=True)
    cursor = conn.cursor()
    if snapshot is not None:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
    cursor.execute(sql, params or None)
    reader = cursor.fetch_record_batch()

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        finally:
            cursor.close()
            conn.close()

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _parallel_read(uri: str, plan: _Plan, parts: int) -> pa.Table:
    """Read a table as ``parts`` ctid ranges at once, all on one exported snapshot."""
    import adbc_driver_postgresql.dbapi as adbc

    bounds = [plan.pages * i // parts for i in range(parts)] + [None]
    wheres = [
        f" WHERE _q.ctid >= '({lo},0)'" + (f" AND _q.ctid < '({hi},0)'" if hi is not None else "")
        for lo, hi in itertools.pairwise(bounds)
    ]
    with adbc.connect(uri, autocommit=True) as leader, leader.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = str(cursor.fetchone()[0])  # type: ignore[index]
        if not re.fullmatch(r"[0-9A-F-]+", snapshot):  # pragma: no cover - server-made
            raise FrameError(f"unexpected snapshot id {snapshot!r} from the server")
        with ThreadPoolExecutor(parts) as pool:
            tables = list(pool.map(lambda w: _adbc_read(uri, plan.select(w), [], snapshot).read_all(), wheres))
        cursor.execute("COMMIT")
    return pa.concat_tables(tables)


def _psycopg_read(conn: psycopg.Connection, sql: str, params: dict[str, Any], plan: _Plan, rows: int) -> Iterator[pa.RecordBatch]:
    schema = pa.schema([pa.field(c.name, c.wire) for c in plan.columns])
    with conn.cursor(binary=True) as cursor:
        stream = cursor.stream(sql, params, size=min(rows, 10_000))
        while chunk := list(itertools.islice(stream, rows)):
            arrays = [pa.array(values, type=c.wire) for values, c in zip(zip(*chunk), plan.columns)]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _finish(table: pa.Table, plan: _Plan) -> pa.Table:
    """Cast wire columns to their final types (scaled bigints back into decimals)."""
    arrays = []
    for column, spec in zip(table.columns, plan.columns):
        if pa.types.is_integer(spec.wire) and pa.types.is_decimal(spec.final):
            # The bigint is the unscaled decimal: reinterpret it, no arithmetic.
            chunks = [pc.cast(chunk, pa.decimal128(38, 0)).view(spec.final) for chunk in column.chunks]
            column = pa.chunked_array(chunks, type=spec.final)
        arrays.append(column.cast(spec.final))
    return pa.Table.from_arrays(arrays, schema=pa.schema([pa.field(c.name, c.final) for c in plan.columns]))


def _tables(query: Query, con: Con, params: Mapping[str, Any] | None, rows: int, parts: int) -> Iterator[tuple[pa.Table, _Plan]]:
    """The result as Arrow tables of final types, of ``rows`` rows each (at least one table)."""
    statement, table = _statement(query, params)
    with _describer(con) as (conn, uri):
        plan = _plan(conn, statement, table)
        wire = pa.schema([pa.field(c.name, c.wire) for c in plan.columns])
        if uri is None:
            sql, args = _compiled(statement, table, _PYFORMAT)
            batches: Iterator[pa.RecordBatch] = _psycopg_read(conn, _Plan(sql, plan.columns, 0).select(), args, plan, rows)
        elif parts > 1 and plan.pages >= _PARALLEL_MIN_PAGES:
            batches = iter(_parallel_read(uri, plan, parts).to_batches())
        else:
            sql, args = _compiled(statement, table, _DOLLAR)
            batches = iter(_adbc_read(uri, _Plan(sql, plan.columns, 0).select(), args))
        pending: list[pa.RecordBatch] = []
        size, sent = 0, False
        for batch in batches:
            pending.append(batch)
            size += batch.num_rows
            while size >= rows:
                whole = pa.Table.from_batches(pending, schema=wire)
                rest = whole.slice(rows)
                pending, size, sent = rest.to_batches(), rest.num_rows, True
                yield _finish(whole.slice(0, rows), plan), plan
        if size or not sent:
            yield _finish(pa.Table.from_batches(pending, schema=wire), plan), plan


_MASKED = {
    pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
    pa.float32(): pd.Float32Dtype(), pa.float64(): pd.Float64Dtype(), pa.bool_(): pd.BooleanDtype(),
}


def _pandas_dtype(arrow: pa.DataType) -> Any:
    if arrow in _MASKED:
        return _MASKED[arrow]
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return pd.StringDtype("pyarrow")
    if pa.types.is_decimal(arrow) or pa.types.is_date(arrow) or pa.types.is_binary(arrow):
        return pd.ArrowDtype(arrow)
    return None  # timestamps: pandas' own datetime64[us] (with zone for timestamptz)


def _to_pandas(table: pa.Table, plan: _Plan) -> pd.DataFrame:
    exact = {
        i: [None if v is None else decimal.Decimal(v) for v in table.column(i).to_pylist()]
        for i, spec in enumerate(plan.columns)
        if spec.decimals
    }
    # self_destruct frees each Arrow column once converted: the peak stays near one copy.
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

    See the module docstring for the dtype of each PostgreSQL type.

    Parameters
    ----------
    query : str, sqlalchemy.Select, sqlalchemy.TextClause, sqlalchemy.Table or model class
        SQL text (one ``SELECT``/``WITH``/``VALUES``/``TABLE`` query, with
        ``:name`` placeholders), a ``select(...)`` (ORM selects too), or a
        whole table: its name (``"songs"``, ``"public.songs"``, matched
        exactly, quoted for you), its ``Table`` or its model (``Song``).
    con : sqlalchemy.Connection, sqlalchemy.Engine, str, URL or None
        Where to read. ``None`` means :func:`playlist_tools.db.resolve_url`
        (``$DATABASE_URL`` or the embedded server). With an Engine, URL or
        ``None`` we open our own connections (ADBC, binary ``COPY``: the fast
        path) and close them before returning. A Connection is used as is,
        inside its transaction, so uncommitted rows are seen; we neither
        commit nor close it. That path decodes rows with psycopg, which is
        several times slower: pass the Engine when speed matters.
    params : mapping, optional
        Values for the ``:name`` placeholders, always sent as bound
        parameters, never formatted into the SQL.
    chunksize : int, optional
        Return an iterator of DataFrames of at most this many rows instead,
        for results larger than memory. The connections close when it is
        exhausted or closed.
    parallel : int, optional
        How many connections read a whole table at once, each a ``ctid``
        range, all on one snapshot. Defaults to the number of CPUs (at most
        4); only tables of 32 MB or more are split, and never with ``params``,
        ``chunksize`` or a caller's Connection.

    Returns
    -------
    pandas.DataFrame or iterator of pandas.DataFrame

    Raises
    ------
    FrameError
        When the query fails or the table does not exist; nothing is changed.

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
    parts = 1 if params or chunksize or isinstance(con, sa.Connection) else (parallel or min(os.cpu_count() or 1, 4))
    if chunksize is not None:
        if chunksize < 1:
            raise FrameError(f"chunksize={chunksize} must be a positive number of rows")
        return (_to_pandas(t, plan) for t, plan in _tables(query, con, params, chunksize, 1))
    tables = list(_tables(query, con, params, 2**62, parts))
    return _to_pandas(tables[0][0], tables[0][1])


def to_parquet(
    query: Query, path: str | os.PathLike[str], con: Con = None, params: Mapping[str, Any] | None = None,
    *, batch_rows: int = 100_000,
) -> int:
    """Stream a query's result into a Parquet file, never holding it all in memory.

    Takes the same ``query``, ``con`` and ``params`` as :func:`read_frame`,
    with the same Arrow types (an unconstrained ``numeric`` is stored as its
    text). Returns the number of rows written. The file is written whole or
    not at all: a failed read leaves no file behind.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> from playlist_tools import db, frames
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "numbers.parquet"
    >>> with db.fresh_database() as url:
    ...     frames.to_parquet("SELECT n FROM generate_series(1, 250000) AS n", path, url)
    250000
    >>> pd.read_parquet(path).n.sum()
    np.int64(31250125000)
    >>> path.unlink()
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    rows, writer = 0, None
    try:
        for table, _ in _tables(query, con, params, batch_rows, 1):
            writer = writer or pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            rows += table.num_rows
        writer.close()  # type: ignore[union-attr]
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return rows


# -- writing -------------------------------------------------------------------

_ARROW_OF_UDT = {
    "bool": pa.bool_(), "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(),
    "float4": pa.float32(), "float8": pa.float64(), "text": pa.string(), "varchar": pa.string(),
    "bpchar": pa.string(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", "UTC"),
}
# Which Arrow kinds may go into which target kind without PostgreSQL guessing.
_ACCEPTS = {
    "integer": ("integer", "floating", "decimal"),
    "floating": ("integer", "floating", "decimal"),
    "decimal": ("integer", "floating", "decimal"),
    "boolean": ("boolean",),
    "string": ("string",),
    "date32": ("date32",),
    "timestamp": ("timestamp",),
}
_COLUMNS_SQL = """
SELECT a.attname, t.typname, a.atttypmod, a.attnotnull,
       a.atthasdef OR a.attidentity <> '' AS has_default, a.attgenerated <> '' AS generated
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def _kind(arrow: pa.DataType) -> str:
    for kind in ("integer", "floating", "decimal", "boolean", "date32", "timestamp"):
        if getattr(pa.types, f"is_{kind}")(arrow):
            return kind
    return "string" if pa.types.is_string(arrow) or pa.types.is_large_string(arrow) else str(arrow)


def _target(typname: str, typmod: int) -> pa.DataType:
    if typname == "numeric" and typmod >= 4:
        precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
        if scale <= precision <= 38:
            return pa.decimal128(precision, scale)
    return _ARROW_OF_UDT.get(typname, pa.string())  # other types: PostgreSQL parses their text


def _check(name: str, series: pd.Series, typname: str, typmod: int, not_null: bool) -> tuple[pa.Array | None, list[str]]:
    """The column as an Arrow array of the table's type, or what is wrong with it."""
    target = _target(typname, typmod)
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        return None, [f"column {name!r} mixes types ({err}); give it one dtype"]
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    source = _kind(array.type)
    problems = []
    if array.null_count == len(array):
        array = pa.nulls(len(array), target)  # all-NULL columns have no type of their own
    elif source not in _ACCEPTS.get(_kind(target), ()):
        return None, [f"column {name!r} is {series.dtype} but {typname} needs {target}; convert it first"]
    elif source == "timestamp" and (array.type.tz is None) != (target.tz is None):
        fix = ".dt.tz_localize('UTC')" if target.tz else ".dt.tz_localize(None)"
        return None, [f"column {name!r} is {series.dtype} but {typname} needs {target}; use df[{name!r}]{fix}"]
    if not_null and array.null_count:
        problems.append(f"column {name!r} has {array.null_count} NULL(s) but is NOT NULL; fill or drop them")
    try:
        array = array.cast(target)  # safe: overflow and truncation raise
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        values = array.drop_null()
        lo, hi = pc.min_max(values).values() if source in ("integer", "floating", "decimal") else (None, None)
        problems.append(f"column {name!r} has values that do not fit {typname}{'' if lo is None else f' (range {lo} to {hi})'}: "
                        f"{str(err).splitlines()[0]}; widen the column or fix the values")
        return None, problems
    if typname in ("varchar", "bpchar") and typmod >= 4 and len(array.drop_null()):
        lengths = pc.utf8_length(array)
        longest = pc.max(lengths).as_py()
        if longest > typmod - 4:
            value = array[pc.index(lengths, longest).as_py()].as_py()
            problems.append(f"column {name!r} value {value[:40]!r} has {longest} characters, more than {typname}({typmod - 4}); shorten it")
    return array, problems


def write_frame(
    df: pd.DataFrame,
    table: str | sa.Table | type,
    con: Con = None,
    *,
    if_exists: Literal["append", "fail", "replace"] = "append",
) -> int:
    """Append a DataFrame's rows to an existing table, in one ``COPY``, all or nothing.

    Every column is checked against the live table before anything is sent:
    unknown table, missing required columns, extra columns, wrong dtypes,
    values that do not fit (an int64 beyond ``integer``, text longer than
    ``varchar(n)``, too many digits for ``numeric(p, s)``) and NULLs in
    ``NOT NULL`` columns. All problems are named in one :class:`FrameError`,
    and nothing is written. Integral floats go into integer columns; empty
    strings stay empty strings (not NULL); ``NaN`` in a float64 column is
    ``NULL``, as pandas means it; floats into ``numeric`` round to its scale,
    as PostgreSQL does.

    Parameters
    ----------
    df : pandas.DataFrame
        Its column names are the table's column names; the index is ignored.
    table : str, sqlalchemy.Table or model class
        The target table (``"songs"``, ``"public.songs"``, ``Song``). It
        must exist: the schema belongs to the migrations.
    con : sqlalchemy.Connection, sqlalchemy.Engine, str, URL or None
        As in :func:`read_frame`. With a Connection already in a
        transaction, the rows join it (inside a savepoint, so a failed write
        leaves that transaction usable) and the caller commits; otherwise we
        begin and commit our own transaction. We close only what we open.
    if_exists : {"append", "fail", "replace"}
        What to do when the table already has rows: add to them, refuse
        (:class:`FrameError`), or delete them first in the same transaction
        (foreign keys apply: a referenced row stops the whole write).

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
    cannot write to playlists: column 'name' is not in the table (it has playlist_id, title, description, created_at); rename or drop it; column 'title' is required (NOT NULL, no default) but missing; column 'playlist_id' has values that do not fit int4 (range 1099511627776 to 1099511627776): ...
       playlist_id  title
    0            1  Music
    1            2
    """
    if if_exists not in ("append", "fail", "replace"):
        raise FrameError(f"if_exists={if_exists!r} is not one of 'append', 'fail', 'replace'")
    if isinstance(table, type) and hasattr(table, "__table__"):
        table = table.__table__
    name = _PREPARER.format_table(table) if isinstance(table, sa.Table) else str(table)
    if not isinstance(table, sa.Table) and not _IDENTIFIER.fullmatch(name):
        raise FrameError(f"table name {name!r} is not a plain identifier; pass the name as it is in the database, e.g. 'songs'")
    if not isinstance(table, sa.Table):
        name = ".".join(_PREPARER.quote(part) for part in name.split("."))
    with _transaction(con) as conn:
        with conn.cursor() as cursor:
            cursor.execute(_COLUMNS_SQL, [name])
            live = cursor.fetchall()
        if not live:
            raise FrameError(f"table {name} does not exist; create it first (alembic upgrade head) or check the name")
        arrays, problems = _validate(df, name, live)
        if problems:
            raise FrameError(f"cannot write to {name}: " + "; ".join(problems))
        with conn.cursor() as cursor:
            if if_exists == "fail" and cursor.execute(f"SELECT EXISTS (SELECT FROM {name})").fetchone()[0]:  # type: ignore[index]
                raise FrameError(f"table {name} already has rows; pass if_exists='append' or 'replace'")
            try:
                if if_exists == "replace":
                    cursor.execute(f"DELETE FROM {name}")
                columns = ", ".join(_PREPARER.quote(str(c)) for c in df.columns)
                data = pa.Table.from_arrays(arrays, names=[str(c) for c in df.columns])
                with cursor.copy(f"COPY {name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                    for batch in data.to_batches(max_chunksize=65_536):
                        sink = pa.BufferOutputStream()
                        pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=False))
                        copy.write(sink.getvalue())
            except psycopg.Error as err:
                detail = f" ({err.diag.message_detail})" if err.diag.message_detail else ""
                raise FrameError(
                    f"writing {len(df)} rows to {name} failed: {str(err).strip().splitlines()[0]}{detail}; "
                    "nothing was written, fix those rows and write again"
                ) from err
    return len(df)


def _validate(df: pd.DataFrame, name: str, live: list[tuple[Any, ...]]) -> tuple[list[pa.Array], list[str]]:
    columns = {row[0]: row for row in live}
    problems = []
    extra = [str(c) for c in df.columns if c not in columns]
    if extra:
        problems.append(
            f"column{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))} "
            f"{'are' if len(extra) > 1 else 'is'} not in the table (it has {', '.join(columns)}); rename or drop "
            f"{'them' if len(extra) > 1 else 'it'}"
        )
    if df.columns.duplicated().any():
        problems.append(f"columns {sorted(set(df.columns[df.columns.duplicated()]))} appear twice; drop the copies")
    for column, _typ, _mod, not_null, has_default, generated in live:
        if column not in df.columns and not_null and not has_default:
            problems.append(f"column {column!r} is required (NOT NULL, no default) but missing")
        elif column in df.columns and generated:
            problems.append(f"column {column!r} is generated by the database; drop it from the frame")
    arrays = []
    for column in df.columns:
        if column in columns and not df.columns.duplicated().any():
            _, typname, typmod, not_null, _, _ = columns[column]
            array, issues = _check(str(column), df[column], typname, typmod, not_null)
            problems += issues
            arrays.append(array)
    return arrays, problems


@contextlib.contextmanager
def _transaction(con: Con) -> Iterator[psycopg.Connection]:
    """A psycopg connection inside a transaction that commits on success, or a savepoint in the caller's."""
    if isinstance(con, sa.Connection):
        with _describer(con) as (conn, _):
            scope = con.begin_nested() if con.in_transaction() else con.begin()
            with scope:
                yield conn
        return
    engine = con if isinstance(con, sa.Engine) else db.create_engine(con, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            with _transaction(connection) as conn:
                yield conn
    finally:
        if engine is not con:
            engine.dispose()
