"""The schema at any revision: the history replayed into a cached database, read once, briefly.

Private to :mod:`playlist_tools.schema`, which re-exports :func:`at` and
:class:`SchemaAt`. The replay is ``migrations._replay.template``'s cache
database (one per revision and per content of the files leading to it); it
is read here on a connection of its own (no pool) that is closed before
:func:`at` returns, because a copy of the cache waits while anyone is
connected to it. Everything a :class:`SchemaAt` answers was read then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from alembic.config import Config

from playlist_tools import db
from playlist_tools._mermaid import MermaidDiagram
from playlist_tools.history import resolve, template
from playlist_tools.schema._draw import draw
from playlist_tools.schema._live import all_columns, columns_of, overview

__all__ = ["SchemaAt", "at"]

_READ: dict[tuple[str, str], dict[str, Any]] = {}
"""What was read from each cache database (by server and name): a cache never changes, its name says its content."""
_READ_KEPT = 64

_INDEXES = sa.text("""
    SELECT t.relname AS "table", ic.relname AS name, pg_get_indexdef(i.indexrelid) AS definition,
           i.indisunique AS "unique", am.amname AS method,
           ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                   FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k) AS keys,
           pg_get_expr(i.indpred, i.indrelid) AS predicate
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_am am ON am.oid = ic.relam
    WHERE t.relnamespace = current_schema()::regnamespace AND t.relkind IN ('r', 'p')
      -- The index of a primary key, unique or exclusion constraint is that constraint's.
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                        AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
    ORDER BY 1, 2
""")

_CONSTRAINTS = sa.text("""
    SELECT t.relname AS "table", k.conname AS name, k.contype AS type, pg_get_constraintdef(k.oid) AS definition,
           ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u(n, o)
                   JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o) AS columns,
           rt.relname AS ref_table,
           ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY AS u(n, o)
                   JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o) AS ref_columns
    FROM pg_constraint k
    JOIN pg_class t ON t.oid = k.conrelid
    LEFT JOIN pg_class rt ON rt.oid = k.confrelid
    -- PostgreSQL 18 keeps NOT NULL as constraints ('n'); nullability is the column's, as on 15.
    WHERE t.relnamespace = current_schema()::regnamespace AND t.relkind IN ('r', 'p') AND k.contype <> 'n'
    ORDER BY 1, 2
""")


class SchemaAt:
    """The schema at one revision, as a database migrated to it from scratch has it (no rows).

    Made by :func:`at`; answers like the live functions of
    :mod:`playlist_tools.schema`, from what was read when it was made.

    Attributes
    ----------
    revision : str
        The revision as asked for (``"head"``, ``"0002"``, ``"-1"``...).
    ids : tuple of str
        The revision id(s) that is (``()`` at base).
    """

    def __init__(self, revision: str, ids: tuple[str, ...], config: Config, found: dict[str, Any]) -> None:
        self.revision = revision
        self.ids = ids
        self._config = config
        self._tables: pd.DataFrame = found["tables"]
        self._columns: pd.DataFrame = found["columns"]
        self._indexes: list[dict[str, Any]] = found["indexes"]
        self._constraints: list[dict[str, Any]] = found["constraints"]

    @property
    def name(self) -> str:
        """How messages and diagrams name this revision: ``0002``, or ``head (0005)``."""
        shown = ", ".join(self.ids) or "base"
        return shown if shown == self.revision else f"{self.revision} ({shown})"

    def tables(self) -> pd.DataFrame:
        """As :func:`playlist_tools.schema.tables`; ``rows`` are those of a fresh migration (``alembic_version``: 1)."""
        return self._tables.copy()

    def columns(self, table: str) -> pd.DataFrame:
        """As :func:`playlist_tools.schema.columns`.

        Raises
        ------
        SchemaError
            When the table is not there at this revision.
        """
        return columns_of(self._columns, table, f"at revision {self.name}", "none at base")

    def erd(self, *, exclude: Sequence[str] = ("alembic_version",), since: str | SchemaAt | None = None
            ) -> MermaidDiagram:
        """The ER diagram at this revision, as :func:`playlist_tools.schema.erd` draws it.

        Parameters
        ----------
        exclude : sequence of str
            Tables to leave out; by default Alembic's bookkeeping table.
        since : str or SchemaAt, optional
            An earlier (or any other) revision: mark what changed since it.
            Added tables and columns are marked ``added``, and changed ones
            ``changed`` (renamed, retyped, nullability, default; a table whose
            columns, indexes or constraints changed). Dropped tables and
            columns are still drawn, marked ``dropped``, after what is there.
            Each mark is the entity's colour and label and the column's
            comment (see :func:`playlist_tools.schema.diff` for the rules).
        """
        if since is None:
            return draw(self._columns, exclude)
        # _diff builds on this module, so it is imported only when a diagram of changes is asked for.
        from playlist_tools.schema import _diff

        old = since if isinstance(since, SchemaAt) else at(since, self._config)
        return draw(self._columns, exclude, _diff.marks(old, self, exclude))

    def __repr__(self) -> str:
        names = self._tables["name"].tolist()
        return f"<schema at {self.name}: {len(names)} tables ({', '.join(names) or 'none'})>"


def _read(connection: sa.Connection) -> dict[str, Any]:
    has_version = connection.execute(sa.text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar_one()
    ids = connection.execute(sa.text("SELECT version_num FROM alembic_version ORDER BY 1")).scalars().all() \
        if has_version else []
    described = all_columns(connection)
    return {
        "ids": tuple(ids),
        "tables": overview(connection, described),
        "columns": described,
        "indexes": [dict(row) for row in connection.execute(_INDEXES).mappings()],
        "constraints": [dict(row) for row in connection.execute(_CONSTRAINTS).mappings()],
    }


def at(revision: str, config: Config | None = None) -> SchemaAt:
    """The schema at ``revision``, without touching your database.

    The history up to ``revision`` is replayed (schema only) into a cache
    database on the same server as the config's database, once per
    revision and content of its files; later calls read that cache.

    Parameters
    ----------
    revision : str
        An id (``"0002"``), ``"head"``, ``"base"``, or relative (``"head-1"``).
    config : alembic.config.Config or None
        The migrations and the server, as in :mod:`playlist_tools.migrations`.

    Returns
    -------
    SchemaAt
        ``tables()``, ``columns(table)`` and ``erd()``, as the live functions.

    Raises
    ------
    RevisionError
        For a revision the history does not know (the message lists them).
    MigrationError
        When the role may not create databases (it needs ``CREATEDB``).

    Examples
    --------
    >>> first = at("0001")
    >>> first
    <schema at 0001: 4 tables (alembic_version, playlist_song_association, playlists, songs)>
    >>> "description" in first.columns("playlists")["name"].tolist()
    False
    >>> at("head").columns("playlists")["name"].tolist()
    ['playlist_id', 'title', 'created_at', 'description']
    """
    cfg = resolve(config)
    url = template(cfg, revision)  # checks the revision files' digest every time: an edited file is a new cache
    key = (url.render_as_string(hide_password=True), str(url.database))
    if key not in _READ:
        engine = db.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                found = _read(connection)
        finally:
            engine.dispose()
        if len(_READ) >= _READ_KEPT:
            _READ.pop(next(iter(_READ)))
        _READ[key] = found
    return SchemaAt(revision, _READ[key]["ids"], cfg, _READ[key])
