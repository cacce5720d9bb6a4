"""What ``alembic/env.py`` calls: our half of its contract, kept out of the template.

``env.py`` stays close to Alembic's generic template; the parts that are
ours live here, where they are typed, documented and tested:

* :func:`connection`: the caller's connection or engine from
  ``config.attributes["connection"]``, else one of our own (see
  :func:`playlist_tools.history.connection`);
* :func:`target_metadata`: the caller's metadata, else ``Base.metadata`` of the
  ``models`` file the ini names (a workspace's ``models.py``), else the package's models;
* :func:`include_object`: autogenerate leaves alone tables the models don't know, and
  columns the migration history never created (analysts' own);
* :func:`guard`: an online upgrade or downgrade that would destroy data is
  refused inside the migration lock unless consented (:mod:`._data_loss`);
* :func:`sql_output`: ``--sql`` output, with a ``-- destroys ...`` comment above each drop;
* :func:`process_revision_directives`: ``alembic revision`` without ``--rev-id``
  gets the next readable id (``0006`` after ``0005``), never a random one, and
  the lock-safe form of each risky operation (:mod:`._safe`; ``-x safe=false``: plain);
  PostgreSQL enums are compared and written both ways (:mod:`._enums`, registered on import);
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
from sqlalchemy.engine import URL, Connection

from playlist_tools import db, history, models
from playlist_tools.errors import MigrationError, first_line, one_line
from playlist_tools.history import cli_errors, kept_proxies, quiet_alembic, run_options
from playlist_tools.migrations import _data_loss, _enums, _safe, locks

__all__ = [
    "ANALYST_COLUMNS_OPTION", "cli_errors", "connection", "guard", "include_object", "lock_timeout_sql", "migrating",
    "offline_url", "process_revision_directives", "run_options", "sql_output", "target_metadata",
]

MIGRATIONS_APPLICATION_NAME = f"{db.APPLICATION_NAME} migrations"
"""``application_name`` of our migration connections, so ``pg_stat_activity`` tells them from notebooks."""

_log = logging.getLogger("alembic.env")


def connection(config: Config) -> contextlib.AbstractContextManager[Connection]:
    """The connection migrations run on; only what is opened here is closed here."""
    return history.connection(config, application_name=MIGRATIONS_APPLICATION_NAME)


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
    history.apply_renames(context, revision, directives)
    _safe.make_safe(context, revision, directives)
    _enums.explicit_enum_types(context, revision, directives)
    config = context.config
    options = config.cmd_opts if config is not None else None
    if options is None or not hasattr(options, "rev_id") or options.rev_id is not None:
        return
    first = int(history.next_id(history.script_directory(config)))
    for offset, directive in enumerate(directives):
        directive.rev_id = f"{first + offset:04d}"


ANALYST_COLUMNS_OPTION = "keep_analyst_columns"
"""``-x keep_analyst_columns=false`` (or ``keep_analyst_columns = false`` in the ini): Alembic's plain rule."""


class _ObjectFilter:
    """Autogenerate's ``include_object``: what in the database but not in the models it may propose to drop.

    * a table the models don't know is left alone (analysts' scratch tables);
    * a column the models don't have is proposed for removal only if the
      migration history created it, i.e. it exists in the schema replayed
      at the database's current revision (``playlist_tools.history.template``);
      a column added by hand (an analyst's ``my_note``) is left alone, and
      so are the indexes and constraints on it. The replay happens only
      when such a column turns up (first time: one replay per revision, cached).

    ``-x keep_analyst_columns=false`` or ``keep_analyst_columns = false``
    in the ini gives Alembic's plain rule for columns (drop all of them).
    """

    def __init__(self, config: Config, environment: Any) -> None:
        self._config = config
        self._environment = environment
        self._keep = _data_loss.flag(
            config, ANALYST_COLUMNS_OPTION, True,
            f"write -x {ANALYST_COLUMNS_OPTION}=false for Alembic's plain rule, or leave it out",
        )
        self._created: dict[str | None, set[tuple[str, str]]] = {}

    def __call__(self, obj: Any, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        if not reflected or compare_to is not None:
            return True
        if type_ == "table":
            return False
        if not self._keep:
            return True
        if type_ == "column":
            return not self._analysts(obj.table, [obj.name])
        if type_ in ("index", "unique_constraint", "foreign_key_constraint"):
            return not self._analysts(obj.table, [c.name for c in obj.columns])
        return True

    def _analysts(self, table: sa.Table, names: list[str]) -> bool:
        """Whether any of ``table``'s columns ``names`` is one the history never created."""
        created = self._history(table.schema)
        return any((table.name, column) not in created for column in names)

    def _history(self, schema: str | None) -> set[tuple[str, str]]:
        if schema not in self._created:
            created: set[tuple[str, str]] = set()
            for head in self._environment.get_context().get_current_heads():  # a merge: union of its branches
                with quiet_alembic(), kept_proxies():  # a replay runs Alembic inside this run
                    url = history.template(self._config, head)
                with db.connection(url) as conn:  # a brief read: others copy from the cache
                    inspector = sa.inspect(conn)
                    created |= {
                        (table, column["name"])
                        for table in inspector.get_table_names(schema=schema)
                        for column in inspector.get_columns(table, schema=schema)
                    }
            self._created[schema] = created
        return self._created[schema]


def include_object(config: Config, environment: Any) -> Any:
    """The ``include_object`` for ``context.configure``; see :class:`_ObjectFilter` for the rule.

    ``environment`` is ``alembic.context`` (its migration context gives the current heads).
    """
    return _ObjectFilter(config, environment)


def sql_output(config: Config) -> Any:
    """Where ``--sql`` writes: the config's buffer (else stdout), with ``-- destroys ...`` above each drop."""
    return _data_loss.commenting(config.output_buffer or sys.stdout)


guard = _data_loss.guard


def offline_url(config: Config) -> URL | None:
    """The URL whose dialect ``--sql`` output is rendered for, if one is set; no server is started."""
    url = config.attributes.get("url") or os.environ.get(db.DATABASE_URL_ENV, "").strip()
    return db.parse_url(url, source=db.DATABASE_URL_ENV) if url else None


def _timeout_ms(config: Config) -> int:
    return locks.lock_timeout_ms(run_options(config).lock_timeout)


def lock_timeout_sql(config: Config) -> str:
    """The ``SET lock_timeout`` that starts offline SQL, so whoever runs it by hand is protected too."""
    return f"SET lock_timeout = '{locks.render_timeout(_timeout_ms(config))}'"


@contextlib.contextmanager
def migrating(config: Config, connection: Connection, environment: Any = None) -> Iterator[None]:
    """Hold the migration lock, with ``lock_timeout`` set, while migrations run on ``connection``.

    The run's ``lock_timeout`` (``RunOptions``, or ``config.attributes["lock_timeout"]``) overrides
    ``$PLAYLIST_TOOLS_LOCK_TIMEOUT`` (see :func:`playlist_tools.migrations.locks.lock_timeout_ms`). A statement
    the database refuses ends the run with one :class:`MigrationError` line.
    When ``environment`` (env.py's ``context``) runs a command that moves the
    database (upgrade, downgrade, stamp: those name a destination), a standby
    or read-only session is refused first, before the lock and any step
    (:func:`playlist_tools.db.require_writable`); ``current`` and ``check``
    only read, and run there.
    """
    if environment is not None and _moves(environment):
        db.require_writable(connection, "migrate", MigrationError)
    try:
        with locks.migration_lock(connection, _timeout_ms(config), log=_log.info):
            yield
    except sa.exc.DBAPIError as err:
        raise _failed(connection, err) from err


def _moves(environment: Any) -> bool:
    """Whether this run may write: Alembic's commands that do are the ones given a destination revision."""
    try:
        environment.get_revision_argument()
    except KeyError:  # current, check, revision --autogenerate: no destination_rev in the context's options
        return False
    return True


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
