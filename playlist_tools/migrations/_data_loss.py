"""What a migration destroys, counted before it runs, and the consent every step that destroys data needs.

Private to :mod:`playlist_tools.migrations`, which re-exports :func:`data_loss`.

What a step destroys is read by :mod:`._loss_reader`, the one reader: Alembic's
operations and PostgreSQL's own grammar (pglast), never text patterns; it says
what counts (``DROP TABLE``/``COLUMN``, ``TRUNCATE``, ``CASCADE`` followed
through the catalog, type changes, ``DELETE``, ``UPDATE``), what it cannot read
(refused until consent) and what is not counted (``docs/data-safety.md``).
Here: the count of a planned run (:func:`count_steps`, :func:`data_loss`) and
the consent. Renames are followed through the steps of the run; a table or
column that does not exist yet (one the run creates) holds nothing yet.

Consent, for every door (the ``alembic`` CLI, ``%alembic``,
``playlist_tools.migrations``, ``alembic.command`` from Python), through
what ``alembic/env.py`` calls:

* online, :func:`guard` wraps the function that ``alembic.command.upgrade``
  and ``downgrade`` hand to env.py (``fn``, which lists the steps to run).
  Alembic calls it inside ``run_migrations``, after env.py took the
  migration lock and on the same connection, with the heads it just read:
  the count (:func:`count_steps`) and the run are one planning, under one
  lock, so no other migration can add or remove values in between. A count
  that is not zero refuses before any step runs, in one line naming each loss;
* consent is ``-x allow_data_loss=true`` on the CLI, or
  ``migrations.upgrade/downgrade(..., allow_data_loss=True)`` from Python
  (the run's :class:`~playlist_tools.history.RunOptions`; a plain
  ``alembic.command`` caller sets ``config.attributes["allow_data_loss"] = True``);
* offline (``--sql``) nothing runs and nothing is counted; :func:`commenting`
  writes ``-- destroys ...`` above each statement the reader finds destructive.

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
import re
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError as AlembicRevisionError
from sqlalchemy.engine import Connection

from playlist_tools.errors import DataLossError, SettingError
from playlist_tools.history import (
    alembic_errors,
    check_revision,
    connection,
    current_heads,
    resolve,
    run_options,
    script_directory,
    wrap_plan,
)
from playlist_tools.migrations._loss_reader import (
    Destruction,
    Loss,
    Uncountable,
    comment,
    count,
    describe_losses,
    read_step,
)

__all__ = [
    "LOSS_COLUMNS", "LOSS_QUERIES", "OPTION", "Loss", "allow_data_loss", "commenting", "count_steps", "data_loss",
    "counted", "describe_losses", "flag", "guard", "move_losses", "planned",
]

if TYPE_CHECKING:  # pandas only in data_loss(): alembic/env.py counts without it, and starts faster
    import pandas as pd


LOSS_COLUMNS = list(Loss._fields)
"""The columns of :func:`data_loss`, the fields of :class:`Loss`."""

LOSS_QUERIES: dict[tuple[str, str, str], tuple[str, str]] = {
    # Positions are only compared within a playlist (they are an identity, with
    # gaps), and 0003's upgrade renumbers entries in song order: an entry loses
    # something only when its place in its playlist differs from that order.
    ("0003", "playlist_song_association", "position"): (
        """SELECT count(*) FROM (
               SELECT row_number() OVER (PARTITION BY playlist_id ORDER BY position) AS place,
                      row_number() OVER (PARTITION BY playlist_id ORDER BY song_id) AS song_order
               FROM playlist_song_association) AS entries
           WHERE place <> song_order""",
        "entries out of song order",
    ),
}
"""Drops that lose less than every value: (revision, table, column) -> (count SQL, what it counts).

Kept here, keyed by the revision whose step (up or down) drops the column,
because revision files are history, not code to change; a revision that
drops another column falls back to the general rule.
"""

def _read(steps: Iterable[tuple[Script, bool]], hint: str) -> list[tuple[str, list[Destruction]]]:
    """Each ``(revision, is_upgrade)`` step read (offline) by the one reader, in run order."""
    read = []
    for step, upward in steps:
        try:
            read.append((step.revision, read_step(step, upgrade=upward)))
        except Exception as err:  # any code in a revision file can fail offline
            way = "upgrade" if upward else "downgrade"
            raise DataLossError(
                f"cannot tell what {way[:-1]}ing {step.revision} destroys: its {way}() "
                f"does not run offline ({type(err).__name__}); check it by hand, then {hint}"
            ) from err
    return read


def counted(connection: Connection, steps: Iterable[tuple[Script, bool]], hint: str
            ) -> list[tuple[Loss, Destruction]]:
    """What ``(revision, is_upgrade)`` steps destroy, in run order, each loss with the statement that causes it.

    Raises
    ------
    DataLossError
        When a step cannot be read (it does not run offline, or a statement
        is uncountable), so its loss is unknown; ``hint`` says how to go ahead.
    """
    steps = list(steps)
    upward = {step.revision: up for step, up in steps}
    try:
        return count(connection, _read(steps, hint), LOSS_QUERIES)
    except Uncountable as err:
        way = "upgrade" if upward.get(err.rev, True) else "downgrade"
        raise DataLossError(f"cannot tell what {way[:-1]}ing {err.rev} destroys: {err}; "
                            f"check it by hand, then {hint}") from err


def count_steps(connection: Connection, steps: Iterable[tuple[Script, bool]], hint: str) -> list[Loss]:
    """What ``(revision, is_upgrade)`` steps would destroy, counted in the database as it is now, in run order.

    Raises
    ------
    DataLossError
        When a step cannot be read, so its loss is unknown; ``hint`` says how to go ahead.

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open(upto="0002") as ws:
    ...     _ = migrations.upgrade(ws.config)
    ...     history = script_directory(ws.config)
    ...     with ws.engine.begin() as conn:
    ...         _ = conn.exec_driver_sql("INSERT INTO playlists (title, description) VALUES ('a', 'mine')")
    ...         count_steps(conn, [(history.get_revision("0002"), False)], "pass allow_data_loss=True")
    [Loss(rev='0002', table='playlists', column='description', lost=1, what='non-null values')]
    """
    return [loss for loss, _ in counted(connection, steps, hint)]


def planned(history: ScriptDirectory, heads: tuple[str, ...], revision: str) -> list[tuple[Script, bool]]:
    """The ``(revision, is_upgrade)`` steps that moving from ``heads`` to ``revision`` runs, in order.

    A target at or below the current revisions (``-1``, ``base``, an
    ancestor) is a downgrade, planned as ``command.downgrade`` plans it;
    any other (``head``, ``+1``, a later id) an upgrade, as ``command.upgrade`` does.

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> history = ScriptDirectory.from_config(migrations.config())
    >>> [(s.revision, up) for s, up in planned(history, ("0003",), "0001")]
    [('0003', False), ('0002', False)]
    >>> [(s.revision, up) for s, up in planned(history, ("0003",), "head")]
    [('0004', True), ('0005', True)]
    """
    try:
        down = list(history.iterate_revisions(heads, revision, select_for_downgrade=True))
    except AlembicRevisionError:  # not below the current revisions: an upgrade target
        up = history.iterate_revisions(revision, heads, implicit_base=True)
        return [(step, True) for step in reversed(list(up))]
    return [(step, False) for step in down]


def data_loss(config: Config | None = None, revision: str = "-1") -> pd.DataFrame:
    """What ``downgrade(config, revision)`` (or ``upgrade``) would destroy, counted before anything runs.

    For each revision the run would apply or revert, its ``upgrade()`` or
    ``downgrade()`` is read offline by the one reader (:mod:`._loss_reader`):
    every ``DROP TABLE`` counts that table's rows, every ``DROP COLUMN`` that
    column's non-null values, ``TRUNCATE``, ``CASCADE``, type changes,
    ``DELETE`` and ``UPDATE`` what they destroy (``docs/data-safety.md``),
    in the database as it is now. A few drops lose less than that, and
    :data:`LOSS_QUERIES` says how much
    (e.g. 0003's ``position``: only entries out of song order). Renames
    destroy nothing and are not listed. A table or column that does not
    exist yet (created by another step of the same run) is skipped.
    ``revision`` below the database's revisions means a downgrade, any
    other an upgrade (see :func:`planned`). ``upgrade`` and ``downgrade``
    (and the ``alembic`` CLI) count the same way, inside the migration lock,
    and refuse a loss they were not told to accept.

    Returns
    -------
    pandas.DataFrame
        Columns ``rev, table, column, lost, what``; ``column`` is ``"*"`` for a whole table.

    Raises
    ------
    DataLossError
        When a revision's step cannot be read (it does not run offline, or a
        statement is uncountable: a ``DO`` block, unparseable SQL), so its loss is unknown.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> from playlist_tools import migrations
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open(upto="0002") as ws:
    ...     _ = migrations.upgrade(ws.config)
    ...     with ws.engine.begin() as connection:
    ...         _ = connection.execute(sa.text(
    ...             "INSERT INTO playlists (title, description) VALUES ('a', 'mine'), ('b', NULL)"))
    ...     loss = data_loss(ws.config, "base")
    ...     nothing_up = data_loss(ws.config, "head").empty
    >>> loss
        rev                      table       column  lost             what
    0  0002                  playlists  description     1  non-null values
    1  0001  playlist_song_association            *     0             rows
    2  0001                      songs            *     0             rows
    3  0001                  playlists            *     2             rows
    >>> nothing_up
    True
    """
    losses = [loss for loss, _ in move_losses(config, revision)]
    import pandas as pd

    return pd.DataFrame(losses, columns=LOSS_COLUMNS).astype({"lost": "int64"})


def move_losses(config: Config | None, revision: str) -> list[tuple[Loss, Destruction]]:
    """:func:`data_loss` as :func:`counted` gives it: each loss with the statement that causes it."""
    cfg = resolve(config)
    check_revision(revision)
    history = script_directory(cfg)
    with alembic_errors(cfg):
        steps = planned(history, current_heads(cfg), revision)
    with alembic_errors(cfg), connection(cfg) as conn:
        return counted(conn, steps, "pass allow_data_loss=True")


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


def flag(config: Config, key: str, default: bool, fix: str, *, ini: bool = True, given: bool | None = None) -> bool:
    """A yes/no setting: ``given`` (from Python), else ``-x key=...``, else the ini's ``key``, else ``default``.

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
    """Whether the run may destroy data: its options' ``allow_data_loss``, else ``-x allow_data_loss=...``.

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
                f"write -x {OPTION}=true to go ahead despite the loss, or leave it out to be asked", ini=False,
                given=run_options(config).allow_data_loss)


def _from_python(config: Config) -> bool:
    """Whether a Python caller set the attribute (the API does): then the message speaks Python."""
    return run_options(config).allow_data_loss is not None


def _hint(config: Config, way: str) -> str:
    if _from_python(config):
        return f"pass {OPTION}=True to {way} anyway"
    return f"run it with -x {OPTION}=true to go ahead"


def guard(context: MigrationContext, config: Config) -> None:
    """Make this online run refuse a lossy plan before any step runs (call it right after ``configure``).

    The steps are the ones Alembic is about to run, for the heads it just
    read; the count runs on the migration connection, inside the lock.
    Consent (:func:`allow_data_loss`) is read first, so a bad ``-x`` value
    fails before anything is counted.
    """
    consented = allow_data_loss(config)
    target = context.opts.get("destination_rev")

    def wrap(plan: Callable[..., Iterable[Any]]) -> Callable[..., Iterable[Any]]:
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
                # A relative target (-1, head-2, 0003+1) is named with the revision it resolves to.
                last = [s for s in steps if isinstance(s, RevisionStep)][-1]
                resolved = ", ".join(last.to_revisions) or "base"
                if re.search(r"[+-][0-9]+$", str(target)):
                    shown = f"{resolved!r} ({shown})" if _from_python(config) else f"{resolved} ({shown})"
                raise DataLossError(f"{way} to {shown} would destroy {what}; {hint}")
            return steps

        return checked

    wrap_plan(context, wrap)


class _Commenting:
    """An output buffer that writes ``-- destroys ...`` above each statement the reader finds destructive."""

    def __init__(self, buffer: IO[str]) -> None:
        self._buffer = buffer

    def write(self, text: str) -> None:
        # Alembic writes each statement with one write() (impl.static_output).
        if text.strip():
            self._buffer.write(comment(text))
        self._buffer.write(text)

    def flush(self) -> None:
        self._buffer.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._buffer, name)


def commenting(buffer: IO[str]) -> Any:
    """``buffer``, with a ``-- destroys the rows of t`` / ``-- destroys the values of t.c`` comment above each loss."""
    return _Commenting(buffer)
