"""What reading and writing frames share: driver connections and quoted identifiers.

Private to :mod:`playlist_tools.frames`; its ``_read`` and ``_write``
modules build on it. Frames talk to PostgreSQL through ADBC and the
driver under a SQLAlchemy connection, psycopg 3 or psycopg2, or through a
psycopg connection of their own. :class:`Driver` holds the few things
the two drivers do differently (parameters, transactions,
``COPY``, error codes, connection parameters), so reading and writing are
one code path each.

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
from typing import Any

import psycopg
import psycopg2
import psycopg2.extensions
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from sqlalchemy.engine import URL

from playlist_tools import db
from playlist_tools.errors import FrameError

# A bare name, optionally schema-qualified: what a string must be to name a table (which we then quote).
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?")
PYFORMAT = pg_dialect.dialect()  # psycopg's placeholders
quote = PYFORMAT.identifier_preparer.quote
ERRORS = (psycopg.Error, psycopg2.Error)  # what either driver raises
_NO_TYPMOD = 65535
_BROKEN = 2  # psycopg2's connection.closed once the connection was lost (1: closed by its owner)

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


class Driver:
    """The few things psycopg 3 and psycopg2 do differently, behind one face; the rest of frames is one code path.

    Executing with ``pyformat`` parameters, a transaction (a savepoint
    inside one), ``COPY ... FROM STDIN``, the
    SQLSTATE of an error and the connection's own parameters.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.psycopg3 = isinstance(conn, psycopg.Connection)

    @property
    def broken(self) -> bool:
        """Whether the connection was lost; ask before our own connection is closed on the way out.

        psycopg 3 may report a socket closed under a COPY as ``closed`` without ``broken``.
        """
        return bool(self.conn.broken or self.conn.closed) if self.psycopg3 else self.conn.closed == _BROKEN

    @property
    def autocommit(self) -> bool:
        return bool(self.conn.autocommit)

    @property
    def idle(self) -> bool:
        """No transaction open on the connection."""
        return (self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE if self.psycopg3
                else self.conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE)

    def begin_implicitly(self) -> None:
        """Open the driver's own transaction now, as the caller's next statement would (the DB-API begins one
        implicitly): savepoints of ours then nest inside it rather than beginning and committing one of theirs."""
        if self.idle and not self.autocommit:
            with self.conn.cursor() as cursor:
                cursor.execute("SELECT")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction of ours, or a savepoint inside the one already open; rolled back on an error."""
        if self.psycopg3:
            with self.conn.transaction():
                yield
            return
        conn = self.conn
        outer = conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE
        if outer or conn.autocommit:  # else psycopg2 begins one itself
            with conn.cursor() as cursor:
                cursor.execute("SAVEPOINT _frames" if outer else "BEGIN")
        try:
            yield
        except BaseException:
            if outer:  # also undoes an error: the caller's transaction goes on
                with contextlib.suppress(psycopg2.Error), conn.cursor() as cursor:
                    cursor.execute("ROLLBACK TO SAVEPOINT _frames; RELEASE SAVEPOINT _frames")
            elif not conn.closed:
                self._end("ROLLBACK")
            raise
        if outer:
            with conn.cursor() as cursor:
                cursor.execute("RELEASE SAVEPOINT _frames")
        else:
            self._end("COMMIT")

    def _end(self, verb: str) -> None:
        if self.conn.autocommit:  # psycopg2's commit() and rollback() do nothing then
            with self.conn.cursor() as cursor:
                cursor.execute(verb)
        else:
            (self.conn.commit if verb == "COMMIT" else self.conn.rollback)()

    def cursor(self) -> Any:
        """A cursor for ``execute``; psycopg's in binary, the extended protocol that refuses two statements."""
        return self.conn.cursor(binary=True) if self.psycopg3 else self.conn.cursor()

    @staticmethod
    def execute(cursor: Any, sql: str, params: Any = None) -> Any:
        """``cursor.execute`` that returns the cursor, as psycopg's does and psycopg2's does not."""
        cursor.execute(sql, params)
        return cursor

    @staticmethod
    def described(cursor: Any) -> list[tuple[str, int, int | None, int | None]]:
        """Name, type OID, precision and scale of each result column; no precision for a bare ``numeric``."""
        # psycopg2 reports a bare numeric's typmod -1 as precision and scale 65535; numeric(p, s) has p <= 1000.
        return [(d.name, d.type_code, *((None, None) if d.precision == _NO_TYPMOD else (d.precision, d.scale)))
                for d in cursor.description or []]

    def copy_in(self, cursor: Any, sql: str, parts: Iterator[Any]) -> None:
        """``COPY ... FROM STDIN`` fed with ``parts``, read as they are needed."""
        if self.psycopg3:
            with cursor.copy(sql) as copy:
                for part in parts:
                    copy.write(part)
            return
        cursor.copy_expert(sql, _Reader(parts), size=1 << 20)

    def parameters(self) -> dict[str, str]:
        """The connection's libpq parameters as it was opened (no password), then where it really is."""
        info = self.conn.info
        if self.psycopg3:
            params = info.get_parameters()
            if "hostaddr" in params:
                params["hostaddr"] = info.hostaddr
        else:  # psycopg2's dsn is what it was opened with, its password masked
            params = {k: v for k, v in conninfo_to_dict(self.conn.dsn).items() if k != "password"}
        params.pop("options", None)  # the session's settings include what it set
        # The server it is on, not a list to pick from again: a new connection might pick another.
        params.update(host=info.host, port=str(info.port), dbname=info.dbname, user=info.user)
        return {k: str(v) for k, v in params.items()} | ({"password": info.password} if info.password else {})


class _Reader:
    """A file for psycopg2's ``copy_expert``: each read is the next part, of whatever size (psycopg2 sends it whole)."""

    def __init__(self, parts: Iterator[Any]) -> None:
        self.parts = parts

    def read(self, size: int = -1) -> bytes:
        return bytes(next(self.parts, b""))


def driver(con: sa.Connection) -> Driver:
    """The driver connection under a SQLAlchemy one: psycopg 3 or psycopg2; other drivers are refused."""
    conn = con.connection.driver_connection
    if not isinstance(conn, (psycopg.Connection, psycopg2.extensions.connection)):
        raise FrameError(
            f"the connection's driver is {con.dialect.driver!r}; frames needs psycopg 3 or psycopg2: "
            "make the engine from a postgresql://, postgresql+psycopg:// or postgresql+psycopg2:// URL"
        )
    return Driver(conn)


def joined(con: sa.Connection) -> Driver:
    """The driver under a caller's Connection, inside the Connection's transaction: the caller commits.

    As SQLAlchemy 2's autobegin does on a Connection's first statement, a
    Connection not in a transaction begins one (``con.begin()``), which the
    caller then commits or rolls back. A Connection in ``AUTOCOMMIT``
    isolation has no transaction to join: each call is then one transaction
    of ours (:meth:`Driver.transaction`).
    """
    conn = driver(con)
    if not conn.autocommit:
        if not con.in_transaction():
            con.begin()
        conn.begin_implicitly()
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


def session_conninfo(conn: Driver) -> str | None:
    """A libpq ``key=value`` string for a new connection that sees what ``conn``'s session sees; None behind a pooler.

    On a direct connection the session's settings travel as start-up
    ``options``: those it was opened with, ``SET`` by an event listener,
    ``SET ROLE``. Nothing of ours is among them: we only ever set a setting
    for one transaction.

    Through a pooler (:func:`playlist_tools.db.behind_pooler`) it is None,
    and the rows come through ``conn`` itself, in one transaction. ADBC
    reads in autocommit mode, one round trip after another (prepare,
    describe, ``COPY``); PgBouncer in transaction mode may send each to
    another server connection, so under load reads fail (``unnamed prepared
    statement does not exist``) or come back garbled, measured with eight
    readers on a pool of five. The session's settings would not do either:
    they are those of a server connection other clients used before, and
    PgBouncer refuses ``options`` at start-up.
    """
    params = conn.parameters()
    with conn.transaction(), conn.cursor() as cursor:  # its own transaction: no idle one left open
        if db.behind_pooler(cursor):
            return None
        settings = conn.execute(cursor, _SESSION_SETTINGS, [params["user"]]).fetchall()
    return make_conninfo(**params, options=" ".join(_option(n, v) for _, n, v in settings))


@contextlib.contextmanager
def driver_connection(con: db.Connectable) -> Iterator[tuple[Driver, str | None]]:
    """A driver connection, and the conninfo for ADBC: None when it is the caller's connection."""
    if isinstance(con, sa.Connection):
        yield joined(con), None
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
        yield Driver(own), session_conninfo(Driver(own))
