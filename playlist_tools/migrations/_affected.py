"""Which saved queries a migration breaks or changes, checked on a replay of the history.

Private to :mod:`playlist_tools.migrations`, which exports :func:`affected_queries`.
Which queries, and their checks, live in ``_saved_queries``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import URL, Connection

from playlist_tools import db, frames
from playlist_tools.errors import FrameError, MigrationError, first_line, one_line, sqlstate
from playlist_tools.migrations._config import current_heads, resolve
from playlist_tools.migrations._errors import alembic_errors
from playlist_tools.migrations._renames import candidates
from playlist_tools.migrations._replay import replayed, template
from playlist_tools.migrations._saved_queries import Statement, named

__all__ = ["AFFECTED_COLUMNS", "affected_queries"]

AFFECTED_COLUMNS = ("name", "status", "reason", "changes", "before", "after")
"""The columns of :func:`affected_queries`' DataFrame, in order."""

_TIMEOUT_MS = 10_000  # per query: describing is planning only, but a query may hide a slow function call
_REASON_CHARS = 120
_UNDETERMINED = "42P18"  # could not determine data type of parameter $n
_READ_ONLY = "25006"  # cannot execute ... in a read-only transaction


@dataclass(frozen=True)
class _Described:
    columns: tuple[tuple[str, str], ...] | None  # (name, pandas dtype) of each column; None when it fails
    reason: str | None = None  # the server's first line, when it fails
    state: str | None = None  # its SQLSTATE


def _wrapped(statement: Statement, typed: frozenset[str]) -> tuple[Statement, dict[str, object] | None]:
    """``statement`` as ``SELECT * FROM (...) AS q LIMIT 0``; an unbound placeholder is NULL (text, if ``typed``)."""
    if isinstance(statement, sa.Select):  # its own bound values (and their types) go with it
        return sa.select(sa.text("*")).select_from(statement.subquery("q")).limit(0), None
    binds = statement.compile().binds  # a text()'s own bindparams keep their types and values
    # A NULL of unknown type takes the type its use implies; where none is implied, a text NULL as a str would be.
    binds.update({name: sa.bindparam(name, type_=sa.String) for name in typed})
    # The newlines keep a trailing "--" comment of the query from eating the closing parenthesis.
    wrapped = sa.text(f"SELECT * FROM (\n{statement.text}\n) AS q LIMIT 0").bindparams(*binds.values())
    return wrapped, {name: bind.value for name, bind in binds.items()}


def _describe(conn: Connection, statement: Statement) -> _Described:
    typed: frozenset[str] = frozenset()
    while True:
        wrapped, params = _wrapped(statement, typed)
        try:
            empty = frames.read_frame(wrapped, conn, params)
        except FrameError as err:
            cause = err.__cause__ or err
            names = list(params or ())
            if sqlstate(cause) == _UNDETERMINED and len(typed) < len(names):
                number = first_line(cause).rpartition("$")[2]
                undetermined = names[int(number) - 1] if number.isdigit() and int(number) <= len(names) else None
                typed = typed | {undetermined} if undetermined and undetermined not in typed else frozenset(names)
                continue
            return _Described(None, one_line(first_line(cause), _REASON_CHARS), sqlstate(cause))
        return _Described(tuple((str(column), str(dtype)) for column, dtype in empty.dtypes.items()))


def _describe_at(cfg: Config, revision: str, statements: dict[str, Statement]) -> dict[str, _Described]:
    """Each query described on the schema cache of ``revision``, read-only and rolled back.

    Read-only, so nothing a query does (``nextval()``) can change the cache;
    the few a read-only transaction refuses (``FOR UPDATE``, ``setval()``)
    are described again on a throwaway copy, where their effects go nowhere.
    """
    described = _described_on(template(cfg, revision), statements, read_only=True)
    writers = {name: statements[name] for name, found in described.items() if found.state == _READ_ONLY}
    if writers:
        with replayed(cfg, revision, prefix="playlist_tools_affected") as url:
            described.update(_described_on(url, writers, read_only=False))
    return described


def _described_on(url: URL, statements: dict[str, Statement], *, read_only: bool) -> dict[str, _Described]:
    with db.connection(url) as conn:
        try:
            if read_only:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {_TIMEOUT_MS}")
            return {name: _describe(conn, statement) for name, statement in statements.items()}
        finally:
            conn.rollback()


def _changes(before: tuple[tuple[str, str], ...], after: tuple[tuple[str, str], ...]) -> str | None:
    """What differs, as ``old -> new (dtype)``, ``-name dtype``, ``+name dtype``, ``name: dtype -> dtype``."""
    if before == after:
        return None
    old, new = dict(before), dict(after)
    dropped = {n: t for n, t in old.items() if n not in new}
    added = {n: t for n, t in new.items() if n not in old}
    pairs = candidates(dropped, added)
    once = [(o, n) for o, n in pairs if sum(o in p or n in p for p in pairs) == 1]  # unambiguous only
    renamed = {o for o, _ in once} | {n for _, n in once}
    parts = [f"{o} -> {n} ({old[o]})" for o, n in once]
    parts += [f"-{n} {t}" for n, t in dropped.items() if n not in renamed]
    parts += [f"+{n} {t}" for n, t in added.items() if n not in renamed]
    parts += [f"{n}: {old[n]} -> {t}" for n, t in new.items() if n in old and old[n] != t]
    if not parts:  # same names and dtypes: the order (or a repeated name) changed
        parts = [f"columns: {', '.join(n for n, _ in before)} -> {', '.join(n for n, _ in after)}"]
    return "; ".join(parts)


def _row(name: str, before: _Described, after: _Described) -> dict[str, str | None]:
    if after.columns is None:
        status, reason, changes = ("fails" if before.columns is None else "breaks"), after.reason, None
    elif before.columns is None:
        status, reason, changes = "repaired", before.reason, None
    else:
        changes = _changes(before.columns, after.columns)
        status, reason = ("ok" if changes is None else "changes"), None
    shown = (None if d.columns is None else ", ".join(f"{n} {t}" for n, t in d.columns) for d in (before, after))
    return dict(zip(AFFECTED_COLUMNS, (name, status, reason, changes, *shown), strict=True))


def affected_queries(
    config: Config | None = None,
    target: str = "head",
    queries: Mapping[str, str | sa.TextClause | sa.Select] | str | PathLike[str] | None = None,
) -> pd.DataFrame:
    """Which queries would fail, or return other columns or dtypes, once the database is at ``target``.

    Each query is described (``SELECT * FROM (<query>) AS q LIMIT 0``
    through :func:`~playlist_tools.frames.read_frame`, which gives the
    dtypes a real read would) on the schema at the database's current
    revision ("before") and at ``target`` ("after"), both replayed from the
    history on the same server (cached, no rows), in a read-only
    transaction that is rolled back, with a 10 s ``statement_timeout`` per
    query. The database itself is not touched: only its ``alembic_version``
    is read. ``:name`` placeholders are bound as NULL: a NULL of no stated
    type takes the type its use implies (``genre = :g``), and one whose
    type nothing implies (``:g IS NULL``) is sent as a text NULL, as a str
    would be.

    Parameters
    ----------
    config : alembic.config.Config or None
        The migrations and the database (see :mod:`playlist_tools.migrations`).
    target : str
        The revision to check against: an id, ``head`` or ``base``.
    queries : dict, str, PathLike or None
        A dict name -> SQL text (or ``text()`` / ``select()``); a folder of
        ``NAME.sql`` files, one query each (not its subfolders); or None for
        the saved queries of :mod:`playlist_tools.queries`, named after the
        functions that run them. Each must be one ``SELECT``, ``WITH``,
        ``VALUES`` or ``TABLE`` query that writes nothing.

    Returns
    -------
    pandas.DataFrame
        One row per query, by name, with :data:`AFFECTED_COLUMNS` (all
        ``string``): ``name``; ``status``: ``ok`` (same columns and dtypes),
        ``changes`` (runs, other columns or dtypes), ``breaks`` (ran before,
        fails at target), ``repaired`` (failed before, runs at target),
        ``fails`` (fails before and at target); ``reason``: the server's
        message where it fails (at target; before, for ``repaired``), cut to
        120 characters; ``changes``: ``old -> new (dtype)`` for a column that
        looks renamed (same dtype, one dropped and one added), ``-name dtype``,
        ``+name dtype``, ``name: dtype -> dtype``, ``;``-separated; ``before``
        and ``after``: the columns as ``name dtype, ...``, NA where it fails.

    Raises
    ------
    SettingError
        For ``queries`` that is not a folder, a folder with no ``.sql`` file,
        or an empty dict.
    FrameError
        For a query that is not one statement that only reads (named).
    RevisionError
        For an unknown ``target``.
    MigrationError
        When the database is at several heads, or the history cannot be replayed.

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open() as ws:
    ...     _ = migrations.upgrade(ws.config, "0003")
    ...     report = migrations.affected_queries(ws.config, "0004", {
    ...         "formats": "SELECT media_type, count(*) AS n FROM songs WHERE genre = :genre GROUP BY 1",
    ...         "new_formats": "SELECT file_format FROM songs",
    ...         "everything": "SELECT * FROM songs"})
    >>> report[["name", "status", "reason"]]
              name    status                               reason
    0   everything   changes                                 <NA>
    1      formats    breaks   column "media_type" does not exist
    2  new_formats  repaired  column "file_format" does not exist
    >>> report.loc[0, "changes"], report.loc[2, "after"]
    ('media_type -> file_format (string)', 'file_format string')
    """
    cfg = resolve(config)
    statements = named(queries)
    with alembic_errors(cfg):
        heads = current_heads(cfg)
    if len(heads) > 1:
        raise MigrationError(f"the database is at several heads ({', '.join(heads)}); check one branch at a time, "
                             "or merge them first (migrations.merge)")
    current = heads[0] if heads else "base"
    after = _describe_at(cfg, target, statements)
    same = template(cfg, current) == template(cfg, target)
    before = after if same else _describe_at(cfg, current, statements)
    text = frames.pandas_dtype(pa.string())
    rows = [_row(name, before[name], after[name]) for name in statements]
    return pd.DataFrame(rows, columns=list(AFFECTED_COLUMNS)).astype(text)
