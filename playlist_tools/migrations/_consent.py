"""Consent for every step that destroys data: counted inside the migration lock, refused without a yes.

What ``alembic/env.py`` calls, for every door (the ``alembic`` CLI,
``%alembic``, ``playlist_tools.migrations``, ``alembic.command`` from Python):

* online, :func:`guard` wraps the function that ``alembic.command.upgrade``
  and ``downgrade`` hand to env.py (``fn``, which lists the steps to run).
  Alembic calls it inside ``run_migrations``, after env.py took the
  migration lock and on the same connection, with the heads it just read:
  the count (see :mod:`playlist_tools.migrations._data_loss`) and the run
  are one planning, under one lock, so no other migration can add or
  remove values in between. A count that is not zero refuses before any
  step runs, in one line naming each loss;
* consent is ``-x allow_data_loss=true`` on the CLI, or
  ``config.attributes["allow_data_loss"] = True`` from Python (what
  ``migrations.upgrade/downgrade(..., allow_data_loss=True)`` set);
* offline (``--sql``) nothing runs and nothing is counted; :func:`commenting`
  writes ``-- destroys ...`` above each statement that drops a table or a column.

The advisory lock serialises migrations, not every writer: a session that
inserts rows without taking it (a notebook's plain ``INSERT``) between the
count and the drop is not counted. Stop such writers before a lossy step.

Examples
--------
>>> from playlist_tools import migrations
>>> allow_data_loss(migrations.config())
False
>>> import io
>>> out = io.StringIO()
>>> commenting(out).write("ALTER TABLE playlists DROP COLUMN description;\\n\\n")
>>> print(out.getvalue().strip())
-- destroys the values of playlists.description
ALTER TABLE playlists DROP COLUMN description;
"""

from __future__ import annotations

import configparser
from collections.abc import Callable, Iterable
from typing import IO, Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext, RevisionStep

from playlist_tools.errors import DataLossError, SettingError
from playlist_tools.migrations._data_loss import count_steps, describe_losses, drops

__all__ = ["OPTION", "allow_data_loss", "commenting", "flag", "guard"]

Plan = Callable[..., Iterable[Any]]
"""What ``alembic.command`` passes as ``fn``: ``(heads, migration_context) -> steps``."""

OPTION = "allow_data_loss"
"""The ``-x`` key and the ``config.attributes`` key that give consent."""

_BOOLEANS = configparser.ConfigParser.BOOLEAN_STATES  # true/false, yes/no, on/off, 1/0: what ini files accept


def _typed(config: Config, key: str) -> str | None:
    """The value of ``-x key=...`` on the command line, if given (the last one wins)."""
    found = None
    for item in getattr(config.cmd_opts, "x", None) or []:
        name, _, value = item.partition("=")
        if name.strip() == key:
            found = value.strip()
    return found


def flag(config: Config, key: str, default: bool, fix: str, *, ini: bool = True) -> bool:
    """A yes/no setting: ``config.attributes[key]``, else ``-x key=...``, else the ini's ``key``, else ``default``.

    ``ini=False`` leaves the ini out: a setting that must be given per run.

    Values are what ini files accept: true/false, yes/no, on/off, 1/0, in any case.

    Raises
    ------
    SettingError
        For a value that is neither, naming it and ``fix``.

    Examples
    --------
    >>> import argparse
    >>> flag(Config(cmd_opts=argparse.Namespace(x=["keep=No"])), "keep", True, "")
    False
    """
    given = config.attributes.get(key)
    if given is not None:
        return bool(given)
    typed, where = _typed(config, key), "-x "
    if typed is None and ini:
        typed, where = config.get_main_option(key), "the ini's "
    if typed is None:
        return default
    if typed.lower() not in _BOOLEANS:
        raise SettingError(f"{where}{key}={typed!r} is neither true nor false; {fix}")
    return _BOOLEANS[typed.lower()]


def allow_data_loss(config: Config) -> bool:
    """Whether the run may destroy data: ``attributes["allow_data_loss"]``, else ``-x allow_data_loss=...``.

    Raises
    ------
    SettingError
        For a ``-x`` value that is neither true nor false (``maybe``).

    Examples
    --------
    >>> import argparse
    >>> allow_data_loss(Config(cmd_opts=argparse.Namespace(x=["allow_data_loss=TRUE"])))
    True
    >>> allow_data_loss(Config(cmd_opts=argparse.Namespace(x=["allow_data_loss=maybe"])))
    Traceback (most recent call last):
    ...
    playlist_tools.errors.SettingError: -x allow_data_loss='maybe' is neither true nor false;
    write -x allow_data_loss=true to go ahead despite the loss, or leave it out to be asked
    """
    # Never from the ini: consent is given per run, for the loss that run reports.
    return flag(config, OPTION, False,
                f"write -x {OPTION}=true to go ahead despite the loss, or leave it out to be asked", ini=False)


def _from_python(config: Config) -> bool:
    """Whether a Python caller set the attribute (the API does): then the message speaks Python."""
    return config.attributes.get(OPTION) is not None


def _hint(config: Config, way: str) -> str:
    if _from_python(config):
        return f"pass {OPTION}=True to {way} anyway"
    return f"run it with -x {OPTION}=true to go ahead"


def _wrap_plan(context: MigrationContext, wrap: Callable[[Plan], Plan]) -> None:
    """Replace the function that lists the steps this run executes with ``wrap(it)``.

    Alembic has no public hook between "these are the steps" and "run the
    first one": ``alembic.command.upgrade``/``downgrade`` pass the planner
    as the EnvironmentContext keyword ``fn`` (public, in ``context.opts``),
    which ``MigrationContext.__init__`` copies to the private
    ``_migrations_fn`` that ``run_migrations`` calls with the heads it read.
    Setting that attribute is the one private touch, kept here.
    """
    plan = context.opts.get("fn")
    if plan is not None:
        context._migrations_fn = wrap(plan)


def guard(context: MigrationContext, config: Config) -> None:
    """Make this online run refuse a lossy plan before any step runs (call it right after ``configure``).

    The steps are the ones Alembic is about to run, for the heads it just
    read; the count runs on the migration connection, inside the lock.
    Consent (:func:`allow_data_loss`) is read first, so a bad ``-x`` value
    fails before anything is counted.
    """
    consented = allow_data_loss(config)
    target = context.opts.get("destination_rev")

    def wrap(plan: Plan) -> Plan:
        def checked(heads: Any, ctx: MigrationContext) -> list[Any]:
            steps = list(plan(heads, ctx))
            revisions = [(s.revision, s.is_upgrade) for s in steps if isinstance(s, RevisionStep)]
            if consented or ctx.as_sql or not revisions:
                return steps
            way = "upgrade" if revisions[0][1] else "downgrade"
            hint = _hint(config, way)
            assert ctx.connection is not None  # online: the connection that holds the migration lock
            what = describe_losses(count_steps(ctx.connection, revisions, hint))
            if what:
                shown = repr(target) if _from_python(config) else str(target)
                raise DataLossError(f"{way} to {shown} would destroy {what}; {hint}")
            return steps

        return checked

    _wrap_plan(context, wrap)


class _Commenting:
    """An output buffer that writes ``-- destroys ...`` above each statement dropping a table or column."""

    def __init__(self, buffer: IO[str]) -> None:
        self._buffer = buffer

    def write(self, text: str) -> None:
        # Alembic writes each statement with one write() (impl.static_output).
        for table, column in drops(text):
            what = f"rows of {table}" if column == "*" else f"values of {table}.{column}"
            self._buffer.write(f"-- destroys the {what}\n")
        self._buffer.write(text)

    def flush(self) -> None:
        self._buffer.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._buffer, name)


def commenting(buffer: IO[str]) -> Any:
    """``buffer``, with a ``-- destroys the rows of t`` / ``-- destroys the values of t.c`` comment above each drop."""
    return _Commenting(buffer)
