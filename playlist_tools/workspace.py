"""A scratch workspace: a fresh database and a private copy of the migrations.

Notebooks and tests write new revisions, branch and merge in here, never
in the repo. A workspace holds:

* a new, empty database on the usual server (``playlist_tools.db.fresh_database``);
* a temporary directory with a copy of ``alembic.ini`` and ``alembic/``
  (``env.py``, ``script.py.mako``) whose ``versions/`` holds the committed
  revisions up to ``upto`` only: ``"base"`` for an empty history, so a
  notebook can autogenerate "Initial migration" itself;
* ``config``, the Alembic config that ties the two together, for every
  function in :mod:`playlist_tools.migrations`.

``close()`` disposes of the workspace's engine, drops the database and
deletes the directory. Notebooks call it in their last cell; a
``weakref.finalize`` does it anyway when the workspace is garbage
collected or the kernel exits. Tests use ``with``.

A kernel that is killed (``SIGKILL``, a crash, "Restart kernel" on a hung
one) runs no finalizer, so every workspace records its owner: host name,
pid and the process's start time (a later process that reuses the pid
starts later), in :data:`OWNER_FILE` inside its folder and in the
database's ``COMMENT``. :meth:`Workspace.open` first calls :func:`sweep`,
which drops every ``pt_workspace_*`` database we own and deletes every
``playlist-tools-workspace-*`` folder in the temp directory whose recorded
owner was a process of *this* host that no longer runs. A workspace whose
owner is alive, runs on another host, or recorded no owner (made by an
older version, or by someone else) is left alone.

Examples
--------
>>> from playlist_tools import migrations
>>> with Workspace.open(upto="0001") as ws:
...     applied = migrations.upgrade(ws.config)
...     ws
Workspace(upto='0001', open)
>>> ws
Workspace(upto='0001', closed)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import tempfile
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, migrations
from playlist_tools._orphans import DATABASE_PREFIX, FOLDER_PREFIX, OWNER_FILE, admin, record_owner, sweep, this_process

__all__ = ["OWNER_FILE", "Workspace", "current_workspace", "sweep"]

_opened = itertools.count()  # which workspace is the newest: %sql and %alembic use it
_open: weakref.WeakSet[Workspace] = weakref.WeakSet()


def current_workspace() -> Workspace | None:
    """The workspace opened last and not closed yet, or ``None``: where ``%sql`` and ``%alembic`` go.

    Examples
    --------
    >>> with Workspace.open(upto="base") as ws:
    ...     current_workspace() is ws
    True
    >>> current_workspace() is ws
    False
    """
    alive = [ws for ws in list(_open) if not ws.closed]
    return max(alive, key=lambda ws: ws._serial, default=None)



class Workspace:
    """A fresh database plus a scratch copy of the migrations folder.

    Parameters
    ----------
    upto : str
        Copy the committed revisions up to and including this one:
        ``"head"`` (all), ``"base"`` (none), or an id such as ``"0001"``.
    metadata : sqlalchemy.MetaData, optional
        The models autogenerate compares with (``target_metadata``);
        default the package's models. Notebooks pass the models as the
        tutorial has them at their step.
    url : str, URL or None
        Any database on the server to use (see ``playlist_tools.db.resolve_url``).
    source : alembic.config.Config, optional
        The migrations to copy; default the repo's (``migrations.config()``).

    Attributes
    ----------
    url : sqlalchemy.engine.URL
        The workspace's own database.
    directory : pathlib.Path
        The temporary folder holding ``alembic.ini`` and ``alembic/``.
    versions : pathlib.Path
        ``directory / "alembic" / "versions"``, where new revisions are written.
    config : alembic.config.Config
        Pass it to every :mod:`playlist_tools.migrations` function.

    Raises
    ------
    RevisionError
        When ``upto`` names no committed revision; nothing is created then.

    Notes
    -----
    Opening one first runs :func:`sweep`: workspaces of killed processes
    on this host are dropped, never one whose owner runs or is elsewhere.
    """

    def __init__(
        self,
        upto: str = "head",
        *,
        metadata: sa.MetaData | None = None,
        url: str | URL | None = None,
        source: Config | None = None,
    ) -> None:
        source = source if source is not None else migrations.config()
        script = ScriptDirectory.from_config(source)
        # history() raises the one RevisionError for an unknown id; nothing is created yet.
        kept = [] if upto == "base" else migrations.history(source, f"base:{upto}", indicate_current=False)["rev"]
        sweep(url)
        owner = this_process()
        self.upto = upto
        self._stack = contextlib.ExitStack()
        # Registered before anything is created, so a failure below still cleans up.
        self._finalizer = weakref.finalize(self, self._stack.close)
        try:
            self.directory = Path(self._stack.enter_context(
                tempfile.TemporaryDirectory(prefix=FOLDER_PREFIX)
            ))
            (self.directory / OWNER_FILE).write_text(json.dumps(owner, sort_keys=True))
            revisions = [Path(script.get_revision(rev).path) for rev in kept]
            self._copy(Path(script.dir), Path(str(source.config_file_name)), revisions)
            self.url: URL = self._stack.enter_context(db.fresh_database(url, prefix=DATABASE_PREFIX))
            with admin(url) as connection:
                record_owner(connection, str(self.url.database), owner)
        except BaseException:
            self.close()
            raise
        self.versions = self.directory / "alembic" / "versions"
        self.config = migrations.config(self.url, metadata=metadata, ini=self.directory / "alembic.ini")
        self._engine: Engine | None = None
        self._serial = next(_opened)
        _open.add(self)

    @classmethod
    def open(cls, upto: str = "head", **options: Any) -> Workspace:
        """Create a workspace: ``Workspace(upto, **options)``, which reads better in a notebook.

        ``options`` are the class's keyword parameters: ``metadata``, ``url``, ``source``.
        """
        return cls(upto, **options)

    def _copy(self, alembic_dir: Path, ini: Path, revisions: list[Path]) -> None:
        target = self.directory / "alembic"
        shutil.copytree(alembic_dir, target, ignore=shutil.ignore_patterns("__pycache__", "versions"))
        (target / "versions").mkdir()
        for path in revisions:
            shutil.copy2(path, target / "versions" / path.name)
        # The ini says script_location = %(here)s/alembic, so the copy points at the copy.
        shutil.copy2(ini, self.directory / "alembic.ini")

    @property
    def engine(self) -> Engine:
        """An engine on the workspace's database, made on first use; ``close()`` disposes of it."""
        if self.closed:
            raise RuntimeError("this workspace is closed; open a new one with Workspace.open()")
        if self._engine is None:
            self._engine = db.create_engine(self.url)
            self._stack.callback(self._engine.dispose)
        return self._engine

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run (database dropped, directory deleted)."""
        return not self._finalizer.alive

    def close(self) -> None:
        """Dispose of the engine, drop the database, delete the directory. Safe to call twice."""
        self._finalizer()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # No path and no database name: both are random, and notebooks show this.
        state = "closed" if self.closed else "open"
        return f"Workspace(upto={self.upto!r}, {state})"
