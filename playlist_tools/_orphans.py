"""Workspaces and replay copies of killed kernels: who owns each, and the sweep that drops those whose owner is gone.

Private to :mod:`playlist_tools.workspace`, which re-exports :func:`sweep`
and :data:`OWNER_FILE` and describes the rule; ``migrations._replay``
records its copies' owner and sweeps too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from playlist_tools import db

OWNER_FILE = "playlist-tools-owner.json"
"""In a workspace's folder: who made it (``host``, ``pid``, ``started``), so :func:`sweep` can tell it was abandoned."""

FOLDER_PREFIX = "playlist-tools-workspace-"
DATABASE_PREFIX = "pt_workspace"
COPY_PREFIXES = ("playlist_tools_replay", "playlist_tools_impact", "playlist_tools_affected")
"""The throwaway copies of a schema cache (``migrations._replay.replayed``): swept like workspaces."""
_PREFIXES = "|".join((DATABASE_PREFIX, *COPY_PREFIXES))
_DATABASE_NAME = re.compile(rf"(?:{_PREFIXES})_[0-9a-f]{{16}}")  # what db.fresh_database makes with them
_COMMENT_PREFIX = "playlist-tools workspace owner "
_log = logging.getLogger(__name__)


def this_process() -> dict[str, object]:
    """This process as a workspace's owner: host, pid, and its start time, which a reused pid does not share."""
    process = psutil.Process()
    return {"host": socket.gethostname(), "pid": process.pid, "started": process.create_time()}


def _comment(owner: dict[str, object]) -> str:
    return _COMMENT_PREFIX + json.dumps(owner, sort_keys=True)


def _owner_gone(owner: object) -> bool:
    """Whether ``owner`` was a process of this host that no longer runs.

    A record we cannot read, or one from another host, is never gone: we
    cannot know, so its workspace is left alone.

    Examples
    --------
    >>> _owner_gone(this_process()), _owner_gone({**this_process(), "host": "elsewhere.invalid"}), _owner_gone("junk")
    (False, False, False)
    """
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False
    pid, started = owner.get("pid"), owner.get("started")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 or not isinstance(started, (int, float)):
        return False
    try:
        process = psutil.Process(pid)
        # A second of slack: the start time is computed from the boot time, which clock adjustments move.
        return process.status() == psutil.STATUS_ZOMBIE or abs(process.create_time() - started) > 1
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


@contextlib.contextmanager
def admin(url: str | URL | None) -> Iterator[Connection]:
    """An autocommit connection to the server of ``url``, for CREATE/DROP/COMMENT ON DATABASE."""
    engine = db.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def record_owner(connection: Connection, database: str, owner: dict[str, object] | None = None) -> None:
    """Name ``owner`` (default: this process) in ``database``'s ``COMMENT``, for :func:`sweep`."""
    owner = this_process() if owner is None else owner
    # COMMENT takes no bound parameters; the server quotes both parts (%I, %L).
    statement = connection.execute(
        sa.text("SELECT format('COMMENT ON DATABASE %I IS %L', CAST(:name AS text), CAST(:comment AS text))"),
        {"name": database, "comment": _comment(owner)},
    ).scalar_one()
    connection.execution_options(no_parameters=True).exec_driver_sql(statement)


def sweep(url: str | URL | None = None) -> list[str]:
    """Drop the workspaces whose owner process is gone: databases on ``url``'s server, and scratch folders.

    Only what a workspace (or a replay's throwaway copy) made and recorded
    an owner for is touched: a ``pt_workspace_*`` database, or a copy named
    with one of :data:`COPY_PREFIXES`, owned by the current database user whose
    ``COMMENT`` names the owner, a ``playlist-tools-workspace-*`` folder in
    the temp directory, owned by this OS user, with :data:`OWNER_FILE` in
    it. It goes only when that owner was a process of this host that no
    longer runs (see the module docstring). :meth:`Workspace.open` calls
    this, and so does each new replay copy (``migrations._replay.replayed``).

    Returns the databases dropped and the folders deleted.
    """
    removed: list[str] = []
    for folder in sorted(Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*")):
        record = folder / OWNER_FILE
        try:
            if folder.is_symlink() or not record.is_file() or folder.stat().st_uid != os.getuid():
                continue
            owner = json.loads(record.read_text())
        except (OSError, ValueError):
            continue  # gone meanwhile (another sweep), or not a record of ours
        if _owner_gone(owner):
            shutil.rmtree(folder, ignore_errors=True)  # another sweep may be deleting it too
            removed.append(str(folder))
    with admin(url) as connection:
        found = connection.execute(sa.text(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname ~ :pattern AND pg_get_userbyid(datdba) = current_user ORDER BY datname"
        ), {"pattern": f"^({_PREFIXES})_"}).all()
        for name, comment in found:
            if not _DATABASE_NAME.fullmatch(name) or not (comment or "").startswith(_COMMENT_PREFIX):
                continue
            with contextlib.suppress(ValueError):
                owner = None  # unreadable: never gone
                owner = json.loads(comment[len(_COMMENT_PREFIX):])
            if not _owner_gone(owner):
                continue
            try:
                db.drop_database(connection.engine, name)  # FORCE, or a plain DROP where autovacuum is in the way
            except sa.exc.DBAPIError as err:  # housekeeping must not stop the workspace being opened
                _log.warning("could not drop abandoned database %s: %s", name, err.orig)
                continue
            removed.append(name)
    return removed
