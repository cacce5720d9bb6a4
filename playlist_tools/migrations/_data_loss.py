"""What a migration destroys, counted before it runs: upgrades and downgrades alike.

Private to :mod:`playlist_tools.migrations`, which re-exports :func:`data_loss`;
``alembic/env.py`` counts with :func:`count_steps` inside the migration lock
(see :mod:`playlist_tools.migrations._consent`).

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

Examples
--------
>>> from alembic.script import ScriptDirectory
>>> from playlist_tools import migrations
>>> script = ScriptDirectory.from_config(migrations.config())
>>> drops(render(script.get_revision("0002")))
[('playlists', 'description')]
>>> drops(render(script.get_revision("0002"), upgrade=True)), drops(render(script.get_revision("0004")))
([], [])
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError as AlembicRevisionError
from sqlalchemy.engine import Connection

from playlist_tools.errors import DataLossError
from playlist_tools.migrations._config import connection, current_heads, resolve, script
from playlist_tools.migrations._errors import alembic_errors, check_revision
from playlist_tools.migrations._offline import render

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
    history = script(cfg)
    with alembic_errors(cfg):
        steps = planned(history, current_heads(cfg), revision)
    with alembic_errors(cfg), connection(cfg) as conn:
        losses = count_steps(conn, steps, "pass allow_data_loss=True")
    import pandas as pd

    return pd.DataFrame(losses, columns=LOSS_COLUMNS).astype({"lost": "int64"})
