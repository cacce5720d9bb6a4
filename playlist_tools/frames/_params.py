"""Bound parameters as typed literals, so that a query with ``params=`` still travels through ADBC's ``COPY``.

Private to :mod:`playlist_tools.frames`; its ``_read`` module calls
:func:`inlined`. ADBC reads a result through binary ``COPY`` only when no
parameter is bound (with one it loads the whole result row by row, in
libpq's memory), and ``COPY`` takes no parameters. So each ``$n`` becomes
``CAST(<literal> AS <type>)``: the type is the very one the bound path
gives the parameter (ADBC sends ``int`` as ``bigint``, ``str`` as
``text``, ...; for ``None`` the server infers it), the literal is the
value's text by psycopg's own dumpers, quoted by libpq
(``PQescapeLiteral``). Before the rows are read the server confirms it:
the statement as ADBC binds it and as inlined must describe the same
columns (names, types, modifiers), the inlined one with no parameter
left; ``_read`` then also wants the very columns of its bound describe
(psycopg types ``5`` as smallint there, so ``SELECT :n`` stays bound).
Anything else (a value of another type, text with NUL, a psycopg2
connection, ``standard_conforming_strings`` off, a statement the server
cannot prepare) answers None: the query then goes bound, as before.

Examples
--------
>>> from playlist_tools.frames._params import bound_type
>>> bound_type(5), bound_type("Rock"), bound_type(None), bound_type(b"x")
((20, 'pg_catalog.int8'), (25, 'pg_catalog.text'), (0, None), None)
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Sequence
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import pq, sql
from psycopg.adapt import PyFormat, Transformer

from playlist_tools._sql_text import substitute
from playlist_tools.frames._driver import Driver

# Python type -> (OID, name) of the type ADBC binds it as (its Arrow type's); names qualified, so no type of the
# search_path can stand in. Exact types: bool is an int and datetime a date, and subclasses may dump differently.
_BOUND: dict[type, tuple[int, str]] = {
    bool: (16, "pg_catalog.bool"),
    int: (20, "pg_catalog.int8"),
    float: (701, "pg_catalog.float8"),
    decimal.Decimal: (1700, "pg_catalog.numeric"),
    str: (25, "pg_catalog.text"),
    datetime.date: (1082, "pg_catalog.date"),
}
_TIMESTAMP = (1114, "pg_catalog.timestamp")
_TIMESTAMPTZ = (1184, "pg_catalog.timestamptz")
_UNKNOWN = (0, None)  # None: ADBC leaves the type to the server, which infers it from the context


class _Refused(Exception):
    """The server would not prepare or describe a statement: the bound path will report why."""


def bound_type(value: object) -> tuple[int, str | None] | None:
    """The OID and name of the type the bound path gives ``value``; None for a value this module leaves bound."""
    if value is None:
        return _UNKNOWN
    if isinstance(value, str) and "\x00" in value:  # refused when bound too: let that path say so
        return None
    try:
        pa.scalar(value)  # what ADBC makes of it before it binds it; where that fails, the bound path says so
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        return None
    if type(value) is datetime.datetime:
        return _TIMESTAMP if value.tzinfo is None else _TIMESTAMPTZ
    return _BOUND.get(type(value))


def _described(pgconn: pq.abc.PGconn, statement: str, types: Sequence[int] | None) -> pq.abc.PGresult:
    """The server's description of ``statement`` prepared as the unnamed statement (psycopg uses no other)."""
    prepared = pgconn.prepare(b"", statement.encode(), types)
    if prepared.status != pq.ExecStatus.COMMAND_OK:
        raise _Refused
    described = pgconn.describe_prepared(b"")
    if described.status != pq.ExecStatus.COMMAND_OK:  # pragma: no cover - it was just prepared
        raise _Refused
    return described


def _columns(described: pq.abc.PGresult) -> list[tuple[bytes | None, int, int]]:
    return [(described.fname(i), described.ftype(i), described.fmod(i)) for i in range(described.nfields)]


def _literal(conn: psycopg.Connection[Any], value: object, type_name: str) -> str:
    """``value`` as ``CAST('<its text>' AS <type>)``: the only way a value enters SQL text here."""
    if value is None:
        return f"CAST(NULL AS {type_name})"
    if isinstance(value, decimal.Decimal):  # ADBC sends the fewest decimals that hold it: 1.50 as 1.5, and so do we
        value = value.normalize(decimal.Context(prec=max(1, len(value.as_tuple().digits))))  # exact, no rounding
    text = bytes(Transformer.from_context(conn).get_dumper(value, PyFormat.TEXT).dump(value)).decode()
    return f"CAST({sql.Literal(text).as_string(conn)} AS {type_name})"  # PQescapeLiteral: E'' where a \ is


def inlined(conn: Driver, statement: str, args: Sequence[Any]) -> str | None:
    """``statement`` (``$n`` placeholders) with ``args`` as typed literals; None where that is not the same query.

    The same query means: the server describes the inlined statement with
    the same columns as the statement with the parameters bound the way
    ADBC binds them, and sees no parameter left in it.
    """
    if not conn.psycopg3 or not args:
        return None
    pg: psycopg.Connection[Any] = conn.conn
    # A connection of another encoding would quote for that one, ADBC reads UTF-8; with standard_conforming_strings
    # off a backslash in a plain '...' string escapes, which frames' tokenizer of SQL text does not follow.
    if pg.info.encoding != "utf-8" or pg.info.parameter_status("standard_conforming_strings") != "on":
        return None
    types = [bound_type(value) for value in args]
    if any(t is None for t in types):
        return None
    try:
        # transaction(): inside a caller's transaction a refused statement must not doom it (a savepoint).
        with conn.transaction():
            bound = _described(pg.pgconn, statement, [oid for oid, _ in types])  # type: ignore[misc]
            oids = [bound.param_type(i) for i in range(bound.nparams)]
            if len(oids) != len(args):  # a placeholder the statement does not use: leave it to the bound path
                return None
            names = _type_names(pg, oids, [name for _, name in types])  # type: ignore[misc]
            text = substitute(statement, [_literal(pg, v, n) for v, n in zip(args, names, strict=True)])
            if text is None:
                return None
            same = _described(pg.pgconn, text, None)
    except (_Refused, psycopg.Error, UnicodeError, ValueError):
        return None
    return None if same.nparams or _columns(same) != _columns(bound) else text


def _type_names(conn: psycopg.Connection[Any], oids: list[int], names: list[str | None]) -> list[str]:
    """Each parameter's type name: ours, or for a ``None`` the server's name of the type it inferred."""
    inferred = [oid for oid, name in zip(oids, names, strict=True) if name is None]
    if not inferred:
        return [str(name) for name in names]
    with conn.cursor() as cursor:
        cursor.execute("SELECT t, format_type(t, NULL) FROM unnest(%s::oid[]) AS t", [inferred])
        of_oid = dict(cursor.fetchall())
    return [of_oid[oid] if name is None else name for oid, name in zip(oids, names, strict=True)]
