"""Alembic environment for playlist-tools: Alembic's generic template plus our contract.

So that the ``alembic`` CLI, the Python API, tests, pytest-alembic and
notebooks can all drive the same migrations:

* the connection comes from ``config.attributes["connection"]`` when the
  caller passes one (a Connection, used as it is; anything else, such as an
  Engine, gives one through its ``connect()``, as in Alembic's template; the
  caller owns it); else an engine is made by ``playlist_tools.db``, i.e. on
  ``$DATABASE_URL`` or the embedded server, and disposed of here;
* the target metadata is ``config.attributes["target_metadata"]`` when
  given, else ``Base.metadata`` of the file the ini's ``models`` option
  names (a workspace's ``models.py``), else ``playlist_tools.models``;
* a new revision typed without ``--rev-id`` gets the next readable id;
* the run's ``on_version_apply`` hooks (``playlist_tools.history.RunOptions``,
  or ``config.attributes["on_version_apply"]``) hear of each revision this
  run applies, inside the migration lock;
* every migration runs in its own transaction, with ``lock_timeout`` set,
  and concurrent runs are serialised by an advisory lock
  (``playlist_tools.migrations.locks``); behind a pooler such as PgBouncer
  the whole run is one transaction holding a transaction-level lock;
* autogenerate never proposes dropping a table the models don't know, nor a
  column the migration history never created (an analyst's own);
* an upgrade or downgrade that would destroy data is refused, counted
  inside the migration lock, unless run with ``-x allow_data_loss=true``
  (``config.attributes["allow_data_loss"]`` from Python); ``--sql`` output
  says ``-- destroys ...`` above each drop;
* every error leaves as one line (``FAILED: ...`` on the CLI); an empty
  revision typed on the command line is refused before anything connects.

Our half of this lives in ``playlist_tools.migrations._env``.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from playlist_tools.migrations import _env

config = context.config

if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# The models autogenerate compares with (see _env.target_metadata); a bad models file is one line.
with _env.cli_errors(context.script, config):
    target_metadata = _env.target_metadata(config)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        include_object=_env.include_object(config, context),
        transaction_per_migration=True,
        on_version_apply=_env.run_options(config).on_version_apply,
        process_revision_directives=_env.process_revision_directives,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Emit SQL without a database: ``alembic upgrade head --sql``.

    Only the dialect matters here, so no server is started. The script
    starts with the ``SET lock_timeout`` an online run would use.
    """
    _configure(
        url=_env.offline_url(config), dialect_name="postgresql", literal_binds=True,
        output_buffer=_env.sql_output(config),
    )
    context.execute(_env.lock_timeout_sql(config))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database, holding the migration lock; a lossy plan is refused in it."""
    with _env.connection(config) as connection, _env.migrating(config, connection, context):
        _configure(connection=connection)
        _env.guard(context.get_context(), config)
        with context.begin_transaction():
            context.run_migrations()


with _env.cli_errors(context.script, config):
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
