"""Engines, connections and throwaway databases on the resolved server.

Private to :mod:`playlist_tools.db`, which re-exports everything here.
Every function says who closes what it opens; nothing is opened at import.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from playlist_tools.db._pooler import unprepared_behind_pooler
from playlist_tools.db._url import DATABASE_URL_ENV, mask_url, resolve_url, secret_values
from playlist_tools.errors import DatabaseUnavailableError, DatabaseURLError, first_line, sqlstate

APPLICATION_NAME = "playlist-tools"
"""``application_name`` of every connection we open, so ``pg_stat_activity`` can tell them apart."""

Connectable = str | URL | Engine | Connection | None
"""What every function taking ``con=`` accepts: a URL, an engine, a connection, or ``None``."""


def unavailable(url: str | URL, err: BaseException) -> DatabaseUnavailableError:
    """The one message for a server that does not answer: where, why, and what to check.

    Every path that connects (engines, frames' own driver connections,
    alembic's env.py) raises this, ``from err``. The URL is masked with
    :func:`mask_url`, and any secret of the URL that the driver's reason
    repeats is replaced by ``***`` too. The hint to unset ``DATABASE_URL``
    appears only when it is set (to something other than blanks, which
    :func:`resolve_url` ignores).

    Examples
    --------
    >>> print(unavailable("postgresql://ann:pw@db.example.org/music", OSError("Connection refused")))
    cannot connect to postgresql://ann:***@db.example.org/music: Connection refused;
    check that the server is running and the URL is right...
    """
    said = str(err)
    for secret in secret_values(url):  # before cutting to one line: a password may hold a newline
        said = said.replace(secret, "***")
    reason = first_line(err) if said == str(err) else said.strip().splitlines()[0]
    in_use = os.environ.get(DATABASE_URL_ENV, "").strip()
    hint = f", or unset {DATABASE_URL_ENV} to use the embedded server" if in_use else ""
    return DatabaseUnavailableError(
        f"cannot connect to {mask_url(url)}: {reason}; check that the server is running and the URL is right{hint}"
    )


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

    sa.event.listen(engine, "connect", unprepared_behind_pooler)

    @sa.event.listens_for(engine, "handle_error")
    def _explain_connect_failure(context: sa.engine.ExceptionContext) -> None:
        if context.connection is None and context.is_pre_ping is False:
            raise unavailable(resolved, context.original_exception) from context.original_exception

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
def fresh_database(
    url: str | URL | None = None, *, prefix: str = "playlist_tools", template: str | None = None
) -> Iterator[URL]:
    """Create a new, empty (or ``template``'s copy), uniquely named database, and drop it afterwards.

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
    template : str, optional
        Copy this database of the same server (``CREATE DATABASE ... TEMPLATE``)
        instead of the server's empty ``template1``; no one may be connected to it.

    Yields
    ------
    sqlalchemy.engine.URL
        The URL of the new database.

    Examples
    --------
    >>> with fresh_database() as scratch:
    ...     int(ping(scratch).split(".")[0]) >= 15  # any supported server
    True
    """
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,30}", prefix):
        raise ValueError(f"prefix {prefix!r} must be a lower-case identifier of at most 31 characters")
    if template is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", template):
        raise ValueError(f"template {template!r} must be a lower-case identifier of at most 63 characters")
    server = resolve_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            copy = f' TEMPLATE "{template}"' if template is not None else ""
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
        try:
            yield server.set(database=name)
        finally:
            drop_database(admin, name)
    finally:
        admin.dispose()


_DROP_RETRY_SECONDS = 10.0


def drop_database(admin: Engine, name: str) -> None:
    """Drop database ``name`` (one we created), disconnecting its sessions; ``admin`` is on the same server.

    ``WITH (FORCE)`` ends the sessions still connected. For a role that is
    not superuser it cannot end an autovacuum worker (PostgreSQL 15 says
    "must be a member of the role whose process is being terminated"),
    while a plain ``DROP DATABASE`` stops such a worker by itself but
    waits for no one else: so on that refusal both are tried in turn, for
    up to 10 s, until one drops it.
    """
    deadline = time.monotonic() + _DROP_RETRY_SECONDS
    force = True
    while True:
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"' + (" WITH (FORCE)" if force else ""))
            return
        except sa.exc.DBAPIError as err:
            state = sqlstate(err)
            # 42501: FORCE may not end an autovacuum worker; 55006: a plain DROP found a session still there.
            if state not in ("42501", "55006") or time.monotonic() > deadline:
                raise
            force = not force
            time.sleep(0.05)
