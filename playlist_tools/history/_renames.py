"""Renames in autogenerate: a dropped and an added column (or table) that are one thing renamed.

Autogenerate writes a renamed column as a drop plus an add, which destroys every value.
:func:`apply_renames` (``env.py``'s ``process_revision_directives`` calls it first) turns each
*confirmed* candidate (:func:`candidates` is the rule) into ``op.alter_column(table, old,
new_column_name=new)`` / ``op.rename_table(old, new)`` in ``upgrade()`` and back in ``downgrade()``;
an index or key whose definition is the same once renamed (``ix_songs_media_type`` on ``media_type``,
``ix_songs_file_format``) is renamed to the models' name (``ALTER INDEX``/``RENAME CONSTRAINT``).
Confirmed: by ``renames=`` (``config.attributes["renames"]``: ``{"songs.media_type": "file_format"}``,
``{"songs": "tracks"}``), ``-x rename=songs.media_type:file_format`` / ``-x rename=songs:tracks``, or a
yes to ``Did you rename ...? [y/N]`` asked by ``alembic revision --autogenerate`` on a terminal. Nothing
else is asked or guessed. Default schema only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.operations import ops
from sqlalchemy.dialects import postgresql

from playlist_tools.errors import SettingError, one_line

# Under alembic's logger, beside its own "Detected added column" lines: alembic.ini shows that one at INFO.
_LOG = logging.getLogger("alembic.autogenerate.renames")

__all__ = [
    "Candidate", "apply_renames", "candidates", "confirmed", "found", "object_name", "op_signature", "paired",
    "requested", "sql_type",
]

_quote = postgresql.dialect().identifier_preparer.quote


def sql_type(value: object) -> str:
    """A SQLAlchemy type as PostgreSQL spells it (``VARCHAR(120)``); anything else as its repr."""
    compile_ = getattr(value, "compile", None)
    return str(compile_(dialect=postgresql.dialect())) if compile_ else repr(value)


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


def candidates(dropped: Mapping[str, Hashable], added: Mapping[str, Hashable]) -> list[tuple[str, str]]:
    """Every ``(old, new)`` whose signatures are equal: the one rule of what may be a rename.

    ``dropped`` and ``added`` map a name to its signature (for a column: its
    type and nullability; for a table: its columns). A pair is unambiguous
    when neither of its names appears in another pair.

    Examples
    --------
    >>> candidates({"media_type": ("VARCHAR(120)", True)},
    ...            {"file_format": ("VARCHAR(120)", True), "n": ("INTEGER", True)})
    [('media_type', 'file_format')]
    """
    return sorted((old, new) for old, sig in dropped.items() for new, other in added.items() if sig == other)


@dataclass(frozen=True)
class Candidate:
    """A possible rename: ``table.old`` to ``table.new`` (``column``), or table ``old`` to ``new``.

    >>> Candidate("songs", "media_type", "file_format", "VARCHAR(120) NULL", column=True).question()
    'Did you rename songs.media_type to songs.file_format (VARCHAR(120))? [y/N] '
    """

    table: str
    old: str
    new: str
    detail: str  # "VARCHAR(120) NULL" for a column, the column names for a table
    column: bool

    @property
    def key(self) -> str:
        """``renames=``'s key (``songs.media_type``, ``songs``); ``-x rename={key}:{new}``."""
        return f"{self.table}.{self.old}" if self.column else self.old

    def clashes(self, other: Candidate) -> bool:
        """Whether both cannot be true: one name renamed twice, or two renamed to one name."""
        return self.key == other.key or (self.column, self.table, self.new) == (other.column, other.table, other.new)

    def question(self) -> str:  # noqa: D102
        if self.column:  # "NOT NULL" is shown: it is part of the match
            return f"Did you rename {self.key} to {self.table}.{self.new} ({self.detail.removesuffix(' NULL')})? [y/N] "
        return f"Did you rename table {self.old} to {self.new} (the same {self.detail.count(',') + 1} columns)? [y/N] "

    def diff(self) -> tuple[str, None, str, str, str, str]:
        """Its row in :func:`~playlist_tools.migrations.preview`, unconfirmed."""
        return ("rename_column?" if self.column else "rename_table?", None, self.table, self.old, self.new, self.detail)


class _RenameColumn(ops.AlterColumnOp):
    """``op.alter_column(table, old, new_column_name=new)``, a ``rename_column`` row in ``preview``."""

    detail = ""  # the column's type, for that row

    def to_diff_tuple(self) -> Any:
        return ("rename_column", self.schema, self.table_name, self.column_name, self.modify_name, self.detail)


class _RenameTable(ops.RenameTableOp):
    """``op.rename_table(old, new)``, a ``rename_table`` row; autogenerate has no renderer of its own for it."""

    detail = ""  # the table's columns

    def to_diff_tuple(self) -> Any:
        return ("rename_table", self.schema, self.table_name, self.table_name, self.new_table_name, self.detail)


@renderers.dispatch_for(_RenameTable)
def _render_rename_table(autogen_context: Any, op: _RenameTable) -> str:
    return f"op.rename_table({op.table_name!r}, {op.new_table_name!r})"


class _RenameObject(ops.ExecuteSQLOp):
    """``op.execute('ALTER INDEX a RENAME TO b')`` (or ``RENAME CONSTRAINT``): Alembic has no op for it."""

    def __init__(self, kind: str, table: str, old: str, new: str) -> None:
        q = postgresql.dialect().identifier_preparer.quote
        at = "INDEX" if kind == "index" else f"TABLE {q(table)} RENAME CONSTRAINT"
        super().__init__(f"ALTER {at} {q(old)} {'RENAME ' if kind == 'index' else ''}TO {q(new)}")
        self.kind, self.table, self.old, self.new = kind, table, old, new

    def to_diff_tuple(self) -> Any:
        return (f"rename_{self.kind}", None, self.table, self.old, self.new, "")


def _detail(type_: Any, nullable: Any) -> str:
    return f"{sql_type(type_)} {'NULL' if nullable else 'NOT NULL'}"


def found(upgrade_ops: ops.UpgradeOps, context: Any) -> list[Candidate]:
    """The rename candidates in ``upgrade_ops``, tables first; ``context`` is the MigrationContext.

    A table's old side is one the models do not know, read from the database: autogenerate
    proposes no drop for those (analysts' tables). A column of a type reflection does not know is none.
    """
    creates = {o.table_name: o for o in upgrade_ops.ops if isinstance(o, ops.CreateTableOp) and o.schema is None}
    known = set(context.opts["target_metadata"].tables) | {context.version_table}
    inspector = sa.inspect(context.bind) if creates else None
    added = {n: frozenset((c.name, _detail(c.type, c.nullable)) for c in o.to_table().columns)
             for n, o in creates.items()}
    dropped = {n: frozenset((c["name"], _detail(c["type"], c["nullable"])) for c in inspector.get_columns(n))
               for n in (inspector.get_table_names() if inspector else []) if n not in known}
    result = [Candidate(old, old, new, ", ".join(c.name for c in creates[new].to_table().columns), False)
              for old, new in candidates(dropped, added)]
    for modify in (o for o in upgrade_ops.ops if isinstance(o, ops.ModifyTableOps) and o.schema is None):
        gone = [o.to_column() for o in modify.ops if isinstance(o, ops.DropColumnOp)]
        old = {c.name: _detail(c.type, c.nullable) for c in gone if not isinstance(c.type, sa.types.NullType)}
        new = {o.column.name: _detail(o.column.type, o.column.nullable) for o in modify.ops
               if isinstance(o, ops.AddColumnOp)}
        result += [Candidate(modify.table_name, o, n, old[o], True) for o, n in candidates(old, new)]
    return result


def _shown(key: str, new: str, typed: bool) -> str:
    return f"-x rename={key}:{new}" if typed else f"renames={ {key: new}!r}"


def requested(config: Any, context: Any) -> list[tuple[str, str, bool]]:
    """``(key, new name, typed as -x)`` for each rename that ``renames=`` or ``-x rename=`` asks for.

    >>> from alembic.config import Config
    >>> config = Config()
    >>> config.attributes["renames"] = {"songs.media_type": "file_format", "songs": "tracks"}
    >>> requested(config, None)
    [('songs.media_type', 'file_format', False), ('songs', 'tracks', False)]
    >>> config.attributes["renames"] = {"songs.media_type": "songs.file_format"}
    >>> requested(config, None)
    Traceback (most recent call last):
    ...
    playlist_tools.errors.SettingError: renames={'songs.media_type': 'songs.file_format'} is not a rename; ...
    """
    given = dict((config.attributes.get("renames") if config is not None else None) or {})
    wanted = [(f"{k}:{v}", _shown(str(k), str(v), False)) for k, v in given.items()]
    environment = getattr(context, "environment_context", None)
    if environment is not None and hasattr(getattr(config, "cmd_opts", None), "x"):  # the API's Namespace has none
        typed = environment.get_x_argument(as_dictionary=False)
        wanted += [(arg.removeprefix("rename="), f"-x {arg}") for arg in typed if arg.startswith("rename=")]
    result = []
    for spec, shown in wanted:
        old, colon, new = (part.strip() for part in spec.partition(":"))
        names = old.split(".")
        if not colon or not new or ":" in new or "." in new or len(names) > 2 or not all(names):
            raise SettingError(f"{one_line(shown, 120)} is not a rename; write TABLE.COLUMN:NEW_NAME for a column or "
                               "TABLE:NEW_NAME for a table, such as songs.media_type:file_format")
        result.append((old, new, shown.startswith("-x")))
    return result


def _ask(candidate: Candidate) -> bool:
    """Django's question; no by default (Enter, Ctrl-D); an answer neither yes nor no asks again."""
    while True:
        try:
            answer = input(candidate.question()).strip().lower()
        except EOFError:
            return False
        if answer in ("y", "yes", "n", "no", ""):
            return answer.startswith("y")
        print("Please answer y (it is a rename) or n (drop the old one, add the new one).")


def confirmed(config: Any, context: Any, found_: list[Candidate]) -> list[Candidate]:
    """The candidates confirmed by ``renames=``/``-x rename=``, then (on a terminal) by answering yes."""
    by_key = {(c.key, c.new): c for c in found_}
    chosen: list[Candidate] = []
    for key, new, typed in requested(config, context):
        candidate, shown = by_key.get((key, new)), _shown(key, new, typed)
        if candidate is None:
            listed = ", ".join(_shown(k, n, typed) for k, n in by_key) or "none (a rename is a dropped and an added " \
                "column of one type and nullability in one table, or a table the models no longer have and a new " \
                "one with the same columns)"
            raise SettingError(one_line(f"{shown} names no rename candidate; the candidates: {listed}"))
        if clash := [c for c in chosen if candidate.clashes(c)]:
            twice = _shown(clash[0].key, clash[0].new, typed)
            raise SettingError(f"{shown} and {twice} rename one thing twice; keep one")
        chosen.append(candidate)
    options = getattr(config, "cmd_opts", None)  # only `alembic revision --autogenerate` typed on a terminal asks
    typed = getattr(options, "autogenerate", False) and hasattr(options, "cmd") and "renames" not in config.attributes
    asking = typed and all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout))
    for candidate in found_ if asking else []:
        if not any(candidate.clashes(c) for c in chosen) and _ask(candidate):
            chosen.append(candidate)
    return chosen


def _objects(container: Any, created: bool) -> list[tuple[Any, Any, Any]]:
    """``(container, op, as a create op)`` for each index or key dropped (``created``: made) in ``container``."""
    kinds = (ops.CreateIndexOp, ops.AddConstraintOp) if created else (ops.DropIndexOp, ops.DropConstraintOp)
    objects = []
    for op in (o for o in container.ops if isinstance(o, kinds)):
        try:
            objects.append((container, op, op if created else op.reverse()))
        except ValueError:  # a drop Alembic cannot describe: it stays a drop
            continue
    return objects


def _table_objects(context: Any, old: str, new: str, tables: Mapping[str, str],
                   columns: Mapping[tuple[str, str], str]) -> list[tuple[str, str, str]]:
    """``(kind, old name, new name)`` for each key and index of the database's ``old`` that ``new`` has too."""
    def objects(table: sa.Table) -> list[Any]:
        made = [ops.AddConstraintOp.from_constraint(c) for c in table.constraints]
        return [(None, None, o) for o in made + [ops.CreateIndexOp.from_index(i) for i in table.indexes]]

    before = sa.Table(old, sa.MetaData(), autoload_with=context.bind)
    after = context.opts["target_metadata"].tables[new]
    return [("index" if isinstance(a, ops.CreateIndexOp) else "constraint", object_name(b), object_name(a))
            for (_, _, b), (_, _, a) in paired(objects(before), objects(after), tables, columns)]


def _rewrite(upgrade_ops: ops.UpgradeOps, tables: Mapping[str, str], columns: Mapping[tuple[str, str], str],
             objects: Mapping[str, list[tuple[str, str, str]]]) -> None:
    """Turn the drop+add pairs ``tables``/``columns`` name into renames; ``objects``: what a table takes along."""
    top = upgrade_ops.ops
    for old, new in tables.items():
        ends = [o for o in top if isinstance(o, ops.CreateTableOp) and o.table_name == new]
        ends += [o for o in top if isinstance(o, ops.DropTableOp) and o.table_name == old]
        rename = _RenameTable(old, new)
        rename.detail = ", ".join(c.name for c in ends[0].to_table().columns)
        at = top.index(ends[0])
        top[at:at + 1] = [rename, *(_RenameObject(k, new, b, a) for k, b, a in objects[old] if b != a)]
        for end in ends[1:]:
            top.remove(end)
        names = {name for _, b, a in objects[old] for name in (b, a)}
        for modify in (o for o in top if isinstance(o, ops.ModifyTableOps) and o.table_name in (old, new)):
            modify.ops[:] = [o for o in modify.ops
                             if not (isinstance(o, ops.CreateIndexOp | ops.DropIndexOp) and o.index_name in names)]
    modifies = [o for o in top if isinstance(o, ops.ModifyTableOps)]
    for modify in modifies:
        for (table, old), new in columns.items():
            add = next((o for o in modify.ops if isinstance(o, ops.AddColumnOp) and o.column.name == new), None)
            drop = next((o for o in modify.ops if isinstance(o, ops.DropColumnOp) and o.column_name == old), None)
            if modify.table_name == table and add is not None and drop is not None:
                rename = _RenameColumn(table, old, modify_name=new, schema=modify.schema)
                rename.detail = _detail(add.column.type, add.column.nullable)
                modify.ops[modify.ops.index(add)] = rename
                modify.ops.remove(drop)
    gone = [entry for modify in modifies for entry in _objects(modify, created=False)]
    made = [entry for modify in modifies for entry in _objects(modify, created=True)]
    for (drop_in, drop, before), (create_in, create, after) in paired(gone, made, tables, columns):
        old, new = object_name(before), object_name(after)
        if old == new:  # an explicit name: the object follows the rename by itself
            drop_in.ops.remove(drop)
        else:
            table = after.source_table if isinstance(after, ops.CreateForeignKeyOp) else after.table_name
            kind = "index" if isinstance(after, ops.CreateIndexOp) else "constraint"
            drop_in.ops[drop_in.ops.index(drop)] = _RenameObject(kind, table, old, new)
        create_in.ops.remove(create)
    top[:] = [o for o in top if not (isinstance(o, ops.ModifyTableOps) and not o.ops)]


def apply_renames(context: Any, revision: Any, directives: list[Any]) -> None:
    """Turn the confirmed drop+add pairs in ``directives`` into renames, in ``upgrade()`` and ``downgrade()``.

    Who confirms: see the module. A rename that names no candidate, or is not one, raises
    :class:`SettingError` (for ``alembic revision``, ``check`` and ``preview``) before any file is written.
    """
    config = getattr(context, "config", None)
    for script in directives:
        for up, down in zip(script.upgrade_ops_list, script.downgrade_ops_list, strict=True):
            chosen = confirmed(config, context, found(up, context) if context.opts.get("target_metadata") else [])
            for candidate in chosen:
                _LOG.info("Detected renamed %s '%s' to '%s' (one rename, not the removal and addition above)",
                          "column" if candidate.column else "table", candidate.key, candidate.new)
            tables = {c.old: c.new for c in chosen if not c.column}
            columns = {(c.table, c.old): c.new for c in chosen if c.column}
            objects = {old: _table_objects(context, old, new, tables, columns) for old, new in tables.items()}
            _rewrite(up, tables, columns, objects)
            back = {new: [(k, a, b) for k, b, a in objects[old]] for old, new in tables.items()}
            _rewrite(down, {n: o for o, n in tables.items()}, {(t, n): o for (t, o), n in columns.items()}, back)
