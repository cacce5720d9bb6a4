"""The Alembic config that every migrations function takes, and what they share.

:func:`config` finds the repo's ``alembic.ini`` relative to this package:
the repo root is the parent of the ``playlist_tools`` folder, which is
where an editable install (``pip install -e .``, what ``make`` does)
leaves it. A wheel install has no migrations; pass ``ini=`` then.

The rest is plumbing for :mod:`playlist_tools.migrations`: one connection
per call (or the caller's), the database's current revisions, and
Alembic's errors turned into ours.

Examples
--------
>>> cfg = config("postgresql://ann:pw@db.example.org/music")
>>> cfg.attributes["url"].database, cfg.get_main_option("script_location").endswith("alembic")
('music', True)
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import util
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import MultipleHeads, ResolutionError
from alembic.script.revision import RevisionError as AlembicRevisionError
from sqlalchemy.engine import URL, Connection

from playlist_tools import db
from playlist_tools.errors import MigrationError, PlaylistToolsError, RevisionError

__all__ = ["REPO_ROOT", "config", "script", "connection", "current_heads", "alembic_errors"]

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout this package is installed from (editable install): alembic.ini and alembic/ live here."""


def config(
    url: str | URL | None = None,
    *,
    script_location: str | Path | None = None,
    metadata: sa.MetaData | None = None,
    connection: Connection | None = None,
    ini: str | Path | None = None,
) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the repo's migrations.

    Parameters
    ----------
    url : str, URL or None
        The database (``DATABASE_URL=...`` for the CLI); ``None`` leaves the
        choice to ``playlist_tools.db``: ``$DATABASE_URL``, else the embedded
        server. Nothing is resolved or started here.
    script_location : str or Path, optional
        Another migrations folder (``script_location`` in the ini).
    metadata : sqlalchemy.MetaData, optional
        What autogenerate compares against; default the package's models.
    connection : sqlalchemy.engine.Connection, optional
        Run on this connection; the caller owns it and closes it.
    ini : str or Path, optional
        Another ini file (``-c/--config``); default ``REPO_ROOT/alembic.ini``.

    Raises
    ------
    MigrationError
        When the ini file is missing (a non-editable install has none).

    Examples
    --------
    >>> config().get_main_option("script_location").endswith("alembic")
    True
    """
    path = Path(ini) if ini is not None else REPO_ROOT / "alembic.ini"
    if not path.is_file():
        raise MigrationError(
            f"no Alembic configuration at {path}; install playlist-tools from a checkout "
            "(pip install -e .) or pass ini= the path of an alembic.ini"
        )
    # quiet: "Generating /tmp/.../0002_....py ... done" would put a path in notebook outputs.
    cfg = Config(str(path), cmd_opts=argparse.Namespace(quiet=True))
    # env.py would otherwise call fileConfig and print INFO lines into notebook outputs.
    cfg.attributes["skip_logging_config"] = True
    if url is not None:
        cfg.attributes["url"] = db.parse_url(url)
    if script_location is not None:
        cfg.set_main_option("script_location", str(script_location).replace("%", "%%"))
    if metadata is not None:
        cfg.attributes["target_metadata"] = metadata
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script(cfg: Config) -> ScriptDirectory:
    """The migrations folder ``cfg`` names, read afresh (notebooks add files to it)."""
    return ScriptDirectory.from_config(cfg)


@contextlib.contextmanager
def connection(cfg: Config) -> Iterator[Connection]:
    """The caller's connection from ``cfg``, left open; else one of our own, closed after."""
    given = cfg.attributes.get("connection")
    if given is not None:
        started = not given.in_transaction()
        try:
            yield given
        finally:
            # Reading autobegins a transaction; leaving it open would make env.py
            # run the migrations inside it, uncommitted.
            if started and given.in_transaction():
                given.rollback()
        return
    engine = db.create_engine(cfg.attributes.get("url"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as own:
            yield own
    finally:
        engine.dispose()


def current_heads(cfg: Config) -> tuple[str, ...]:
    """The revisions in the database's ``alembic_version``; empty at base."""
    with connection(cfg) as conn:
        return tuple(MigrationContext.configure(conn).get_current_heads())


def _known(cfg: Config) -> str:
    ids = sorted(s.revision for s in script(cfg).walk_revisions())
    return ", ".join(ids) if ids else "none yet"


@contextlib.contextmanager
def alembic_errors(cfg: Config) -> Iterator[None]:
    """Turn Alembic's errors into ours: one line, naming the bad value."""
    try:
        yield
    except util.CommandError as err:
        cause = err.__cause__
        if isinstance(cause, PlaylistToolsError):
            raise cause from cause.__cause__  # env.py wraps ours for the CLI
        if isinstance(cause, ResolutionError):
            raise RevisionError(
                f"unknown revision {cause.argument!r}; known revisions: {_known(cfg)}; "
                "or use head, base, +N or -N (history() lists them)"
            ) from cause
        if isinstance(cause, MultipleHeads):
            raise RevisionError(
                f"{cause.argument!r} is ambiguous: the history has several heads "
                f"({', '.join(sorted(cause.heads))}); use 'heads', name one, or merge them with merge()"
            ) from cause
        if isinstance(cause, AlembicRevisionError):
            hint = "" if "history" in str(err) else "; current() says where the database is, history() lists the revisions"
            raise RevisionError(f"{err}{hint}") from cause
        message = " ".join(str(err).split())
        if "not up to date" in message:
            message += " Run upgrade(config, 'head') first."
        raise MigrationError(message) from err
