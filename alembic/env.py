"""Alembic environment for playlist-tools.

The contract (see DESIGN.md), so that the CLI, the Python API, tests and
notebooks can all drive the same migrations:

* the connection comes from ``config.attributes["connection"]`` when the
  caller passes one (the caller then owns it and its transaction); else an
  engine is made from ``playlist_tools.db``, i.e. ``$DATABASE_URL`` or the
  embedded server;
* the target metadata comes from ``config.attributes["target_metadata"]``
  when given, else ``playlist_tools.models.Base.metadata``;
* ``config.attributes["on_version_apply"]`` (a list of callables)
  is called for each revision this run applies, inside the migration lock;
* every migration runs in its own transaction, with ``lock_timeout`` set
  (``config.attributes["lock_timeout"]``, else ``$PLAYLIST_TOOLS_LOCK_TIMEOUT``,
  else 10 s; the offline SQL starts with the same ``SET``);
* concurrent upgrades are serialised with a PostgreSQL advisory lock, and a
  migration blocked by another session fails with a message naming it
  (see ``playlist_tools.locks``);
* autogenerate never proposes dropping a table the models don't know
  (analysts' scratch tables live in the same database).
"""

from __future__ import annotations

import logging
import os
from logging.config import fileConfig

import sqlalchemy as sa
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from alembic import context, util
from alembic.runtime.migration import MigrationContext
from alembic.script.revision import ResolutionError
from alembic.script.revision import RevisionError as AlembicRevisionError
from playlist_tools import db, locks, models
from playlist_tools.errors import MigrationError, PlaylistToolsError

config = context.config

if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = config.attributes.get("target_metadata", models.Base.metadata)

MIGRATION_LOCK_KEY = locks.MIGRATION_LOCK_KEY
"""``pg_advisory_lock`` key that serialises migrations on one database."""

MIGRATIONS_APPLICATION_NAME = f"{db.APPLICATION_NAME} migrations"
"""``application_name`` of our migration connections, so ``pg_stat_activity`` tells them from notebooks."""

log = logging.getLogger("alembic.env")


def include_object(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    """Leave alone tables that exist in the database but not in the models."""
    if type_ == "table" and reflected and compare_to is None:
        return False
    return True


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=False,
        include_object=include_object,
        transaction_per_migration=True,
        # Callers that report what *they* applied (playlist_tools.migrations)
        # hook in here: comparing heads before and after is wrong when another
        # process migrates in between.
        on_version_apply=config.attributes.get("on_version_apply", ()),
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Emit SQL without a database: ``alembic upgrade head --sql``.

    Only the dialect matters here, so no server is started. The script
    starts with the ``SET lock_timeout`` an online run would use, so that
    whoever runs it by hand gets the same protection.
    """
    timeout = locks.lock_timeout_ms(config.attributes.get("lock_timeout"))
    url = config.attributes.get("url") or os.environ.get(db.DATABASE_URL_ENV)
    if url:
        _configure(url=db.parse_url(url), literal_binds=True)
    else:
        _configure(dialect_name="postgresql", literal_binds=True)
    context.execute(f"SET lock_timeout = '{locks.render_timeout(timeout)}'")
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    timeout = locks.lock_timeout_ms(config.attributes.get("lock_timeout"))
    try:
        with locks.migration_lock(connection, timeout, log=log.info):
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    except sa.exc.DBAPIError as err:
        raise _failed(connection, err) from err


def _failed(connection: Connection, err: sa.exc.DBAPIError) -> MigrationError:
    """One line for a migration the database refused: what it said, and where we are now.

    The failing migration's own transaction is rolled back by then, so its
    revision left nothing behind; earlier revisions of the same run stay.
    """
    reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
    fix = "fix the migration (the log above names it) and run the command again"
    if connection.in_transaction():
        # The caller's own transaction: aborted now, and only its ROLLBACK undoes the run.
        return MigrationError(f"the migration failed: {reason}; roll back your transaction (nothing of this run is kept), then {fix}")
    try:
        heads = MigrationContext.configure(connection).get_current_heads()
        where = f" (the database stays at {', '.join(heads) or 'base'})"
        connection.rollback()  # reading autobegan a transaction; leave the connection as it was
    except sa.exc.DBAPIError:
        where = ""  # the session itself is gone (terminated, network)
    return MigrationError(f"the migration failed and was rolled back{where}: {reason}; {fix}")


def run_migrations_online() -> None:
    """Run against a live database: the caller's connection, or our own."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = db.create_engine(
        config.attributes.get("url"),
        poolclass=pool.NullPool,
        connect_args={"application_name": MIGRATIONS_APPLICATION_NAME},
    )
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


try:
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
except PlaylistToolsError as err:
    # The alembic CLI prints a CommandError as one "FAILED: ..." line instead of
    # a traceback; playlist_tools.migrations unwraps it back via __cause__.
    raise util.CommandError(str(err)) from err
except util.CommandError as err:
    if isinstance(err.__cause__, ResolutionError):
        raise util.CommandError(
            f"{err}; run `alembic history` to list the known revisions, "
            "or use head, base, +N or -N"
        ) from err.__cause__
    if isinstance(err.__cause__, AlembicRevisionError):  # e.g. "+9" past head
        raise util.CommandError(
            f"{err}; run `alembic current` to see where the database is "
            "and `alembic history` for how far it can go"
        ) from err.__cause__
    raise
