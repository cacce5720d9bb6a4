"""What changed between two revisions: one row per change, and the marks of a diagram of changes.

Private to :mod:`playlist_tools.schema`, which re-exports :func:`diff`.
Both revisions are :func:`~playlist_tools.schema.at` (replayed, cached);
a rename is what ``migrations._renames.candidates`` says may be one, and
only when unambiguous: a dropped and an added column of the same type and
nullability in the same table, or a dropped and an added table with the
same columns (names, types, nullability, in order), with no other pair
sharing either name. Indexes and constraints are compared by what they do
(columns, through the renames; method; uniqueness; predicate; referenced
table), so renaming a column does not report its index as changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from alembic.config import Config

from playlist_tools.history import candidates
from playlist_tools.schema._at import SchemaAt, at
from playlist_tools.schema._draw import Marks

__all__ = ["DIFF_COLUMNS", "diff", "marks"]

DIFF_COLUMNS = ["kind", "table", "name", "change", "before", "after"]
"""The columns of :func:`diff`."""

_KINDS = {"table": 0, "column": 1, "index": 2, "constraint": 3}
_CONSTRAINT_TYPES = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check", "x": "exclusion"}


@dataclass(frozen=True)
class Change:
    """One row of :func:`diff`; ``columns`` are those an index or constraint covers (for the diagram)."""

    kind: str
    table: str
    name: str
    change: str
    before: str | None = None
    after: str | None = None
    columns: tuple[str, ...] = ()


@dataclass
class _Comparison:
    changes: list[Change] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)  # old name -> new name, for tables in both
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # new table -> old column -> new column


def _unambiguous(dropped: dict[str, Any], added: dict[str, Any]) -> list[tuple[str, str]]:
    found = candidates(dropped, added)
    olds, news = Counter(old for old, _ in found), Counter(new for _, new in found)
    return [(old, new) for old, new in found if olds[old] == 1 and news[new] == 1]


def _spec(column: dict[str, Any]) -> str:
    """A column as DDL would spell it: ``integer NOT NULL DEFAULT nextval(...)``."""
    text = column["type"] + ("" if column["nullable"] else " NOT NULL")
    default = column["default"]
    if pd.isna(default):
        return text
    return f"{text} {default.upper()}" if default.startswith("generated ") else f"{text} DEFAULT {default}"


def _by_table(schema: SchemaAt, exclude: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    described = schema._columns.sort_values(["table", "attnum"])
    found: dict[str, dict[str, dict[str, Any]]] = {
        str(name): {} for name in schema._tables["name"] if name not in exclude
    }
    for row in described.to_dict("records"):
        if row["table"] in found:
            found[row["table"]][row["name"]] = {k: (None if pd.isna(v) else v) for k, v in row.items()}
    return found


def _signature(kind: str, item: dict[str, Any], cmp: _Comparison, table: str) -> tuple[object, ...]:
    """What an index or constraint does, in the new schema's names."""
    names = cmp.columns.get(table, {})
    if kind == "index":
        return (item["unique"], item["method"], tuple(names.get(k, k) for k in item["keys"]), item["predicate"])
    ref = cmp.tables.get(item["ref_table"], item["ref_table"])
    ref_names = cmp.columns.get(ref, {}) if ref else {}
    # The definition after its columns (ON DELETE ..., DEFERRABLE); a check's or exclusion's is all of it.
    rest = item["definition"].rsplit(")", 1)[-1] if item["type"] in "puf" else item["definition"]
    return (item["type"], tuple(names.get(c, c) for c in item["columns"]), ref,
            tuple(ref_names.get(c, c) for c in item["ref_columns"] or ()), rest)


def _objects(kind: str, old: list[dict[str, Any]], new: list[dict[str, Any]], cmp: _Comparison) -> None:
    """Compare the indexes (or constraints) of every table that is in both revisions."""
    for old_table, table in sorted(cmp.tables.items()):
        names = cmp.columns.get(table, {})
        mine = {o["name"]: o for o in old if o["table"] == old_table}
        theirs = {o["name"]: o for o in new if o["table"] == table}
        sig_old = {n: _signature(kind, o, cmp, table) for n, o in mine.items()}
        sig_new = {n: _signature(kind, o, cmp, table) for n, o in theirs.items()}
        covered_new = {n: tuple(o["keys" if kind == "index" else "columns"] or ()) for n, o in theirs.items()}
        covered_old = {n: tuple(names.get(c, c) for c in o["keys" if kind == "index" else "columns"] or ())
                       for n, o in mine.items()}
        pairs = _unambiguous({n: sig_old[n] for n in mine.keys() - theirs.keys()},
                             {n: sig_new[n] for n in theirs.keys() - mine.keys()})
        for before, after in pairs:
            cmp.changes.append(Change(kind, table, after, "renamed", before, after, covered_new[after]))
        gone, came = {b for b, _ in pairs}, {a for _, a in pairs}
        for name in sorted(mine.keys() - theirs.keys() - gone):
            cmp.changes.append(Change(kind, table, name, "dropped", mine[name]["definition"], None, covered_old[name]))
        for name in sorted(theirs.keys() - mine.keys() - came):
            cmp.changes.append(Change(kind, table, name, "added", None, theirs[name]["definition"], covered_new[name]))
        for name in sorted(mine.keys() & theirs.keys()):
            if sig_old[name] != sig_new[name]:
                cmp.changes.append(Change(kind, table, name, "changed", mine[name]["definition"],
                                          theirs[name]["definition"], covered_new[name]))


def compare(old: SchemaAt, new: SchemaAt, exclude: Sequence[str] = ("alembic_version",)) -> _Comparison:
    """Every change from ``old`` to ``new``, in a fixed order, and the renames found."""
    cmp = _Comparison()
    before, after = _by_table(old, exclude), _by_table(new, exclude)

    def columns_signature(cols: dict[str, dict[str, Any]]) -> tuple[object, ...]:
        return tuple((c["name"], c["type"], c["nullable"]) for c in cols.values())

    pairs = _unambiguous({t: columns_signature(before[t]) for t in before.keys() - after.keys()},
                         {t: columns_signature(after[t]) for t in after.keys() - before.keys()})
    cmp.tables = {t: t for t in before.keys() & after.keys()} | dict(pairs)
    for old_name, new_name in pairs:
        cmp.changes.append(Change("table", new_name, new_name, "renamed", old_name, new_name))
    for name in before.keys() - after.keys() - {o for o, _ in pairs}:
        cmp.changes.append(Change("table", name, name, "dropped", ", ".join(before[name]), None))
    for name in after.keys() - before.keys() - {n for _, n in pairs}:
        cmp.changes.append(Change("table", name, name, "added", None, ", ".join(after[name])))
    for old_table, table in cmp.tables.items():
        mine, theirs = before[old_table], after[table]
        renamed = _unambiguous({c: (mine[c]["type"], mine[c]["nullable"]) for c in mine.keys() - theirs.keys()},
                               {c: (theirs[c]["type"], theirs[c]["nullable"]) for c in theirs.keys() - mine.keys()})
        cmp.columns[table] = {c: c for c in mine.keys() & theirs.keys()} | dict(renamed)
        for was, now in renamed:
            cmp.changes.append(Change("column", table, now, "renamed", was, now))
        for name in mine.keys() - theirs.keys() - {w for w, _ in renamed}:
            cmp.changes.append(Change("column", table, name, "dropped", _spec(mine[name]), None))
        for name in theirs.keys() - mine.keys() - {n for _, n in renamed}:
            cmp.changes.append(Change("column", table, name, "added", None, _spec(theirs[name])))
        for was, now in cmp.columns[table].items():
            a, b = mine[was], theirs[now]
            if a["type"] != b["type"]:
                cmp.changes.append(Change("column", table, now, "retyped", a["type"], b["type"]))
            if a["nullable"] != b["nullable"]:
                cmp.changes.append(Change("column", table, now, "nullability", *(
                    "NULL" if n else "NOT NULL" for n in (a["nullable"], b["nullable"]))))
            if a["default"] != b["default"]:
                cmp.changes.append(Change("column", table, now, "default", a["default"], b["default"]))
    _objects("index", old._indexes, new._indexes, cmp)
    _objects("constraint", old._constraints, new._constraints, cmp)
    cmp.changes.sort(key=lambda c: (c.table, _KINDS[c.kind], c.name, c.change))
    return cmp


def diff(a: str | SchemaAt, b: str | SchemaAt, config: Config | None = None, *,
         exclude: Sequence[str] = ("alembic_version",)) -> pd.DataFrame:
    """What changed from revision ``a`` to revision ``b``: one row per change.

    Parameters
    ----------
    a, b : str or SchemaAt
        Revisions (``"0001"``, ``"head"``, ...) or what :func:`at` returned;
        ``a`` may be later than ``b`` (then what ``b`` lacks is ``dropped``).
    config : alembic.config.Config or None
        As in :func:`at`.
    exclude : sequence of str
        Tables to leave out; by default Alembic's bookkeeping table.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind`` (``table``, ``column``, ``index``, ``constraint``),
        ``table`` (its name in ``b``, or in ``a`` when dropped), ``name``,
        ``change`` (``added``, ``dropped``, ``renamed``, ``retyped``,
        ``nullability``, ``default``, ``changed``), ``before`` and ``after``
        (for a column its DDL, ``integer NOT NULL``; for an index or constraint
        its definition; for a rename the names; for a table its columns; NA
        where there is nothing), all strings. Ordered by table, kind, name,
        change. An added or dropped table is one row: its columns, indexes and
        constraints come and go with it.

    Examples
    --------
    >>> diff("0003", "0004")
         kind  table         name   change      before        after
    0  column  songs  file_format  renamed  media_type  file_format
    >>> added = diff("0004", "0005")
    >>> added[["kind", "table", "name", "change"]]
        kind  table            name change
    0  index  songs  ix_songs_genre  added
    >>> added.loc[0, "after"]
    'CREATE INDEX ix_songs_genre ON public.songs USING btree (genre)'
    """
    old = a if isinstance(a, SchemaAt) else at(a, config)
    new = b if isinstance(b, SchemaAt) else at(b, config)
    rows = [(c.kind, c.table, c.name, c.change, c.before, c.after) for c in compare(old, new, exclude).changes]
    return pd.DataFrame(rows, columns=DIFF_COLUMNS).astype("string")


def _note(change: Change) -> str:
    if change.kind != "column":
        what = f"{change.kind} {change.before} renamed to {change.after}" if change.change == "renamed" \
            else f"{change.kind} {change.name} {change.change}"
        return what
    return {"added": "added", "dropped": "dropped", "renamed": f"renamed from {change.before}",
            "retyped": f"type was {change.before}",
            "default": f"default {change.after or 'none'} (was {change.before or 'none'})",
            "nullability": f"was {'nullable' if change.before == 'NULL' else 'NOT NULL'}"}[change.change]


def marks(old: SchemaAt, new: SchemaAt, exclude: Sequence[str]) -> Marks:
    """How the ER diagram of ``new`` shows what changed since ``old`` (see ``SchemaAt.erd``)."""
    cmp = compare(old, new, exclude)
    found = Marks()
    gone: list[pd.DataFrame] = []
    back = {new_t: old_t for old_t, new_t in cmp.tables.items()}
    for change in cmp.changes:
        if change.kind == "table":
            found.tables[change.table] = "changed" if change.change == "renamed" else change.change
            if change.change == "renamed":
                found.labels[change.table] = f"{change.table} (renamed from {change.before})"
            if change.change == "dropped":
                gone.append(old._columns[old._columns["table"] == change.table])
            continue
        found.tables.setdefault(change.table, "changed")
        for column in change.columns or (change.name,):
            found.notes.setdefault((change.table, column), []).append(_note(change))
        if change.kind == "column" and change.change == "dropped":
            own = old._columns[(old._columns["table"] == back[change.table]) & (old._columns["name"] == change.name)]
            gone.append(own.assign(table=change.table))

    def moved(target: object) -> object:
        """An old ``parent.column`` in the new names (a renamed parent or key column)."""
        if pd.isna(target):
            return target
        parent, _, column = str(target).partition(".")
        parent = cmp.tables.get(parent, parent)
        return f"{parent}.{cmp.columns.get(parent, {}).get(column, column)}"

    if gone:
        extra = pd.concat(gone, ignore_index=True)
        found = Marks(found.tables, found.labels, found.notes, found.links,
                      extra.assign(foreign_key=extra["foreign_key"].map(moved).astype("string")))

    def links(described: pd.DataFrame, rename: bool) -> set[tuple[str, str, str]]:
        out = set()
        for row in described[described["foreign_key"].notna()].itertuples():
            table, column = str(row.table), str(row.name)
            if rename and table in cmp.tables:
                table = cmp.tables[table]
                column = cmp.columns.get(table, {}).get(column, column)
            for target in str(row.foreign_key).split(", "):
                parent = target.split(".")[0]
                out.add((cmp.tables.get(parent, parent) if rename else parent, table, column))
        return out

    then, now = links(old._columns, True), links(new._columns, False)
    found.links.update({link: "dropped" for link in then - now} | {link: "added" for link in now - then})
    return found
