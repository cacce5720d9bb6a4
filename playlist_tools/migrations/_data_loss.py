"""What a downgrade destroys, counted before it runs.

Private to :mod:`playlist_tools.migrations`, which re-exports :func:`data_loss`.

The rule, for each revision a downgrade would revert:

1. render its ``downgrade()`` as offline SQL (no database involved);
2. every ``DROP TABLE t`` loses the rows of ``t``; every
   ``ALTER TABLE t DROP COLUMN c`` loses the non-null values of ``t.c``;
   renames, index drops and the like lose nothing;
3. count those in the database as it is now, except where
   :data:`LOSS_QUERIES` knows that a drop loses less.

A table or column that does not exist yet (one that another step of the
same downgrade would create or rename) is skipped.

Examples
--------
>>> from alembic.script import ScriptDirectory
>>> from playlist_tools import migrations
>>> script = ScriptDirectory.from_config(migrations.config())
>>> drops(render_downgrade(script.get_revision("0002")))
[('playlists', 'description')]
>>> drops(render_downgrade(script.get_revision("0004")))
[]
"""

from __future__ import annotations

import io
import re

import pandas as pd
import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from sqlalchemy.engine import Connection

from playlist_tools.errors import DataLossError
from playlist_tools.migrations._config import connection, current_heads, resolve, script
from playlist_tools.migrations._errors import alembic_errors, check_revision

LOSS_COLUMNS = ["rev", "table", "column", "lost", "what"]
"""The columns of :func:`count_losses`; ``column`` is ``"*"`` for a whole table."""

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

Kept here, keyed by revision id, because revision files are history, not
code to change; a revision that drops another column falls back to the
general rule.
"""

_DROP_TABLE = re.compile(r'\bDROP TABLE (?:IF EXISTS )?"?(\w+)"?')
_DROP_COLUMN = re.compile(r'\bALTER TABLE "?(\w+)"? DROP COLUMN (?:IF EXISTS )?"?(\w+)"?')


def render_downgrade(script: Script) -> str:
    """The SQL of one revision's ``downgrade()``, rendered offline for PostgreSQL.

    Raises whatever the revision's code raises when it needs a live
    database (``op.get_bind()``); the caller decides what that means.
    """
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql",
        opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True},
    )
    with Operations.context(context):
        script.module.downgrade()
    return buffer.getvalue()


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


def count_losses(connection: Connection, rendered: list[tuple[str, str]]) -> pd.DataFrame:
    """Count what each ``(revision, downgrade SQL)`` would destroy, in the database as it is now.

    Returns
    -------
    pandas.DataFrame
        ``rev, table, column, lost, what``, one row per drop, in downgrade order.
    """
    inspector = sa.inspect(connection)
    rows = []
    for rev, sql in rendered:
        for table, column in drops(sql):
            if not inspector.has_table(table):
                continue
            if column == "*":
                query, what = sa.select(sa.func.count()).select_from(sa.table(table)), "rows"
            elif column in {c["name"] for c in inspector.get_columns(table)}:
                special, what = LOSS_QUERIES.get((rev, table, column), (None, "non-null values"))
                query = sa.text(special) if special else (
                    sa.select(sa.func.count(sa.column(column))).select_from(sa.table(table))
                )
            else:
                continue
            rows.append((rev, table, column, int(connection.execute(query).scalar_one()), what))
    return pd.DataFrame(rows, columns=LOSS_COLUMNS).astype({"lost": "int64"})


def describe_losses(losses: pd.DataFrame) -> str:
    """The rows that lose something, as one line: ``playlists.description (3 non-null values)``.

    Examples
    --------
    >>> frame = pd.DataFrame([("0002", "playlists", "description", 3, "non-null values"),
    ...                       ("0001", "songs", "*", 0, "rows")], columns=LOSS_COLUMNS)
    >>> describe_losses(frame)
    'playlists.description (3 non-null values)'
    """
    lost = losses[losses["lost"] > 0]
    return ", ".join(
        f"{row.table}{'' if row.column == '*' else '.' + row.column} ({row.lost} {row.what})"
        for row in lost.itertuples()
    )


def data_loss(config: Config | None = None, revision: str = "-1") -> pd.DataFrame:
    """What ``downgrade(config, revision)`` would destroy, counted before anything runs.

    For each revision the downgrade would revert, its ``downgrade()`` is
    rendered as offline SQL; every ``DROP TABLE`` counts that table's rows,
    every ``DROP COLUMN`` that column's non-null values, in the database as
    it is now. A few drops lose less than that, and
    :data:`LOSS_QUERIES` says how much
    (e.g. 0003's ``position``: only entries out of song order). Renames
    destroy nothing and are not listed. A table or column that does not
    exist yet (created by another step of the same downgrade) is skipped.

    Returns
    -------
    pandas.DataFrame
        Columns ``rev, table, column, lost, what``; ``column`` is ``"*"`` for a whole table.

    Raises
    ------
    DataLossError
        When a revision's downgrade cannot be rendered offline, so its loss is unknown.

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
    >>> loss
        rev                      table       column  lost             what
    0  0002                  playlists  description     1  non-null values
    1  0001  playlist_song_association            *     0             rows
    2  0001                      songs            *     0             rows
    3  0001                  playlists            *     2             rows
    """
    cfg = resolve(config)
    check_revision(revision)
    history = script(cfg)
    with alembic_errors(cfg):
        # The walk command.downgrade plans with: the same revisions, in the same order.
        reverted = list(history.iterate_revisions(current_heads(cfg), revision, select_for_downgrade=True))
    rendered = []
    for step in reverted:
        try:
            rendered.append((step.revision, render_downgrade(step)))
        except Exception as err:  # any code in a revision file can fail offline
            raise DataLossError(
                f"cannot tell what downgrading {step.revision} destroys: its downgrade() "
                f"does not run offline ({type(err).__name__}); check by hand, then pass allow_data_loss=True"
            ) from err
    with alembic_errors(cfg), connection(cfg) as conn:
        return count_losses(conn, rendered)
