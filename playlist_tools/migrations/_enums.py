"""PostgreSQL enums in autogenerate, both ways: a comparator, four operations, their renderers.

Alembic compares tables and columns but not ``CREATE TYPE ... AS ENUM``
(alembic#278). Registered here, on import, for every autogenerate run:

* a ``schema`` comparator (:func:`compare_enums`) that compares the named
  native enums of the models (``sa.Enum(..., name="mood")``) with the
  database's (``pg_enum``), so ``alembic check`` sees enum drift too, and
  writes:

  - a new type: :class:`CreateEnumOp` first in the upgrade
    (``CREATE TYPE``); its way back drops it last;
  - new values: one :class:`AddEnumValueOp` each, ``safe.add_enum_value``
    (``ALTER TYPE ... ADD VALUE IF NOT EXISTS ... BEFORE/AFTER``, outside the
    transaction: before PostgreSQL 12 it may not run in one, and a value
    added in a transaction cannot be used until it commits); its way back
    removes the value;
  - one value replaced by another at the same place: a rename,
    :class:`RenameEnumValueOp` (``ALTER TYPE ... RENAME VALUE``), so rows
    holding it keep their meaning; its way back renames it back;
  - values removed: :class:`SwapEnumOp`, ``safe.swap_enum`` (the type is
    renamed, created anew with the values kept, each column cast over, the
    old type dropped). Rows that hold a removed value are refused like any
    data loss: the step counts them first and stops with one line naming
    the column and value;
  - a type whose last column goes: :class:`DropEnumOp` last in the upgrade;
    its way back creates it first. A type no column of ours used (an
    analyst's) is left alone.

* (Alembic's own type comparison does not report two enums of one name as
  a type change, so no ``alter_column`` comes with a value added;
  ``tests/test_enums.py`` checks that);
* :func:`explicit_enum_types`, for ``process_revision_directives``: enum
  columns in ``create_table``/``add_column`` are written as
  ``postgresql.ENUM(..., create_type=False)``, so only the operations above
  create and drop types (``create_table`` would otherwise create the type
  a second time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import comparators, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.util import DispatchPriority, PriorityDispatchResult
from sqlalchemy.dialects import postgresql

__all__ = [
    "AddEnumValueOp", "CreateEnumOp", "DropEnumOp", "RenameEnumValueOp", "SwapEnumOp", "compare_enums",
    "explicit_enum_types",
]

Columns = tuple[tuple[str, str], ...]
"""``(table, column)`` pairs that use a type."""

_IMPORT = "from playlist_tools.migrations import safe"


class _EnumOp(ops.MigrateOperation):
    def __init__(self, name: str, schema: str | None) -> None:
        self.name = name
        self.schema = schema

    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


class CreateEnumOp(_EnumOp):
    """``CREATE TYPE name AS ENUM (values)``."""

    def __init__(self, name: str, schema: str | None, values: tuple[str, ...], columns: Columns = ()) -> None:
        super().__init__(name, schema)
        self.values, self.columns = values, columns

    def reverse(self) -> DropEnumOp:
        return DropEnumOp(self.name, self.schema, self.values, self.columns)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("create_enum", self.schema, self.name, self.values)


class DropEnumOp(_EnumOp):
    """``DROP TYPE name`` (its last column is gone)."""

    def __init__(self, name: str, schema: str | None, values: tuple[str, ...], columns: Columns = ()) -> None:
        super().__init__(name, schema)
        self.values, self.columns = values, columns

    def reverse(self) -> CreateEnumOp:
        return CreateEnumOp(self.name, self.schema, self.values, self.columns)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("drop_enum", self.schema, self.name, self.values)


class AddEnumValueOp(_EnumOp):
    """``ALTER TYPE name ADD VALUE value BEFORE/AFTER neighbour``; ``old``/``new`` are the whole lists."""

    def __init__(self, name: str, schema: str | None, value: str, old: tuple[str, ...], new: tuple[str, ...],
                 columns: Columns) -> None:
        super().__init__(name, schema)
        self.value, self.old, self.new, self.columns = value, old, new, columns

    def position(self) -> dict[str, str]:
        """``{"after": v}`` or ``{"before": v}``: the neighbour in the new list that exists before it."""
        index = self.new.index(self.value)
        if index > 0:
            return {"after": self.new[index - 1]}
        return {"before": self.new[1]} if len(self.new) > 1 else {}

    def reverse(self) -> SwapEnumOp:
        return SwapEnumOp(self.name, self.schema, self.new, self.old, self.columns)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("add_enum_value", self.schema, self.name, self.value)


class RenameEnumValueOp(_EnumOp):
    """``ALTER TYPE name RENAME VALUE old TO new``."""

    def __init__(self, name: str, schema: str | None, old_value: str, new_value: str) -> None:
        super().__init__(name, schema)
        self.old_value, self.new_value = old_value, new_value

    def reverse(self) -> RenameEnumValueOp:
        return RenameEnumValueOp(self.name, self.schema, self.new_value, self.old_value)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("rename_enum_value", self.schema, self.name, f"{self.old_value} -> {self.new_value}")


class SwapEnumOp(_EnumOp):
    """The type recreated with ``new`` values (some of ``old`` removed), its ``columns`` cast over."""

    def __init__(self, name: str, schema: str | None, old: tuple[str, ...], new: tuple[str, ...],
                 columns: Columns) -> None:
        super().__init__(name, schema)
        self.old, self.new, self.columns = old, new, columns

    def reverse(self) -> ops.MigrateOperation:
        added = [value for value in self.old if value not in self.new]
        if not [value for value in self.new if value not in self.old] and len(added) == 1:
            return AddEnumValueOp(self.name, self.schema, added[0], self.new, self.old, self.columns)
        return SwapEnumOp(self.name, self.schema, self.new, self.old, self.columns)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        removed = tuple(value for value in self.old if value not in self.new)
        return ("remove_enum_values", self.schema, self.name, removed)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _type_sql(autogen_context: AutogenContext, name: str, schema: str | None) -> str:
    quote = autogen_context.dialect.identifier_preparer.quote  # type: ignore[union-attr]
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


@renderers.dispatch_for(CreateEnumOp)
def _render_create(autogen_context: AutogenContext, op_: CreateEnumOp) -> str:
    values = ", ".join(_literal(value) for value in op_.values)
    return f"op.execute({f'CREATE TYPE {_type_sql(autogen_context, op_.name, op_.schema)} AS ENUM ({values})'!r})"


@renderers.dispatch_for(DropEnumOp)
def _render_drop(autogen_context: AutogenContext, op_: DropEnumOp) -> str:
    return f"op.execute({f'DROP TYPE {_type_sql(autogen_context, op_.name, op_.schema)}'!r})"


@renderers.dispatch_for(RenameEnumValueOp)
def _render_rename(autogen_context: AutogenContext, op_: RenameEnumValueOp) -> list[str]:
    sql = (f"ALTER TYPE {_type_sql(autogen_context, op_.name, op_.schema)} "
           f"RENAME VALUE {_literal(op_.old_value)} TO {_literal(op_.new_value)}")
    return [f"# enum value renamed in place: rows holding {op_.old_value!r} now hold {op_.new_value!r}",
            f"op.execute({sql!r})"]


def _schema_kw(schema: str | None) -> str:
    return f", schema={schema!r}" if schema else ""


@renderers.dispatch_for(AddEnumValueOp)
def _render_add_value(autogen_context: AutogenContext, op_: AddEnumValueOp) -> list[str]:
    autogen_context.imports.add(_IMPORT)
    where = "".join(f", {key}={value!r}" for key, value in op_.position().items())
    return ["# outside the transaction: a value added in one cannot be used until it commits",
            f"safe.add_enum_value({op_.name!r}, {op_.value!r}{where}{_schema_kw(op_.schema)})"]


@renderers.dispatch_for(SwapEnumOp)
def _render_swap(autogen_context: AutogenContext, op_: SwapEnumOp) -> list[str]:
    autogen_context.imports.add(_IMPORT)
    removed = [value for value in op_.old if value not in op_.new]
    return [
        f"# removes {', '.join(map(repr, removed))} from type {op_.name}: refused while rows hold it;"
        " not lock-safe: recasting rewrites each column's table",
        f"safe.swap_enum({op_.name!r}, {list(op_.new)!r}, columns={[list(c) for c in op_.columns]!r}"
        f"{_schema_kw(op_.schema)})",
    ]


def _model_enums(metadata: Iterable[sa.MetaData], schemas: set[str | None]) -> dict[tuple[str | None, str], Any]:
    """``{(schema, name): (values, columns)}`` of the models' named native enums."""
    found: dict[tuple[str | None, str], Any] = {}
    for meta in metadata:
        for table in meta.tables.values():
            for column in table.columns:
                kind = column.type
                if isinstance(kind, sa.Enum) and kind.native_enum and kind.name:
                    schema = kind.schema or table.schema
                    if schema not in schemas:
                        continue
                    values, columns = found.get((schema, kind.name), (tuple(kind.enums), ()))
                    found[(schema, kind.name)] = (values, (*columns, (table.name, column.name)))
    return found


_DATABASE_ENUMS = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels,
       (SELECT coalesce(array_agg(c.relname || '.' || a.attname ORDER BY c.relname, a.attname), '{}')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE a.atttypid = t.oid AND c.relkind IN ('r', 'p') AND NOT a.attisdropped) AS used_by
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = coalesce(:schema, current_schema())
GROUP BY t.oid, t.typname
"""


def _database_enums(connection: Any, schemas: set[str | None]) -> dict[tuple[str | None, str], Any]:
    found: dict[tuple[str | None, str], Any] = {}
    for schema in schemas:
        for name, labels, used_by in connection.execute(sa.text(_DATABASE_ENUMS), {"schema": schema}):
            found[(schema, name)] = (tuple(labels), tuple(tuple(u.split(".", 1)) for u in used_by))
    return found


def _value_ops(name: str, schema: str | None, old: tuple[str, ...], new: tuple[str, ...],
               columns: Columns) -> list[ops.MigrateOperation]:
    added = [value for value in new if value not in old]
    removed = [value for value in old if value not in new]
    if len(added) == 1 and len(removed) == 1 and new.index(added[0]) == old.index(removed[0]):
        return [RenameEnumValueOp(name, schema, removed[0], added[0])]
    if removed:
        return [SwapEnumOp(name, schema, old, new, columns)]
    written: list[ops.MigrateOperation] = []
    current = old
    for value in added:  # one at a time, each placed by a neighbour that exists by then
        after = tuple(v for v in new if v in current or v == value)
        written.append(AddEnumValueOp(name, schema, value, current, after, columns))
        current = after
    return written


@comparators.dispatch_for("schema", priority=DispatchPriority.LAST)
def compare_enums(autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps,
                  schemas: set[str | None]) -> PriorityDispatchResult:
    """The enum operations (see the module docstring): new types first, dropped types last."""
    if autogen_context.dialect is None or autogen_context.dialect.name != "postgresql":
        return PriorityDispatchResult.CONTINUE
    metadata = autogen_context.metadata
    models = _model_enums(metadata if isinstance(metadata, list | tuple) else [metadata] if metadata else [],
                          schemas)
    database = _database_enums(autogen_context.connection, schemas)
    first: list[ops.MigrateOperation] = []
    last: list[ops.MigrateOperation] = []
    for (schema, name), (values, columns) in sorted(models.items(), key=lambda item: str(item[0])):
        if (schema, name) not in database:
            first.append(CreateEnumOp(name, schema, values, columns))
            continue
        old, _ = database[(schema, name)]
        if old != values:
            upgrade_ops.ops.extend(_value_ops(name, schema, old, values, columns))
    for (schema, name), (values, used_by) in sorted(database.items(), key=lambda item: str(item[0])):
        if (schema, name) in models or not used_by:
            continue  # a type no column uses (an analyst's) stays
        if not _columns_dropped(upgrade_ops, used_by):
            continue  # a column the models don't know (an analyst's) still uses it
        last.append(DropEnumOp(name, schema, values, used_by))
    upgrade_ops.ops[:0] = first
    upgrade_ops.ops.extend(last)
    return PriorityDispatchResult.CONTINUE


def _columns_dropped(upgrade_ops: ops.UpgradeOps, used_by: Columns) -> bool:
    """Whether every column in ``used_by`` is dropped by ``upgrade_ops`` (its table or itself)."""
    dropped: set[tuple[str, str]] = set()
    dropped_tables: set[str] = set()
    for op_ in upgrade_ops.ops:
        if isinstance(op_, ops.DropTableOp):
            dropped_tables.add(op_.table_name)
        if isinstance(op_, ops.ModifyTableOps):
            dropped |= {(op_.table_name, sub.column_name) for sub in op_.ops if isinstance(sub, ops.DropColumnOp)}
    return all(table in dropped_tables or (table, column) in dropped for table, column in used_by)


def _explicit(column: sa.Column[Any]) -> None:
    kind = column.type
    if isinstance(kind, sa.Enum) and kind.native_enum and kind.name:
        column.type = postgresql.ENUM(*kind.enums, name=kind.name, schema=kind.schema, create_type=False)


def explicit_enum_types(context: Any, revision: Any, directives: list[Any]) -> None:
    """``process_revision_directives``: enum columns written with ``create_type=False`` (types are ours)."""
    for script in directives:
        if not isinstance(script, ops.MigrationScript):
            continue
        for container in [*script.upgrade_ops_list, *script.downgrade_ops_list]:
            for op_ in _flat(container.ops):
                if isinstance(op_, ops.CreateTableOp):
                    for column in op_.columns:
                        if isinstance(column, sa.Column):
                            _explicit(column)
                elif isinstance(op_, ops.AddColumnOp):
                    _explicit(op_.column)


def _flat(operations: Iterable[ops.MigrateOperation]) -> Iterable[ops.MigrateOperation]:
    for op_ in operations:
        if isinstance(op_, ops.ModifyTableOps):
            yield from op_.ops
        else:
            yield op_
