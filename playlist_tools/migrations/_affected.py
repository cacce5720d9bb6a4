"""Which saved queries a migration breaks or changes, checked on a replay of the history.

Private to :mod:`playlist_tools.migrations`, which exports :func:`affected_queries`.

Which queries: a dict name -> SQL, a folder of ``.sql`` files, or the
package's own saved queries (:func:`package_queries`); each is checked for
being one statement that only reads, with frames' own tokenizer
(``playlist_tools._sql_text``), before anything connects (:func:`named`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Union

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import URL, Connection

from playlist_tools import _sql_text, db, frames
from playlist_tools import queries as saved_queries
from playlist_tools.errors import FrameError, MigrationError, SettingError, first_line, one_line, sqlstate
from playlist_tools.history import alembic_errors, candidates, current_heads, replayed, resolve, template

__all__ = ["AFFECTED_COLUMNS", "Statement", "affected_queries", "named", "package_queries"]

Statement = Union[sa.TextClause, sa.Select]
_SELECT_LIKE = {"select", "with", "values", "table"}
_WRITES = {"insert", "update", "delete", "merge"}


def _refuse(name: str, problem: str) -> FrameError:
    return FrameError(f"query {name!r:.80} {problem}; affected_queries takes one SELECT, WITH, VALUES or TABLE "
                      "query per name (run other statements yourself)")


def _checked(name: str, text: str) -> str:
    """``text`` when it is one query that only reads; else a one-line error naming the query."""
    pieces = [(kind, piece) for kind, piece in _sql_text.tokens(text) if kind not in ("line", "block")
              and not piece.isspace()]
    first = next((piece for kind, piece in pieces if piece != "("), None)
    if first is None:
        raise _refuse(name, "is empty")
    if first.lower() not in _SELECT_LIKE:
        raise _refuse(name, f"starts with {one_line(first, 30)!r}, so it is not a query")
    if _sql_text.more_than_one_statement(text):
        raise _refuse(name, "holds more than one statement")
    # A statement in parentheses is a data-modifying WITH; INTO outside literals only ever means SELECT ... INTO.
    writes = [piece.lower() for (_, before), (kind, piece) in zip(pieces, pieces[1:], strict=False)
              if kind == "word" and ((piece.lower() in _WRITES and before == "(") or piece.lower() == "into")]
    if writes:
        raise _refuse(name, f"writes ({writes[0].upper()})")
    return text


def _statement(name: object, query: object) -> tuple[str, Statement]:
    if not isinstance(name, str) or not name.strip():
        raise SettingError(f"query name {name!r:.80} is no name; name each query, e.g. {{'top_songs': 'SELECT ...'}}")
    if isinstance(query, str):
        return name, sa.text(_sql_text.sql_text(_checked(name, query)))
    if isinstance(query, sa.TextClause):
        _checked(name, query.text)
        return name, query
    if isinstance(query, sa.Select):
        return name, query
    raise SettingError(f"query {name!r:.80} is a {type(query).__name__}, not SQL; pass SQL text, text() or select()")


def package_queries() -> dict[str, Statement]:
    """The saved queries of :mod:`playlist_tools.queries`, by the name of the function that runs each.

    Every module-level ``text()`` or ``select()`` of that module is one;
    it is named after the one public function whose code uses it (else
    after itself: ``_SUMMARY`` would be ``summary``). The lookups written
    inside the functions (a playlist by title, whether a song exists) are
    not saved queries and are left out.

    Examples
    --------
    >>> sorted(package_queries())
    ['playlist_songs', 'playlist_summary', 'song_playlists']
    """
    found = {attr: v for attr, v in vars(saved_queries).items() if isinstance(v, (sa.TextClause, sa.Select))}
    users: dict[str, list[str]] = {}
    for function in saved_queries.__all__:
        code = getattr(getattr(saved_queries, function), "__code__", None)
        used = [attr for attr in (code.co_names if code else ()) if attr in found]
        for attr in used:
            users.setdefault(attr, []).append(function if len(used) == 1 else f"{function}.{attr.strip('_').lower()}")
    return {(users[attr][0] if len(users.get(attr, ())) == 1 else attr.strip("_").lower()): value
            for attr, value in found.items()}


def _folder(path: Path) -> dict[str, str]:
    shown = one_line(str(path), 120)
    if not path.is_dir():
        raise SettingError(f"queries={shown!r} is not a folder; pass a folder of .sql files, a dict name -> SQL, "
                           "or None for the package's queries")
    files = sorted(p for p in path.glob("*.sql") if p.is_file())
    if not files:
        raise SettingError(f"folder {shown!r} has no .sql files; put one query per NAME.sql in it")
    try:
        return {file.stem: file.read_text(encoding="utf-8") for file in files}
    except (OSError, UnicodeDecodeError) as err:
        raise SettingError(f"cannot read a query file in {shown!r}: {one_line(first_line(err), 120)}; "
                           "save each as UTF-8 text") from err


def named(queries: Mapping[str, object] | str | PathLike[str] | None) -> dict[str, Statement]:
    if queries is None:
        queries = package_queries()
    elif isinstance(queries, (str, os.PathLike)):
        queries = _folder(Path(queries))
    if not isinstance(queries, Mapping):
        raise SettingError(f"queries={queries!r:.80} is a {type(queries).__name__}; pass a dict name -> SQL, "
                           "a folder of .sql files, or None for the package's queries")
    if not queries:
        raise SettingError("queries={} names no query; pass a dict name -> SQL, or None for the package's queries")
    return dict(sorted((_statement(name, query) for name, query in queries.items()), key=lambda item: item[0]))


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
