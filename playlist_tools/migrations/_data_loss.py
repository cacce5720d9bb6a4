"""What a migration destroys, counted before it runs, and the consent every step that destroys data needs.

Private to :mod:`playlist_tools.migrations`, which re-exports :func:`data_loss`.

The rule, for each step a run would execute (a revision's ``upgrade()``
on the way up, its ``downgrade()`` on the way down):

1. render the step as offline SQL (no database involved);
2. every ``DROP TABLE t`` loses the rows of ``t``; every
   ``ALTER TABLE t DROP COLUMN c`` loses the non-null values of ``t.c``;
   renames, index drops and the like lose nothing;
3. count those in the database as it is now, except where
   :data:`LOSS_QUERIES` knows that a drop loses less.

Renames are followed through the steps of the run (a column renamed back
by one step and dropped by the next is counted under its name now); a
table or column that does not exist yet (one that the run creates) is skipped. Statements that delete rows
(``DELETE``, ``TRUNCATE``, an ``UPDATE`` that overwrites) are not counted:
only their author knows what they mean; :data:`LOSS_QUERIES` is where to say it.

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
  ``config.attributes["allow_data_loss"] = True`` from Python (what
  ``migrations.upgrade/downgrade(..., allow_data_loss=True)`` set);
* offline (``--sql``) nothing runs and nothing is counted; :func:`commenting`
  writes ``-- destroys ...`` above each statement that drops a table or a column.

The advisory lock serialises migrations, not every writer: a session that
inserts rows without taking it (a notebook's plain ``INSERT``) between the
count and the drop is not counted. Stop such writers before a lossy step.

Examples
--------
>>> from alembic.script import ScriptDirectory
>>> from playlist_tools import migrations
>>> script = ScriptDirectory.from_config(migrations.config())
>>> drops(render(script.get_revision("0002")))
[('playlists', 'description')]
>>> drops(render(script.get_revision("0002"), upgrade=True)), drops(render(script.get_revision("0004")))
([], [])
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
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
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
    render,
    resolve,
    script_directory,
    wrap_plan,
)

__all__ = [
    "LOSS_COLUMNS", "LOSS_QUERIES", "OPTION", "Loss", "allow_data_loss", "commenting", "count_steps", "data_loss",
    "describe_losses", "drops", "flag", "guard", "planned",
]

if TYPE_CHECKING:  # pandas only in data_loss(): alembic/env.py counts without it, and starts faster
    import pandas as pd


class Loss(NamedTuple):
    """What one step's drop destroys: ``column`` is ``"*"`` for a whole table."""

    rev: str
    table: str
    column: str
    lost: int
    what: str


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

_ONE = {"rows": "row", "non-null values": "non-null value", "entries out of song order": "entry out of song order"}
"""How each ``what`` reads for one: ``(1 non-null value)``."""

_DROP_TABLE = re.compile(r'\bDROP TABLE (?:IF EXISTS )?"?(\w+)"?')
_DROP_COLUMN = re.compile(r'\bALTER TABLE "?(\w+)"? DROP COLUMN (?:IF EXISTS )?"?(\w+)"?')
_RENAME_TABLE = re.compile(r'\bALTER TABLE "?(\w+)"? RENAME TO "?(\w+)"?')
# Alembic writes RENAME a TO b; by hand it is often RENAME COLUMN a TO b. RENAME CONSTRAINT never matches.
_RENAME_COLUMN = re.compile(r'\bALTER TABLE "?(\w+)"? RENAME (?:COLUMN )?"?(\w+)"? TO "?(\w+)"?')


def drops(sql: str) -> list[tuple[str, str]]:
    """``(table, column)`` for each table (column ``"*"``) and column that ``sql`` drops.

    Examples
    --------
    >>> drops('DROP TABLE songs;\\nALTER TABLE playlists DROP COLUMN "description";')
    [('songs', '*'), ('playlists', 'description')]
    """
    found = [(m.start(), m.group(1), "*") for m in _DROP_TABLE.finditer(sql)]
    found += [(m.start(), m.group(1), m.group(2)) for m in _DROP_COLUMN.finditer(sql)]
    return [(table, column) for _, table, column in sorted(found)]


def _events(sql: str) -> list[tuple[str, str, str, str]]:
    """``(kind, table, old, new)`` for each drop and rename in ``sql``, in the order they run.

    ``kind`` is ``drop`` (``old`` is the column, ``"*"`` for the table),
    ``rename_table`` (``table`` -> ``new``) or ``rename_column`` (``table.old`` -> ``new``).
    """
    found = [(m.start(), "drop", m.group(1), "*", "") for m in _DROP_TABLE.finditer(sql)]
    found += [(m.start(), "drop", m.group(1), m.group(2), "") for m in _DROP_COLUMN.finditer(sql)]
    found += [(m.start(), "rename_table", m.group(1), "", m.group(2)) for m in _RENAME_TABLE.finditer(sql)]
    found += [(m.start(), "rename_column", *m.groups()) for m in _RENAME_COLUMN.finditer(sql)]
    return [(kind, table, old, new) for _, kind, table, old, new in sorted(found)]


def count_losses(connection: Connection, rendered: list[tuple[str, str]]) -> list[Loss]:
    """Count what each ``(revision, step SQL)`` would destroy, in the database as it is now.

    Renames are followed through the steps: when one step renames
    ``songs.stars`` back to ``rating`` and a later one drops ``rating``,
    the values lost are those of ``songs.stars`` now, and that is the name
    reported. A name that an earlier step of the run dropped or renamed
    away, or that the database does not have (created by the run), holds
    nothing yet.

    Returns
    -------
    list of Loss
        One per drop, in run order; ``table`` and ``column`` name what is in the database now.

    Examples
    --------
    >>> from playlist_tools import db
    >>> with db.fresh_database() as url, db.transaction(url) as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE songs (id int, stars int); INSERT INTO songs VALUES (1, 5)")
    ...     count_losses(conn, [("0009", "ALTER TABLE songs RENAME stars TO rating;"),
    ...                         ("0006", "ALTER TABLE songs DROP COLUMN rating;")])
    [Loss(rev='0006', table='songs', column='stars', lost=1, what='non-null values')]
    """
    inspector = sa.inspect(connection)
    tables: dict[str, str | None] = {}  # a name in the run -> that table's name now (None: not in the database)
    columns: dict[tuple[str, str], str | None] = {}  # (table now, a column name in the run) -> its name now
    rows = []

    def table_now(name: str) -> str | None:
        now = tables.get(name, name)
        return now if now is not None and inspector.has_table(now) else None

    for rev, sql in rendered:
        for kind, table, old, new in _events(sql):
            now = table_now(table)
            if kind == "rename_table":
                tables[new], tables[table] = now, None
                continue
            if now is None:
                continue
            if kind == "rename_column":
                columns[(now, new)], columns[(now, old)] = columns.get((now, old), old), None
                continue
            if old == "*":
                tables[table] = None
                rows.append(Loss(rev, now, "*", int(connection.execute(
                    sa.select(sa.func.count()).select_from(sa.table(now))).scalar_one()), "rows"))
                continue
            column = columns.get((now, old), old)
            columns[(now, old)] = None
            if column is None or column not in {c["name"] for c in inspector.get_columns(now)}:
                continue
            special, what = LOSS_QUERIES.get((rev, now, column), (None, "non-null values"))
            query = sa.text(special) if special else (
                sa.select(sa.func.count(sa.column(column))).select_from(sa.table(now))
            )
            rows.append(Loss(rev, now, column, int(connection.execute(query).scalar_one()), what))
    return rows


def count_steps(connection: Connection, steps: Iterable[tuple[Script, bool]], hint: str) -> list[Loss]:
    """:func:`count_losses` for ``(revision, is_upgrade)`` steps, in the order they would run.

    Raises
    ------
    DataLossError
        When a step cannot be rendered offline, so its loss is unknown; ``hint`` says how to go ahead.
    """
    rendered = []
    for step, upward in steps:
        try:
            rendered.append((step.revision, render(step, upgrade=upward)))
        except Exception as err:  # any code in a revision file can fail offline
            way = "upgrade" if upward else "downgrade"
            raise DataLossError(
                f"cannot tell what {way[:-1]}ing {step.revision} destroys: its {way}() "
                f"does not run offline ({type(err).__name__}); check it by hand, then {hint}"
            ) from err
    return count_losses(connection, rendered)


def describe_losses(losses: Iterable[Loss]) -> str:
    """The losses that lose something, as one line: ``playlists.description (3 non-null values)``.

    Examples
    --------
    >>> describe_losses([Loss("0002", "playlists", "description", 3, "non-null values"),
    ...                  Loss("0001", "songs", "*", 1, "rows"), Loss("0001", "playlists", "*", 0, "rows")])
    'playlists.description (3 non-null values), songs (1 row)'
    """
    return ", ".join(
        f"{loss.table}{'' if loss.column == '*' else '.' + loss.column} "
        f"({loss.lost} {_ONE.get(loss.what, loss.what) if loss.lost == 1 else loss.what})"
        for loss in losses if loss.lost > 0
    )


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
    ``downgrade()`` is rendered as offline SQL; every ``DROP TABLE`` counts
    that table's rows, every ``DROP COLUMN`` that column's non-null values,
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
        When a revision's step cannot be rendered offline, so its loss is unknown.

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
    cfg = resolve(config)
    check_revision(revision)
    history = script_directory(cfg)
    with alembic_errors(cfg):
        steps = planned(history, current_heads(cfg), revision)
    with alembic_errors(cfg), connection(cfg) as conn:
        losses = count_steps(conn, steps, "pass allow_data_loss=True")
    import pandas as pd

    return pd.DataFrame(losses, columns=LOSS_COLUMNS).astype({"lost": "int64"})


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
                raise DataLossError(f"{way} to {shown} would destroy {what}; {hint}")
            return steps

        return checked

    wrap_plan(context, wrap)


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
