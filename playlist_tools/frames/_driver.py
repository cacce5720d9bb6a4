"""What reading and writing frames share: driver connections and quoted identifiers.

Private to :mod:`playlist_tools.frames`; its ``_read`` and ``_write``
modules build on it. Frames talk to PostgreSQL through psycopg 3
(``COPY``) and ADBC, so they need the driver connection under a SQLAlchemy
one, or a connection of their own.

Examples
--------
>>> from playlist_tools.frames._driver import table_name
>>> table_name("public.songs"), table_name("Songs")
('public.songs', '"Songs"')
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from sqlalchemy.engine import URL

from playlist_tools import db
from playlist_tools.errors import FrameError

# A bare name, optionally schema-qualified: what a string must be to name a table (which we then quote).
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?")
PYFORMAT = pg_dialect.dialect()  # psycopg's placeholders
quote = PYFORMAT.identifier_preparer.quote


def table_name(table: str | sa.Table | type) -> str:
    """A table given by name, ``Table`` or model, quoted; anything else is refused."""
    table = getattr(table, "__table__", table)
    if isinstance(table, sa.Table):
        return ".".join(quote(part) for part in filter(None, (table.schema, table.name)))
    if not IDENTIFIER.fullmatch(str(table)):
        raise FrameError(
            f"table name {table!r} is not a plain identifier; pass the name as it is in the database, e.g. 'songs'"
        )
    return ".".join(quote(part) for part in str(table).split("."))


def libpq_uri(url: URL) -> str:
    """``url`` as libpq (psycopg, ADBC) reads it, naming our application to the server."""
    url = url.set(drivername="postgresql").update_query_dict({"application_name": db.APPLICATION_NAME})
    return url.render_as_string(hide_password=False)


def driver(con: sa.Connection) -> psycopg.Connection:
    """The psycopg connection under a SQLAlchemy one; other drivers are refused."""
    conn = con.connection.driver_connection
    if not isinstance(conn, psycopg.Connection):
        raise FrameError(
            f"the connection's driver is {con.dialect.driver!r}; frames needs psycopg 3: "
            "make the engine from a postgresql:// or postgresql+psycopg:// URL"
        )
    return conn


@contextlib.contextmanager
def psycopg_connection(con: db.Connectable) -> Iterator[tuple[psycopg.Connection, str | None]]:
    """A psycopg connection, and the URI for ADBC: None when it is the caller's connection."""
    if isinstance(con, sa.Connection):
        yield driver(con), None
        return
    url = con.url if isinstance(con, sa.Engine) else db.resolve_url(con)
    try:
        conn = psycopg.connect(libpq_uri(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as err:
        raise db.unavailable(url, err) from err
    with conn:
        yield conn, libpq_uri(url)
