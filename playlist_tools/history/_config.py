"""The Alembic config every migrations function takes, and what they share through it.

:func:`config` finds the repo's ``alembic.ini`` relative to this package:
the repo root is the parent of the ``playlist_tools`` folder, which is
where an editable install (``pip install -e .``, what ``make`` does)
leaves it. A wheel install has no migrations; pass ``ini=`` then.
:func:`resolve` is the one place where ``config=None`` becomes that default.

Examples
--------
>>> cfg = config("postgresql://ann:pw@db.example.org/music")
>>> cfg.attributes["url"].database, cfg.get_main_option("script_location").endswith("alembic")
('music', True)
>>> resolve(cfg) is cfg, resolve(None).attributes.get("url") is None
(True, True)
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine

from playlist_tools import db
from playlist_tools.errors import MigrationError
from playlist_tools.history._errors import read_config

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this package is installed from (editable install): alembic.ini and alembic/ live here."""


def config(
    url: str | URL | None = None,
    *,
    script_location: str | Path | None = None,
    metadata: sa.MetaData | None = None,
    connection: Connection | Engine | None = None,
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
    connection : sqlalchemy.engine.Connection or Engine, optional
        Run on this connection (or on one lent by this engine); the caller
        owns it and closes it.
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
    if ini is not None:
        read_config(cfg)  # a file that is not an alembic.ini fails here, in one line that does not quote it
    return cfg


def resolve(cfg: Config | None) -> Config:
    """``cfg`` itself, or for ``None`` the repo's migrations on the default database (:func:`config`)."""
    return cfg if cfg is not None else config()


def script_directory(cfg: Config) -> ScriptDirectory:
    """The migrations folder ``cfg`` names, read afresh (notebooks add files to it)."""
    return ScriptDirectory.from_config(cfg)


@contextlib.contextmanager
def connection(cfg: Config, *, application_name: str | None = None) -> Iterator[Connection]:
    """The connection ``cfg`` carries, left open; else one of our own, closed after.

    ``config.attributes["connection"]`` may be a Connection (used as it is)
    or an Engine, as pytest-alembic passes (one of its connections is lent
    and given back). Otherwise an engine is made for ``attributes["url"]``
    (see :func:`playlist_tools.db.resolve_url`) and disposed of afterwards.
    """
    given = cfg.attributes.get("connection")
    if isinstance(given, Engine):
        with given.connect() as lent:  # closing it rolls back what a read autobegan
            yield lent
        return
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
    connect_args = {"application_name": application_name} if application_name else {}
    engine = db.create_engine(cfg.attributes.get("url"), poolclass=sa.pool.NullPool, connect_args=connect_args)
    try:
        with engine.connect() as own:
            yield own
    finally:
        engine.dispose()


def current_heads(cfg: Config) -> tuple[str, ...]:
    """The revisions in the database's ``alembic_version``; empty at base."""
    with connection(cfg) as conn:
        return tuple(MigrationContext.configure(conn).get_current_heads())
