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

A table or column that does not exist yet (one that another step of the
same run would create or rename) is skipped. Statements that delete rows
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

import contextlib
import io
import logging
import re
from collections.abc import Iterable, Iterator

import pandas as pd
import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError as AlembicRevisionError
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

Kept here, keyed by the revision whose step (up or down) drops the column,
because revision files are history, not code to change; a revision that
drops another column falls back to the general rule.
"""

_DROP_TABLE = re.compile(r'\bDROP TABLE (?:IF EXISTS )?"?(\w+)"?')
_DROP_COLUMN = re.compile(r'\bALTER TABLE "?(\w+)"? DROP COLUMN (?:IF EXISTS )?"?(\w+)"?')


def render(script: Script, *, upgrade: bool = False) -> str:
    """The SQL of one revision's ``downgrade()`` (or ``upgrade()``), rendered offline for PostgreSQL.

    Raises whatever the revision's code raises when it needs a live
    database (``op.get_bind()``); the caller decides what that means.
    Safe inside a run in progress (see :func:`kept_proxies`).
    """
    buffer = io.StringIO()
    with quiet_alembic():
        context = MigrationContext.configure(
            dialect_name="postgresql",
            opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True},
        )
    with quiet_alembic(), kept_proxies(), Operations.context(context):
        (script.module.upgrade if upgrade else script.module.downgrade)()
    return buffer.getvalue()


@contextlib.contextmanager
def quiet_alembic() -> Iterator[None]:
    """Keep out of the log Alembic's INFO lines (``Context impl ...``) about work done on the side.

    Rendering a step offline, or replaying the history elsewhere, is not what
    the user's command does; its lines would only confuse (and would change
    notebook outputs that show the CLI's log).
    """
    loggers = [logging.getLogger(name) for name in ("alembic", "alembic.runtime.migration")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def kept_proxies() -> Iterator[None]:
    """Run Alembic inside a run of Alembic: ``alembic.op`` and ``alembic.context`` work again after.

    Both are module-level proxies that an inner ``Operations.context`` or
    ``EnvironmentContext`` installs and, on exit, *removes* instead of
    restoring the outer one; the outer run's ``op.add_column`` (and its own
    exit) would then fail. Only Alembic's private ``_proxy`` says which was
    installed, so this is the one place that reads it.
    """
    from alembic import context, op

    outer = [getattr(module, "_proxy", None) for module in (context, op)]
    try:
        yield
    finally:
        for proxy in outer:
            if proxy is not None:
                proxy._install_proxy()


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
    """Count what each ``(revision, step SQL)`` would destroy, in the database as it is now.

    Returns
    -------
    pandas.DataFrame
        ``rev, table, column, lost, what``, one row per drop, in run order.
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


def count_steps(connection: Connection, steps: Iterable[tuple[Script, bool]], hint: str) -> pd.DataFrame:
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
        return count_steps(conn, steps, "pass allow_data_loss=True")
