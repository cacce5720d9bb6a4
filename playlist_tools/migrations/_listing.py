"""Listings: revisions and autogenerate diffs as DataFrames, in a deterministic order.

The table-shaping half of :mod:`playlist_tools.migrations`: nothing here
touches a database or a file, so everything is easy to test on its own.

Examples
--------
>>> from alembic.script import ScriptDirectory
>>> from playlist_tools import migrations
>>> script = ScriptDirectory.from_config(migrations.config())
>>> [s.revision for s in ordered(script.walk_revisions())][:3]
['0001', '0002', '0003']
>>> sorted(ancestors(script, ["0002"]))
['0001', '0002']
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from alembic import util
from alembic.script import Script, ScriptDirectory
from sqlalchemy.dialects import postgresql

__all__ = ["COLUMNS", "DIFF_COLUMNS", "down_revisions", "ancestors", "ordered", "revision_frame", "diff_frame"]

COLUMNS = ["rev", "down_rev", "message", "is_current", "is_head"]
"""The columns of every revision listing (``current``, ``history``, ``heads``, ``upgrade``...)."""

DIFF_COLUMNS = ["op", "table", "name", "detail"]
"""The columns of ``preview`` and ``check``."""


def down_revisions(script: Script) -> tuple[str, ...]:
    """The revisions ``script`` revises: none for a base, two or more for a merge."""
    return tuple(util.to_tuple(script.down_revision, default=()))


def ancestors(script: ScriptDirectory, revs: Iterable[str]) -> set[str]:
    """``revs`` and every revision below them: what a database at ``revs`` has applied."""
    seen: set[str] = set()
    todo = list(revs)
    while todo:
        rev = todo.pop()
        if rev not in seen:
            seen.add(rev)
            todo.extend(down_revisions(script.get_revision(rev)))  # type: ignore[arg-type]
    return seen


def ordered(scripts: Iterable[Script]) -> list[Script]:
    """Base first, each revision after those it revises; parallel branches by id.

    Alembic walks its map in no promised order; notebook outputs need one.
    """
    pending = {s.revision: s for s in scripts}
    placed: list[Script] = []
    while pending:
        ready = min(
            rev for rev, s in pending.items() if not set(down_revisions(s)) & pending.keys()
        )
        placed.append(pending.pop(ready))
    return placed


def revision_frame(scripts: Iterable[Script], current: Iterable[str], heads: Iterable[str]) -> pd.DataFrame:
    """One row per revision: ``rev, down_rev, message, is_current, is_head``.

    ``down_rev`` is ``"base"`` for a first revision and ``"a, b"`` for a merge;
    ``message`` is the first paragraph of the file's docstring.
    """
    rows = list(scripts)
    current, heads = set(current), set(heads)
    data = {
        "rev": [s.revision for s in rows],
        "down_rev": [", ".join(down_revisions(s)) or "base" for s in rows],
        "message": [s.doc for s in rows],
        "is_current": [s.revision in current for s in rows],
        "is_head": [s.revision in heads for s in rows],
    }
    return pd.DataFrame(data, columns=COLUMNS).astype({"is_current": bool, "is_head": bool})


def _sql_type(value: object) -> str:
    compile_ = getattr(value, "compile", None)
    return str(compile_(dialect=postgresql.dialect())) if compile_ else repr(value)


def _diff_row(diff: tuple[object, ...]) -> tuple[str, str, str, str]:
    """One autogenerate diff tuple (``UpgradeOps.as_diffs()``) as (op, table, name, detail)."""
    kind, rest = str(diff[0]), diff[1:]
    if kind.endswith("_column"):  # (kind, schema, table name, Column)
        _, table_name, column = rest
        null = "NULL" if column.nullable else "NOT NULL"  # type: ignore[attr-defined]
        return kind, str(table_name), column.name, f"{_sql_type(column.type)} {null}"  # type: ignore[attr-defined]
    if kind.startswith("modify_"):  # (kind, schema, table, column, existing, old, new)
        _, table_name, column_name, _, old, new = rest
        return kind, str(table_name), str(column_name), f"{_sql_type(old)} -> {_sql_type(new)}"
    item = rest[0]  # a Table, Index or Constraint
    if kind.endswith("_table"):
        return kind, item.name, "", ", ".join(c.name for c in item.columns)  # type: ignore[attr-defined]
    table = getattr(item, "table", None)
    columns = ", ".join(c.name for c in getattr(item, "columns", []))
    return kind, str(getattr(table, "name", "")), str(getattr(item, "name", "") or ""), columns


def diff_frame(diffs: Iterable[object]) -> pd.DataFrame:
    """Autogenerate's diffs as rows ``op, table, name, detail``, in the file's order.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> column = sa.Column("description", sa.Text())
    >>> diff_frame([("add_column", None, "playlists", column)])
               op      table         name     detail
    0  add_column  playlists  description  TEXT NULL
    """
    flat: list[tuple[object, ...]] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])  # modify_* come grouped
    return pd.DataFrame([_diff_row(d) for d in flat], columns=DIFF_COLUMNS)
