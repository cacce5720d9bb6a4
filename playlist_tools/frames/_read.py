"""The read path of :mod:`playlist_tools.frames`: a query's result as Arrow, then pandas.

Private to :mod:`playlist_tools.frames`, whose
:func:`~playlist_tools.frames.read_frame` and
:func:`~playlist_tools.frames.to_parquet` are the public face; the types
come from its ``_types`` map. The result's columns are described first
(the driver's, ``LIMIT 0``), then the rows travel through ADBC's binary
``COPY`` (a big table as several ``ctid`` ranges on one snapshot), or
through the caller's ``Connection`` (psycopg 3 or psycopg2) inside its
transaction. Over ADBC, bound parameters are written in as typed literals
where the server confirms it is the same query (``_params``), so that they
do not cost the ``COPY``. Each batch is checked as it arrives (dates and
timestamps within years 1 to 9999, the same integers on both paths)
before it becomes the result's types.
"""

from __future__ import annotations

import contextlib
import decimal
import itertools
import numbers
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import adbc_driver_manager
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect

from playlist_tools import db
from playlist_tools._sql_text import more_than_one_statement, sql_text
from playlist_tools.errors import FrameError, first_line, one_line
from playlist_tools.frames._arrow import prefetched
from playlist_tools.frames._chunks import server_chunks
from playlist_tools.frames._dates import check_years, integer_sql
from playlist_tools.frames._driver import ERRORS, IDENTIFIER, PYFORMAT, Driver, driver_connection, quote, table_name
from playlist_tools.frames._params import inlined
from playlist_tools.frames._types import NUMERIC_OID, Query, arrow_of_oid, exact_decimal

_DOLLAR = pg_dialect.dialect(paramstyle="numeric_dollar")  # ADBC's
_PARALLEL_MIN_PAGES = 4096  # 32 MB: below that, extra connections cost more than they save
_BIGINT_DIGITS = 18  # every integer of 18 digits fits an int8
_DRIVER_BATCH_ROWS = 100_000  # rows built into one Arrow batch through a caller's connection, so memory stays bounded
_MESSAGE_CHARS = 120  # of a server's message, which may quote a parameter's whole value



def whole_number(name: str, value: object, unit: str) -> int:
    """``value`` as a count of ``unit``, 1 or more; anything else is a one-line error naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise FrameError(f"{name}={value!r:.80} must be a whole number of {unit}, 1 or more; e.g. {name}=10_000")
    return int(value)


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
    wire = arrow_of_oid(oid)
    if wire is not None:
        # Text becomes large_string, pandas' own string storage, so that pandas need not convert it again.
        return _Column(name, ref, wire, pa.large_string() if wire == pa.string() else wire)
    exact = exact_decimal(precision, scale) if oid == NUMERIC_OID else None
    if exact is not None:
        if exact.precision <= _BIGINT_DIGITS:  # the unscaled value fits a bigint, which decodes ~3x faster than numeric
            return _Column(name, f"({ref} * 1{'0' * exact.scale})::int8", pa.int64(), exact)
        return _Column(name, f"{ref}::text", pa.string(), exact)
    return _Column(name, f"{ref}::text", pa.string(), pa.large_string(), decimals=oid == NUMERIC_OID)


@dataclass(frozen=True)
class _Source:
    statement: sa.ClauseElement | None  # a query, or
    table: str | None  # a whole table, quoted
    literal: str | None = None  # the statement with its parameters as typed literals, in $n style

    @classmethod
    def of(cls, query: Query, params: Mapping[str, Any] | None) -> _Source:
        if isinstance(getattr(query, "__table__", query), sa.Table) or (
            isinstance(query, str) and IDENTIFIER.fullmatch(query.strip())
        ):
            return cls(None, table_name(query.strip() if isinstance(query, str) else query))  # type: ignore[arg-type]
        if params is not None and not isinstance(params, Mapping):
            raise FrameError(f"params={params!r:.80} must map placeholder names to values, e.g. params={{'g': 'Jazz'}}")
        statement = sa.text(sql_text(query)) if isinstance(query, str) else query
        if not isinstance(statement, (sa.TextClause, sa.Select)):
            raise FrameError(f"cannot read {query!r:.80}; pass SQL text, a select(), a table name or a model")
        if isinstance(statement, sa.TextClause):
            if more_than_one_statement(statement.text):
                raise FrameError(f"cannot read query {statement.text[:80]!r}: it holds more than one statement; "
                                 "pass one SELECT query (run the others with connection.exec_driver_sql)")
            # text() would quietly send NULL for a placeholder without a value.
            # A value given by .bindparams(a=3) counts; a bare :a (required) needs params.
            missing = [name for name, bind in statement.compile().binds.items()
                       if bind.required and name not in (params or {})]
            if missing:
                raise FrameError(f"query {str(statement)[:80]!r} has no value for :{missing[0]}; "
                                 f"pass params={{{missing[0]!r}: ...}}")
        return cls(statement.params(**params) if params else statement, None)

    def sql(self, dialect: sa.Dialect) -> tuple[str, Any]:
        """The source for ``FROM``, with its parameters in ``dialect``'s style."""
        if self.statement is None:
            return str(self.table), {} if dialect is PYFORMAT else []
        if self.literal is not None:  # no parameters: None, so that psycopg reads a % in a value as it is
            return f"(\n{self.literal}\n)", None if dialect is PYFORMAT else []
        compiled, params = self._compiled(dialect)
        # The newlines keep a trailing "--" comment of the query from eating our closing parenthesis.
        return f"(\n{compiled}\n)", params

    def _compiled(self, dialect: sa.Dialect) -> tuple[str, Any]:
        compiled = self.statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})  # type: ignore[union-attr]
        params = compiled.params
        if dialect is PYFORMAT:
            return str(compiled), dict(params)
        # An int beyond int8 goes as numeric, as psycopg sends it; ADBC would raise OverflowError.
        args = [decimal.Decimal(v) if isinstance(v, int) and not -(2**63) <= v < 2**63 else v
                for v in (params[k] for k in compiled.positiontup or ())]
        return str(compiled), args

    def with_literals(self, conn: Driver) -> _Source:
        """This query with its parameters as ADBC binds them written in as typed literals (``_params``); else
        itself. Its ``COPY`` then streams the rows: bound, ADBC loads the whole result before the first row."""
        if self.statement is None:
            return self
        literal = inlined(conn, *self._compiled(_DOLLAR))
        return self if literal is None else replace(self, literal=literal)


def _select(source: str, columns: list[_Column], where: str = "") -> str:
    # Positional aliases c0..cn: the query's own column names may repeat or need quoting.
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    exprs = ", ".join(f"{c.expr} AS {quote(c.name)}" for c in columns)
    return f"SELECT {exprs} FROM {source} AS _q({aliases}){where}"


def _describe(conn: Driver, source: _Source) -> tuple[list[_Column], int]:
    """The result's columns, from the server without running the query, and the table's pages."""
    sql, params = source.sql(PYFORMAT)
    try:
        # transaction(): a savepoint inside a caller's transaction, so a bad query doesn't doom it.
        # A second statement in text is refused in _Source.of (psycopg2 would run it); psycopg's binary cursor is
        # the extended protocol, which refuses one too.
        with conn.transaction(), conn.cursor() as cursor:
            description = conn.described(conn.execute(cursor, f"SELECT * FROM {sql} AS _q LIMIT 0", params))
            pages = 0
            if source.table is not None:
                size = "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int"
                pages = int(conn.execute(cursor, size, [source.table]).fetchone()[0])
    except ERRORS as err:
        what = f"table {source.table}" if source.table else f"query {str(source.statement)[:80]!r}"
        hint = "; write CAST(:name AS type), not :name::type" if re.search(r":\w+::", str(source.statement)) else ""
        raise FrameError(
            f"cannot read {what}: {one_line(first_line(err), _MESSAGE_CHARS)}{hint}; pass an existing table or model, "
            "or one SELECT query with :name placeholders and params="
        ) from err
    return [_column(i, *d) for i, d in enumerate(description)], pages


# -- fetching it -------------------------------------------------------------------------


def _adbc(uri: str, sql: str, params: list[Any], snapshot: str | None = None) -> Iterator[pa.RecordBatch]:
    """The rows as ADBC decodes them (wire types); :func:`_finish` makes them the result's."""
    import adbc_driver_postgresql.dbapi as adbc  # here, not at the top: its import takes 0.3 s

    # autocommit: a notebook kernel must not sit "idle in transaction" afterwards.
    with adbc.connect(uri, autocommit=True) as conn, conn.cursor() as cursor:
        if snapshot is not None:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        cursor.execute(sql, params or None)
        yield from cursor.fetch_record_batch()


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
            parts_read = pool.map(
                lambda w: [_finish(b, columns) for b in _adbc(uri, _select(table, columns, w), [], snapshot)], wheres)
            batches = [batch for part in parts_read for batch in part]
        cursor.execute("COMMIT")
    yield from batches


def _driver_rows(
    conn: Driver, sql: str, params: dict[str, Any], columns: list[_Column], rows: int
) -> Iterator[pa.RecordBatch]:
    """The rows through the caller's connection, inside its transaction, as batches of ``rows`` rows (``_chunks``)."""
    schema = _schema(columns, "wire")
    for chunk in server_chunks(conn, sql, params, rows):
        by_column = zip(*chunk, strict=True)
        arrays = [pa.array(values, spec.wire) for values, spec in zip(by_column, columns, strict=True)]
        yield _finish(pa.RecordBatch.from_arrays(arrays, schema=schema), columns)


def _schema(columns: list[_Column], which: str = "final") -> pa.Schema:
    return pa.schema([pa.field(c.name, getattr(c, which)) for c in columns])


def _nan_in_exact(name: str, numeric: pa.DataType) -> FrameError:
    """A ``numeric(p, s)`` column holds ``NaN``, which its exact decimal dtype cannot (nor pandas' decimals)."""
    column = quote(name)
    return FrameError(
        f"column {name!r} has numeric 'NaN', which its dtype {numeric} cannot hold (an exact decimal is finite); "
        f"cast it in the query, e.g. {column}::float8 (NaN stays NaN), {column}::text, or {column}::numeric "
        "(Decimal objects)"
    )


def _scaled(columns: list[_Column]) -> list[_Column]:
    """The ``numeric(p, s)`` columns that travel as scaled bigints: the server cannot scale a NaN."""
    return [c for c in columns if pa.types.is_integer(c.wire) and pa.types.is_decimal(c.final)]


def _finish(batch: pa.RecordBatch, columns: list[_Column]) -> pa.RecordBatch:
    """Wire types to final types; a scaled bigint is reinterpreted as its decimal, no arithmetic."""
    arrays = []
    for array, spec in zip(batch.columns, columns, strict=True):
        if pa.types.is_integer(spec.wire) and pa.types.is_decimal(spec.final):
            array = pc.cast(array, pa.decimal128(38, 0)).view(spec.final)
        elif pa.types.is_timestamp(spec.wire) or pa.types.is_date(spec.wire):
            check_years(array, spec.name)
        elif pa.types.is_decimal(spec.final) and pc.any(pc.equal(array, "NaN")).as_py():
            raise _nan_in_exact(spec.name, spec.final)  # numeric(p, s) holds no infinity; NaN it does
        arrays.append(array.cast(spec.final))
    return pa.RecordBatch.from_arrays(arrays, schema=_schema(columns))


def _tables_of(batches: Iterator[pa.RecordBatch], schema: pa.Schema, rows: int) -> Iterator[pa.Table]:
    """The batches regrouped as tables of exactly ``rows`` rows, the last one shorter; at least one."""
    pending: list[pa.RecordBatch] = []
    sent = False
    for batch in batches:
        pending.append(batch)
        whole = pa.Table.from_batches(pending, schema=schema)
        while whole.num_rows >= rows:
            yield whole.slice(0, rows)
            whole, sent = whole.slice(rows), True
        pending = whole.to_batches()
    rest = pa.Table.from_batches(pending, schema=schema)
    if rest.num_rows or not sent:
        yield rest


def arrow_tables(
    query: Query, con: db.Connectable, params: Mapping[str, Any] | None, rows: int | None, parts: int,
    large_text: bool = True,
) -> Iterator[tuple[pa.Table, list[int]]]:
    """The result as Arrow tables of final types, ``rows`` rows each (None: one table of all rows).

    There is at least one table, maybe empty, each with the positions of its
    unconstrained ``numeric`` columns (their text). ``parts`` > 1 lets a big
    whole table be read over that many connections at once. Text is
    ``large_string`` (what pandas' ``string`` dtype stores) unless
    ``large_text`` is False: then it stays ``string``, as it arrives.
    """
    source = _Source.of(query, params)
    with contextlib.ExitStack() as stack:
        conn, uri = stack.enter_context(driver_connection(con))
        if uri is None and not isinstance(con, sa.Connection):
            # Behind a pooler our own connection carries the rows: one transaction for the whole read, so the
            # cursor and every fetch stay on one server connection (PgBouncer may switch between transactions).
            stack.enter_context(conn.transaction())
        columns, pages = _describe(conn, source)
        inline = source.with_literals(conn) if uri is not None else source
        if inline is not source and _describe(conn, inline)[0] == columns:  # the very columns the bound query has
            source = inline
        if not large_text:
            columns = [replace(c, final=c.wire) if c.final == pa.large_string() else c for c in columns]
        decimals = [i for i, spec in enumerate(columns) if spec.decimals]
        if uri is None:
            sql, args = source.sql(PYFORMAT)
            batch_rows = _DRIVER_BATCH_ROWS if rows is None else min(rows, _DRIVER_BATCH_ROWS)
            # psycopg2 has no binary results: its dates and timestamps travel as the integers psycopg's loaders make
            wired = columns if conn.psycopg3 else [replace(c, expr=integer_sql(c.expr, c.wire)) for c in columns]
            batches = _driver_rows(conn, _select(sql, wired), args, columns, batch_rows)
        elif source.table is not None and parts > 1 and pages >= _PARALLEL_MIN_PAGES:
            batches = _adbc_parallel(uri, source.table, columns, pages, parts)
        else:
            sql, args = source.sql(_DOLLAR)
            # Checked here while the next batch travels (ADBC decodes with the GIL released).
            batches = (_finish(b, columns) for b in prefetched(_adbc(uri, _select(sql, columns), args)))
        try:
            if rows is None:
                nonempty = [batch for batch in batches if batch.num_rows]  # an empty batch would be an empty chunk
                yield pa.Table.from_batches(nonempty, schema=_schema(columns)), decimals
            else:
                for table in _tables_of(batches, _schema(columns), rows):
                    yield table, decimals
        # pyarrow reports ADBC's errors in the middle of a stream as OSError.
        except (*ERRORS, adbc_driver_manager.Error, OSError, pa.ArrowException) as err:
            reason = one_line(first_line(err), _MESSAGE_CHARS)
            scaled = _scaled(columns)
            if "cannot convert NaN to bigint" in reason and scaled:
                if len(scaled) == 1:
                    raise _nan_in_exact(scaled[0].name, scaled[0].final) from err
                names = ", ".join(repr(c.name) for c in scaled)
                raise FrameError(f"one of the columns {names} has numeric 'NaN', which an exact decimal dtype cannot "
                                 "hold; cast it in the query, e.g. name::float8, name::text or name::numeric "
                                 "(Decimal objects)") from err
            raise FrameError(f"reading the result failed: {reason}; nothing was changed") from err

