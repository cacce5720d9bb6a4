"""A scratch workspace: a fresh database and a private copy of the migrations.

Notebooks and tests write new revisions, branch and merge in here, never
in the repo. A workspace holds:

* a new, empty database on the usual server (``playlist_tools.db.fresh_database``);
* a temporary directory with a copy of ``alembic.ini`` and ``alembic/``
  (``env.py``, ``script.py.mako``) whose ``versions/`` holds the committed
  revisions up to ``upto`` only: ``"base"`` for an empty history, so a
  notebook can autogenerate "Initial migration" itself; next to them a
  ``models.py`` with the models as they are at ``upto`` (:func:`models_source`),
  where ``env.py`` takes its ``target_metadata`` from, as in a project of your own;
* ``config``, the Alembic config that ties the two together, for every
  function in :mod:`playlist_tools.migrations`.

``close()`` disposes of the workspace's engine, drops the database and
deletes the directory. Notebooks call it in their last cell; a
``weakref.finalize`` does it anyway when the workspace is garbage
collected or the kernel exits. Tests use ``with``.

A killed kernel runs no finalizer, so every workspace records its owner
(host, pid, process start time) in :data:`OWNER_FILE` and in the database's
``COMMENT``; :meth:`Workspace.open` first calls :func:`sweep`, which removes
the ``pt_workspace_*`` databases and ``playlist-tools-workspace-*`` folders
whose owner was a process of *this* host that no longer runs, and nothing else.

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
import re
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

__all__ = ["OWNER_FILE", "Workspace", "current_workspace", "models_source", "sweep"]

_MODELS = '''"""The models at revision {rev}; alembic/env.py compares the database with Base.metadata from here."""

from __future__ import annotations

import datetime
import decimal
from typing import Optional

from sqlalchemy import (
    BigInteger, Column, DateTime, ForeignKey, Identity, Integer, MetaData, Numeric, String, Table, Text, func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from playlist_tools.models import NAMING_CONVENTION


class Base(DeclarativeBase):
    # Every index and constraint gets a predictable name, so later migrations can drop it.
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


playlist_song_association = Table(
    "playlist_song_association",
    Base.metadata,
    Column("playlist_id", ForeignKey("playlists.playlist_id", ondelete="CASCADE"), primary_key=True),
    Column("song_id", ForeignKey("songs.song_id", ondelete="RESTRICT"), primary_key=True, index=True),
    Column("position", Integer, Identity(), nullable=False),  @since 0003
)


class Song(Base):
    __tablename__ = "songs"

    song_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    artist: Mapped[Optional[str]] = mapped_column(String(120), index=True)
    album: Mapped[Optional[str]] = mapped_column(String(160))
    genre: Mapped[Optional[str]] = mapped_column(String(120))  @before 0005
    genre: Mapped[Optional[str]] = mapped_column(String(120), index=True)  @since 0005
    composer: Mapped[Optional[str]] = mapped_column(String(220))
    media_type: Mapped[Optional[str]] = mapped_column(String(120))  @before 0004
    file_format: Mapped[Optional[str]] = mapped_column(String(120))  @since 0004
    duration_ms: Mapped[Optional[int]] = mapped_column(Integer)
    size_bytes: Mapped[Optional[int]] = mapped_column(BigInteger)
    unit_price: Mapped[Optional[decimal.Decimal]] = mapped_column(Numeric(10, 2))

    playlists: Mapped[list[Playlist]] = relationship(
        secondary=playlist_song_association, back_populates="songs", order_by="Playlist.playlist_id"
    )


class Playlist(Base):
    __tablename__ = "playlists"

    playlist_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(120), index=True)
    description: Mapped[Optional[str]] = mapped_column(Text)  @since 0002
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    songs: Mapped[list[Song]] = relationship(
        secondary=playlist_song_association, back_populates="playlists", order_by="Song.song_id"  @before 0003
        secondary=playlist_song_association, back_populates="playlists",  @since 0003
        order_by=playlist_song_association.c.position,  @since 0003
    )
'''
"""The package's models (``playlist_tools.models``) as each committed revision has them; ``@`` tags pick lines."""

_TAG = re.compile(r"\s+@(since|before) (\d{4})$")


def models_source(rev: str) -> str:
    """The text of the ``models.py`` that matches committed revision ``rev`` (``"base"``: those of 0001).
    An id the tags do not know (one of your own) gets the latest models.

    Examples
    --------
    >>> "description" in models_source("0001"), "description" in models_source("0002")
    (False, True)
    >>> [line.split(":")[0].strip() for line in models_source("base").splitlines() if "media_type" in line]
    ['media_type']
    """
    at = "0001" if rev == "base" else rev if rev.isdigit() else "9999"
    kept = []
    for line in _MODELS.format(rev=rev).splitlines():
        tag = _TAG.search(line)
        if tag is None or (at >= tag[2]) == (tag[1] == "since"):
            kept.append(line[: tag.start()] if tag else line)
    return "\n".join(kept) + "\n"


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
        default ``Base.metadata`` of the workspace's ``models.py``, read
        afresh by every command, so edits to the file count.
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
    models : pathlib.Path
        ``directory / "models.py"``: the models as they are at ``upto`` (at 0001 for
        ``"base"``), which autogenerate compares with; edit it as you would your own.
    config : alembic.config.Config
        Pass it to every :mod:`playlist_tools.migrations` function.

    Raises
    ------
    RevisionError
        When ``upto`` names no committed revision; nothing is created then.
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
        self.models = self.directory / "models.py"
        self.config = migrations.config(self.url, metadata=metadata, ini=self.directory / "alembic.ini")
        self._engine: Engine | None = None
        self._serial = next(_opened)
        _open.add(self)

    @classmethod
    def open(cls, upto: str = "head", **options: Any) -> Workspace:
        """``Workspace(upto, **options)`` (``metadata``, ``url``, ``source``), which reads better in a notebook."""
        return cls(upto, **options)

    def _copy(self, alembic_dir: Path, ini: Path, revisions: list[Path]) -> None:
        target = self.directory / "alembic"
        shutil.copytree(alembic_dir, target, ignore=shutil.ignore_patterns("__pycache__", "versions"))
        (target / "versions").mkdir()
        for path in revisions:
            shutil.copy2(path, target / "versions" / path.name)
        # The ini says script_location = %(here)s/alembic, so the copy points at the copy; `models` makes it
        # a reader's own project: env.py takes Base.metadata from models.py next to it.
        text = ini.read_text().replace("[alembic]\n", "[alembic]\nmodels = %(here)s/models.py\n", 1)
        # autogenerate logs its "Detected sequence" INFO lines in set order, which differs between runs.
        text = text.replace("keys = root,sqlalchemy,alembic\n", "keys = root,sqlalchemy,alembic,pg\n", 1)
        text += "\n[logger_pg]\nlevel = WARNING\nhandlers =\nqualname = alembic.ddl.postgresql\n"
        (self.directory / "alembic.ini").write_text(text)
        (self.directory / "models.py").write_text(models_source(self._models_rev(revisions)))

    def _models_rev(self, revisions: list[Path]) -> str:
        """The revision whose models go into models.py: the last one copied; 0001's for ``"base"``."""
        return revisions[-1].name.split("_", 1)[0] if revisions else "base"

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
