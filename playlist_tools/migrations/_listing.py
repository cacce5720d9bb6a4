"""Listings: revisions and autogenerate diffs as DataFrames, in a deterministic order.

The table-shaping half of :mod:`playlist_tools.migrations`: nothing here
touches a database or a file, so everything is easy to test on its own.
That includes what an index or key in a diff *is*, its name aside
(:func:`op_signature`), which rename detection (``_renames``) pairs by.

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

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from alembic import util
from alembic.operations import ops
from alembic.script import Script, ScriptDirectory
from sqlalchemy.dialects import postgresql

if TYPE_CHECKING:  # pandas is imported where a frame is built: alembic/env.py never builds one
    import pandas as pd

__all__ = [
    "COLUMNS", "DIFF_COLUMNS", "down_revisions", "ancestors", "ordered", "revision_frame", "diff_frame", "sql_type",
    "object_name", "op_signature", "paired",
]

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
    import pandas as pd

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


def sql_type(value: object) -> str:
    """A SQLAlchemy type as PostgreSQL spells it (``VARCHAR(120)``); anything else as its repr."""
    compile_ = getattr(value, "compile", None)
    return str(compile_(dialect=postgresql.dialect())) if compile_ else repr(value)


def _diff_row(diff: tuple[object, ...]) -> tuple[str, str, str, str]:
    """One autogenerate diff tuple (``UpgradeOps.as_diffs()``) as (op, table, name, detail)."""
    kind, rest = str(diff[0]), diff[1:]
    if kind.startswith("rename_"):  # ours (migrations._renames): (kind, schema, table, old, new, detail)
        _, table_name, old, new, detail = rest
        return kind, str(table_name), f"{old} -> {new}", str(detail)
    if kind.endswith("_column"):  # (kind, schema, table name, Column)
        _, table_name, column = rest
        null = "NULL" if column.nullable else "NOT NULL"  # type: ignore[attr-defined]
        return kind, str(table_name), column.name, f"{sql_type(column.type)} {null}"  # type: ignore[attr-defined]
    if kind.startswith("modify_"):  # (kind, schema, table, column, existing, old, new)
        _, table_name, column_name, _, old, new = rest
        return kind, str(table_name), str(column_name), f"{sql_type(old)} -> {sql_type(new)}"
    item = rest[0]  # a Table, Index or Constraint
    if kind.endswith("_table"):
        return kind, item.name, "", ", ".join(c.name for c in item.columns)  # type: ignore[attr-defined]
    table = getattr(item, "table", None)
    columns = ", ".join(c.name for c in getattr(item, "columns", []))
    return kind, str(getattr(table, "name", "")), str(getattr(item, "name", "") or ""), columns


def diff_frame(diffs: Iterable[object]) -> pd.DataFrame:
    """Autogenerate's diffs as rows ``op, table, name, detail``, in the file's order.

    Renames (``rename_column``, ``rename_table``, ``rename_index``,
    ``rename_constraint``, and the unconfirmed ``rename_column?`` and
    ``rename_table?``) show ``old -> new`` as their name.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> column = sa.Column("description", sa.Text())
    >>> diff_frame([("add_column", None, "playlists", column)])
               op      table         name     detail
    0  add_column  playlists  description  TEXT NULL
    >>> diff_frame([("rename_column?", None, "songs", "media_type", "file_format", "VARCHAR(120) NULL")])
                   op  table                       name             detail
    0  rename_column?  songs  media_type -> file_format  VARCHAR(120) NULL
    """
    import pandas as pd

    flat: list[tuple[object, ...]] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])  # modify_* come grouped
    return pd.DataFrame([_diff_row(d) for d in flat], columns=DIFF_COLUMNS)


def op_signature(op: Any, tables: Mapping[str, str], columns: Mapping[tuple[str, str], str]) -> tuple[Any, ...]:
    """What an index or key is, its name aside, once ``tables`` and ``columns`` are renamed."""
    def cols(table: str, names: Any) -> tuple[str, ...]:
        return tuple(columns.get((table, str(getattr(c, "name", c))), str(getattr(c, "name", c))) for c in names)

    if isinstance(op, ops.CreateForeignKeyOp):
        source, referent = op.source_table, op.referent_table
        return ("fk", tables.get(source, source), cols(source, op.local_cols), tables.get(referent, referent),
                cols(referent, op.remote_cols), sorted(op.kw.items()))
    table = op.table_name
    if isinstance(op, ops.CreateIndexOp):
        return ("index", tables.get(table, table), bool(op.unique), cols(table, op.columns))
    if isinstance(op, ops.CreateCheckConstraintOp):
        return ("ck", tables.get(table, table), str(op.condition))
    return (type(op).__name__, tables.get(table, table), cols(table, getattr(op, "columns", ())))


def object_name(op: Any) -> str:
    """The name of a ``CreateIndexOp`` or ``AddConstraintOp``."""
    return str(op.index_name if isinstance(op, ops.CreateIndexOp) else op.constraint_name)


def paired(gone: list[Any], made: list[Any], tables: Mapping[str, str],
           columns: Mapping[tuple[str, str], str]) -> list[tuple[Any, Any]]:
    """Dropped and made objects that are one object renamed: the same definition once the renames apply.

    ``gone`` and ``made`` hold tuples whose last item is a create op (a drop as its reverse);
    objects the renames do not touch are never paired.
    """
    pairs, free = [], list(made)
    for entry in gone:
        wanted = op_signature(entry[2], tables, columns)
        match = next((m for m in free if op_signature(m[2], {}, {}) == wanted), None)
        if match is not None and wanted != op_signature(entry[2], {}, {}):  # and the renames touch it
            free.remove(match)
            pairs.append((entry, match))
    return pairs
