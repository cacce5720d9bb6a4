"""What ``alembic/env.py`` calls: our half of its contract, kept out of the template.

``env.py`` stays close to Alembic's generic template; the parts that are
ours live here, where they are typed, documented and tested:

* :func:`connection`: the caller's connection or engine from
  ``config.attributes["connection"]``, else one of our own (see
  :func:`playlist_tools.migrations._config.connection`);
* :func:`target_metadata`: the caller's metadata, else ``Base.metadata`` of the
  ``models`` file the ini names (a workspace's ``models.py``), else the package's models;
* :func:`include_object`: autogenerate leaves tables the models don't know alone;
* :func:`process_revision_directives`: ``alembic revision`` without ``--rev-id``
  gets the next readable id (``0006`` after ``0005``), never a random one;
* :func:`migrating`: the migration lock and ``lock_timeout`` around a run,
  and one line for a migration the database refused;
* :func:`offline_url` and :func:`lock_timeout_sql` for ``--sql`` output;
* :func:`cli_errors`: every error leaves ``env.py`` as one line.

Examples
--------
>>> from playlist_tools import migrations
>>> lock_timeout_sql(migrations.config())
"SET lock_timeout = '10s'"
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection

from playlist_tools import db
from playlist_tools.errors import MigrationError, first_line, one_line
from playlist_tools.migrations import _config, _renames, locks
from playlist_tools.migrations._errors import cli_errors

__all__ = [
    "cli_errors", "connection", "include_object", "lock_timeout_sql", "migrating", "offline_url",
    "process_revision_directives", "target_metadata",
]

MIGRATIONS_APPLICATION_NAME = f"{db.APPLICATION_NAME} migrations"
"""``application_name`` of our migration connections, so ``pg_stat_activity`` tells them from notebooks."""

_log = logging.getLogger("alembic.env")


def connection(config: Config) -> contextlib.AbstractContextManager[Connection]:
    """The connection migrations run on; only what is opened here is closed here."""
    return _config.connection(config, application_name=MIGRATIONS_APPLICATION_NAME)


_loads = itertools.count()


def target_metadata(config: Config) -> sa.MetaData:
    """What autogenerate compares with: ``attributes["target_metadata"]``, else the ini's ``models`` file.

    A workspace's ini says ``models = %(here)s/models.py``; that file is read
    afresh each time (so an edit counts) and its ``Base.metadata`` is used.
    An ini without ``models`` (the repo's) means ``playlist_tools.models``.
    """
    given = config.attributes.get("target_metadata")
    if given is not None:
        return given
    path = config.get_main_option("models")
    if not path:
        from playlist_tools import models

        return models.Base.metadata
    name = f"_playlist_tools_models_{next(_loads)}"  # a new module each time: never a stale cached one
    spec = importlib.util.spec_from_file_location(name, Path(path))
    if spec is None or spec.loader is None or not Path(path).is_file():
        raise MigrationError(f"models = {path} in the ini names no Python file; point it at your models.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # SQLAlchemy resolves Mapped["..."] annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    base = getattr(module, "Base", None)
    if base is None or not isinstance(getattr(base, "metadata", None), sa.MetaData):
        raise MigrationError(f"{path} defines no Base with a metadata; declare your models on a DeclarativeBase")
    return base.metadata


def process_revision_directives(context: MigrationContext, revision: Any, directives: list[Any]) -> None:
    """A revision typed without ``--rev-id`` gets the next readable id, as ``migrations.revision`` gives.

    Only the command line's choice is replaced (``cmd_opts.rev_id`` is ``None``);
    an id typed, or passed by :func:`playlist_tools.migrations.revision`, stays.
    """
    _renames.apply_renames(context, revision, directives)
    config = context.config
    options = config.cmd_opts if config is not None else None
    if options is None or not hasattr(options, "rev_id") or options.rev_id is not None:
        return
    from playlist_tools.migrations._revisions import next_id

    first = int(next_id(ScriptDirectory.from_config(config)))
    for offset, directive in enumerate(directives):
        directive.rev_id = f"{first + offset:04d}"


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Autogenerate's filter: leave alone tables that exist in the database but not in the models.

    Analysts keep scratch tables in the same database; a migration must not drop them.
    """
    return not (type_ == "table" and reflected and compare_to is None)


def offline_url(config: Config) -> URL | None:
    """The URL whose dialect ``--sql`` output is rendered for, if one is set; no server is started."""
    url = config.attributes.get("url") or os.environ.get(db.DATABASE_URL_ENV, "").strip()
    return db.parse_url(url, source=db.DATABASE_URL_ENV) if url else None


def _timeout_ms(config: Config) -> int:
    return locks.lock_timeout_ms(config.attributes.get("lock_timeout"))


def lock_timeout_sql(config: Config) -> str:
    """The ``SET lock_timeout`` that starts offline SQL, so whoever runs it by hand is protected too."""
    return f"SET lock_timeout = '{locks.render_timeout(_timeout_ms(config))}'"


@contextlib.contextmanager
def migrating(config: Config, connection: Connection) -> Iterator[None]:
    """Hold the migration lock, with ``lock_timeout`` set, while migrations run on ``connection``.

    ``config.attributes["lock_timeout"]`` overrides ``$PLAYLIST_TOOLS_LOCK_TIMEOUT``
    (see :func:`playlist_tools.migrations.locks.lock_timeout_ms`). A statement
    the database refuses ends the run with one :class:`MigrationError` line.
    """
    try:
        with locks.migration_lock(connection, _timeout_ms(config), log=_log.info):
            yield
    except sa.exc.DBAPIError as err:
        raise _failed(connection, err) from err


def _failed(connection: Connection, err: sa.exc.DBAPIError) -> MigrationError:
    """One line for a migration the database refused: what it said, and where we are now.

    The failing migration's own transaction is rolled back by then, so its
    revision left nothing behind; earlier revisions of the same run stay.
    Only the driver's first line is quoted, cut short: never SQLAlchemy's
    ``[SQL: ...]`` and ``[parameters: ...]``, which may hold anyone's data.
    """
    reason = one_line(first_line(err.orig if err.orig is not None else err), 120)  # the whole line stays < 300
    fix = "fix the migration (the log above names it) and run the command again"
    if connection.in_transaction():
        # The caller's own transaction: aborted now, and only its ROLLBACK undoes the run.
        return MigrationError(
            f"the migration failed: {reason}; roll back your transaction (nothing of this run is kept), then {fix}"
        )
    try:
        heads = MigrationContext.configure(connection).get_current_heads()
        where = f" (the database stays at {', '.join(heads) or 'base'})"
        connection.rollback()  # reading autobegan a transaction; leave the connection as it was
    except sa.exc.DBAPIError:
        where = ""  # the session itself is gone (terminated, network)
    return MigrationError(f"the migration failed and was rolled back{where}: {reason}; {fix}")
