"""The queries :func:`~playlist_tools.migrations.affected_queries` checks: named, one read-only statement each.

Private to :mod:`playlist_tools.migrations`. A dict name -> SQL, a folder of
``.sql`` files, or the package's own saved queries; each is checked for
being one statement that only reads, with frames' own tokenizer
(``playlist_tools._sql_text``), before anything connects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Union

import sqlalchemy as sa

from playlist_tools import _sql_text
from playlist_tools import queries as saved_queries
from playlist_tools.errors import FrameError, SettingError, first_line, one_line

__all__ = ["Statement", "named", "package_queries"]

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
