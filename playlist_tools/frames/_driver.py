"""What reading and writing frames share: driver connections and quoted identifiers.

Private to :mod:`playlist_tools.frames`; its ``_read`` and ``_write``
modules build on it. Frames talk to PostgreSQL through psycopg 3
(``COPY``) and ADBC, so they need the driver connection under a SQLAlchemy
one, or a connection of their own.

Where the connections come from: a caller's ``Connection`` is used as it
is; an ``Engine`` lends one of its own pooled connections, so its
``connect_args``, event listeners and password apply; a URL gets a psycopg
connection of ours. ADBC then connects with :func:`session_conninfo` of
that live connection: the same server, database, user and password, and
the session's own settings (``options``, ``SET`` by a listener, ``SET
ROLE``) as startup options, so it sees the same ``search_path``, role and
time zone. Session state that is not a setting (temporary tables, prepared
statements) does not carry over.

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
from psycopg.conninfo import make_conninfo
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from sqlalchemy.engine import URL

from playlist_tools import db
from playlist_tools.errors import FrameError

# A bare name, optionally schema-qualified: what a string must be to name a table (which we then quote).
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?")
PYFORMAT = pg_dialect.dialect()  # psycopg's placeholders
quote = PYFORMAT.identifier_preparer.quote

# The settings of a session that a new connection would not have by itself, in the order they must be set:
# a SET SESSION AUTHORIZATION first (it resets the role), then options and SETs, then SET ROLE. client_encoding
# stays ADBC's own (it decodes text as UTF-8); application_name travels as a connection parameter.
_SESSION_SETTINGS = """
SELECT 0, 'session_authorization', session_user::text WHERE session_user <> %s
UNION ALL SELECT 1, name, current_setting(name) FROM pg_settings
    WHERE source IN ('client', 'session') AND name NOT IN ('application_name', 'client_encoding')
UNION ALL SELECT 2, 'role', current_setting('role') WHERE current_setting('role') <> 'none'
ORDER BY 1
"""


def table_name(table: str | sa.Table | type) -> str:
    """A table given by name, ``Table`` or model, quoted; anything else is refused."""
    table = getattr(table, "__table__", table)
    if isinstance(table, sa.Table):
        return ".".join(quote(part) for part in filter(None, (table.schema, table.name)))
    if not IDENTIFIER.fullmatch(str(table)):
        raise FrameError(
            f"table name {str(table)[:80]!r} is not a plain identifier; "
            "pass the name as it is in the database, e.g. 'songs'"
        )
    return ".".join(quote(part) for part in str(table).split("."))


def driver(con: sa.Connection) -> psycopg.Connection:
    """The psycopg connection under a SQLAlchemy one; other drivers are refused."""
    conn = con.connection.driver_connection
    if not isinstance(conn, psycopg.Connection):
        raise FrameError(
            f"the connection's driver is {con.dialect.driver!r}; frames needs psycopg 3: "
            "make the engine from a postgresql:// or postgresql+psycopg:// URL"
        )
    return conn


def url_conninfo(url: URL) -> str:
    """``url`` as a libpq ``key=value`` string, every value quoted, so any password works.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> print(url_conninfo(sa.make_url("postgresql://ann:a%20b'c@/music?host=/run/pg")))
    host=/run/pg user=ann password='a b\\'c' dbname=music application_name=playlist-tools
    """
    parts = {"host": url.host, "port": None if url.port is None else str(url.port), "user": url.username,
             "password": url.password, "dbname": url.database, "application_name": db.APPLICATION_NAME}
    # The query wins, as in libpq's own URIs: ?host=/socket/dir names where the server listens.
    parts.update({key: ",".join(value) if isinstance(value, tuple) else value for key, value in url.query.items()})
    return make_conninfo(**parts)


def _option(name: str, value: str) -> str:
    # libpq splits options at white space; a backslash keeps the next character in the value.
    return f"-c {name}=" + re.sub(r"([\\\s])", r"\\\1", value)


def session_conninfo(conn: psycopg.Connection) -> str:
    """A libpq ``key=value`` string for a new connection that sees what ``conn``'s session sees."""
    params = conn.info.get_parameters()
    params.pop("options", None)  # the settings below include what it set
    with conn.transaction(), conn.cursor() as cursor:  # its own transaction: no idle one left open
        settings = cursor.execute(_SESSION_SETTINGS, [conn.info.user]).fetchall()
    if "hostaddr" in params:
        params["hostaddr"] = conn.info.hostaddr
    # The server it is on, not a list to pick from again: a new connection might pick another.
    params.update(host=conn.info.host, port=str(conn.info.port), dbname=conn.info.dbname, user=conn.info.user,
                  password=conn.info.password or None, options=" ".join(_option(n, v) for _, n, v in settings))
    return make_conninfo(**params)


@contextlib.contextmanager
def psycopg_connection(con: db.Connectable) -> Iterator[tuple[psycopg.Connection, str | None]]:
    """A psycopg connection, and the conninfo for ADBC: None when it is the caller's connection."""
    if isinstance(con, sa.Connection):
        yield driver(con), None
        return
    if isinstance(con, sa.Engine):
        try:
            lent = con.connect()
        except sa.exc.DBAPIError as err:  # an engine of ours says this itself; sa.create_engine's do not
            raise db.unavailable(con.url, err.orig or err) from err
        with lent:
            conn = driver(lent)
            yield conn, session_conninfo(conn)
        return
    url = db.resolve_url(con)
    try:
        own = psycopg.connect(url_conninfo(url), autocommit=True, connect_timeout=10)
    except psycopg.Error as err:
        raise db.unavailable(url, err) from err
    with own:
        yield own, session_conninfo(own)
