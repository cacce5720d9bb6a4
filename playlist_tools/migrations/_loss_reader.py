"""The one reader of what a migration step destroys: Alembic's operations and PostgreSQL's own grammar.

Private to :mod:`playlist_tools.migrations`. The guard of ``alembic
upgrade/downgrade``, :func:`~playlist_tools.migrations.data_loss`, the
``-- destroys`` comments of ``--sql``, the ``destroys`` column of
:func:`~playlist_tools.migrations.impact` and ``playlist-tools migrate plan``
all read steps here; nothing else in the package looks for destruction in SQL.

Reading, without a database (:func:`read_step`, :func:`read_sql`):

* a step's ``upgrade()``/``downgrade()`` runs offline through Alembic's
  operations. ``op.drop_table`` and ``op.drop_column`` are read from their
  operation objects (table, ``schema=``, column); every other statement the
  step sends (``op.execute``, raw DDL strings, what Alembic renders for its
  other operations and for batch operations) is parsed by ``pglast``, which
  is libpg_query: PostgreSQL's own parser, so case, spacing, quoting,
  comments, schemas, ``IF EXISTS``, ``ONLY`` and several tables or actions in
  one statement read as the server reads them;
* each statement becomes :class:`Destruction` records: ``drop`` (a table, or
  with ``CASCADE`` any object), ``drop_column``, ``truncate``, ``alter_type``
  (``ALTER COLUMN ... TYPE ... [USING ...]``), ``delete``, ``update``, the
  renames that later statements must be followed through, ``calls`` (the
  functions a statement runs) and ``uncountable``;
* a statement the reader cannot read is ``uncountable``: unparseable text, a
  ``DO`` block, ``CALL``, ``EXECUTE``, ``MERGE`` or ``INSERT ... ON CONFLICT DO
  UPDATE``, ``COPY ... PROGRAM``, ``DROP DATABASE``/``DROP OWNED``, ``ALTER
  TYPE`` of a composite type's attributes, ``ALTER EXTENSION``, an ``UPDATE``
  that assigns through a subscript or field, a kind of statement not known to
  destroy nothing (see :data:`HARMLESS`), and a call of any function outside
  ``pg_catalog`` (it can run anything) or of the few in it that run SQL given as
  text or delete large objects (:data:`RISKY_BUILTINS`).

Counting, in the database as it is now (:func:`count`):

* ``DROP TABLE`` loses the table's rows; ``DROP ... CASCADE`` (of a table, a
  column, a schema, a type, a domain, an extension, ...) follows ``pg_depend``
  as the server does and loses the rows of every table and the non-null values
  of every column it reaches; the other objects it reaches (views, foreign
  keys, indexes) are listed with 0 lost;
* ``TRUNCATE`` loses the rows of each table named (``ONLY``: not of its
  children); ``CASCADE`` follows foreign keys to the tables that reference
  them, recursively, and loses theirs too;
* ``ALTER TABLE ... DROP COLUMN`` loses the column's non-null values;
* ``ALTER COLUMN ... TYPE t [USING e]`` loses the non-null values that do
  not come back unchanged from ``(e)::t`` cast back to the old type (all of
  them when that cannot be evaluated, e.g. no cast back); a widening loses nothing;
* ``DELETE`` loses the rows its ``WHERE`` (and ``USING``) matches, and what
  its foreign keys' ``ON DELETE CASCADE``/``SET NULL``/``SET DEFAULT`` reach;
  ``UPDATE`` loses the non-null values it changes. A table with a trigger or
  rule that fires on them is uncountable;
* renames (tables, columns, schemas, ``SET SCHEMA``) are followed through the
  steps of one run; a table or column that does not exist now (one the run
  creates) holds nothing yet.

Not counted (the exact list is in ``docs/data-safety.md``): sequence positions
(``RESTART IDENTITY``, ``DROP SEQUENCE``), materialized views and other derived
data, foreign tables' remote rows, large objects left unreferenced, and what
objects a step creates will do later (triggers, rules).

Examples
--------
>>> [(d.kind, d.relation, d.column) for d in read_sql('alter table "Play".lists drop column x, drop y')]
[('drop_column', ('Play', 'lists'), 'x'), ('drop_column', ('Play', 'lists'), 'y')]
>>> [(d.kind, d.relation, d.cascade) for d in read_sql("DROP TABLE IF EXISTS a, public.b CASCADE")]
[('drop', (None, 'a'), True), ('drop', ('public', 'b'), True)]
>>> read_sql("DO $$ BEGIN DELETE FROM songs; END $$")[0].reason
'a DO block runs procedural code, which the guard cannot read'
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pglast
import sqlalchemy as sa
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from pglast import ast, enums
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor
from sqlalchemy.engine import Connection

from playlist_tools.errors import first_line, one_line, sqlstate
from playlist_tools.history import ONE_RUN_AT_A_TIME, installed_operations, quiet_alembic

__all__ = [
    "HARMLESS", "RISKY_BUILTINS", "Destruction", "Loss", "Uncountable", "count", "describe_losses", "read_sql",
    "read_step",
]

Relation = tuple[str | None, str]
"""``(schema or None, name)`` as the statement names it (unquoted, case as the server folds it)."""


@dataclass(frozen=True)
class Destruction:
    """One thing a statement does that can destroy data (or that later statements must be followed through).

    ``kind`` is one of ``drop`` (``object_type`` ``table``, or any object with
    ``CASCADE``), ``drop_column``, ``truncate``, ``alter_type``, ``delete``,
    ``update``, ``rename_table``, ``rename_column``, ``rename_schema``,
    ``calls`` (``functions`` a statement runs) and ``uncountable`` (``reason``).
    """

    kind: str
    relation: Relation | None = None
    column: str | None = None
    new_name: str | None = None  # renames; for rename_table/SET SCHEMA: new_schema too
    new_schema: str | None = None
    cascade: bool = False
    only: bool = False
    object_type: str | None = None  # pg_get_object_address's type, for drop
    object_names: tuple[str, ...] = ()
    object_args: tuple[str, ...] = ()
    new_type: str | None = None
    expression: str | None = None  # USING of alter_type; WHERE of delete/update
    alias: str | None = None
    from_list: str | None = None  # USING of delete, FROM of update
    with_clause: str | None = None
    assignments: tuple[tuple[str, str | None], ...] = ()  # update: (column, expression; None for DEFAULT)
    functions: tuple[tuple[str | None, str], ...] = ()
    reason: str | None = None
    sql: str = ""

    @property
    def key(self) -> tuple[str, Relation | None, str | None]:
        """What the statement names: ``(kind, relation, column)``; how ``impact`` matches losses to its rows."""
        return self.kind, self.relation, self.column


class Loss(NamedTuple):
    """What one step destroys: ``column`` is ``"*"`` for whole rows (or an object without data, ``lost`` 0)."""

    rev: str
    table: str
    column: str
    lost: int
    what: str


class Uncountable(Exception):  # noqa: N818 - read as "this step is uncountable: <reason>"
    """A statement whose loss cannot be known: ``str()`` says why, naming the statement; ``rev`` is its revision."""

    rev = ""


HARMLESS = frozenset({
    "AlterCollationStmt", "AlterDatabaseRefreshCollStmt", "AlterDatabaseSetStmt", "AlterDatabaseStmt",
    "AlterDefaultPrivilegesStmt", "AlterDomainStmt", "AlterEnumStmt", "AlterEventTrigStmt", "AlterFdwStmt",
    "AlterForeignServerStmt", "AlterFunctionStmt", "AlterObjectDependsStmt", "AlterOperatorStmt", "AlterOwnerStmt",
    "AlterPolicyStmt", "AlterPublicationStmt", "AlterRoleSetStmt", "AlterRoleStmt", "AlterSeqStmt",
    "AlterStatsStmt", "AlterSubscriptionStmt", "AlterSystemStmt", "AlterTSConfigurationStmt",
    "AlterTSDictionaryStmt", "AlterTableMoveAllStmt", "AlterTableSpaceOptionsStmt", "AlterTypeStmt",
    "AlterUserMappingStmt", "CheckPointStmt", "ClosePortalStmt", "ClusterStmt", "CommentStmt", "CompositeTypeStmt",
    "ConstraintsSetStmt", "CopyStmt", "CreateAmStmt", "CreateCastStmt", "CreateConversionStmt", "CreateDomainStmt",
    "CreateEnumStmt", "CreateEventTrigStmt", "CreateExtensionStmt", "CreateFdwStmt", "CreateForeignServerStmt",
    "CreateForeignTableStmt", "CreateFunctionStmt", "CreateOpClassStmt", "CreateOpFamilyStmt", "CreatePLangStmt",
    "CreatePolicyStmt", "CreatePublicationStmt", "CreateRangeStmt", "CreateRoleStmt", "CreateSchemaStmt",
    "CreateSeqStmt", "CreateStatsStmt", "CreateStmt", "CreateSubscriptionStmt", "CreateTableAsStmt",
    "CreateTableSpaceStmt", "CreateTransformStmt", "CreateTrigStmt", "CreateUserMappingStmt", "CreatedbStmt",
    "DeallocateStmt", "DeclareCursorStmt", "DefineStmt", "DiscardStmt", "DropRoleStmt", "DropSubscriptionStmt",
    "DropTableSpaceStmt", "DropUserMappingStmt", "ExplainStmt", "FetchStmt", "GrantRoleStmt", "GrantStmt",
    "ImportForeignSchemaStmt", "IndexStmt", "InsertStmt", "ListenStmt", "LoadStmt", "LockStmt", "NotifyStmt",
    "PrepareStmt", "ReassignOwnedStmt", "RefreshMatViewStmt", "ReindexStmt", "RuleStmt", "SecLabelStmt",
    "SelectStmt", "TransactionStmt", "UnlistenStmt", "VacuumStmt", "VariableSetStmt", "VariableShowStmt",
    "ViewStmt",
    # read below, statement by statement
    "AlterObjectSchemaStmt", "AlterTableStmt", "DeleteStmt", "DropStmt", "RenameStmt", "TruncateStmt", "UpdateStmt",
})
"""Kinds of statement the reader reads; any other kind is uncountable.

Each either destroys no rows or values of existing tables (a ``CREATE``, a
``GRANT``, ``INSERT``, ``SELECT``, ...) or is read statement by statement here.
"""

_STORED_ONLY = frozenset({
    "CreateStmt", "ViewStmt", "CreateFunctionStmt", "CreateTrigStmt", "RuleStmt", "CreatePolicyStmt",
    "AlterPolicyStmt", "CreateDomainStmt", "CommentStmt", "DefineStmt", "PrepareStmt", "DeclareCursorStmt",
})
"""Statements whose expressions are stored, not run now: the functions they name are not called by the step."""

RISKY_BUILTINS = frozenset({
    "lo_unlink", "lo_truncate", "lo_truncate64", "lo_put", "lo_from_bytea", "lo_import",
    "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
    "dblink_exec",
})
"""Functions in ``pg_catalog`` that run SQL given as text or change large objects: calling one is uncountable."""

_OBJECT_TYPES = {
    enums.ObjectType.OBJECT_SCHEMA: "schema", enums.ObjectType.OBJECT_TYPE: "type",
    enums.ObjectType.OBJECT_DOMAIN: "domain", enums.ObjectType.OBJECT_EXTENSION: "extension",
    enums.ObjectType.OBJECT_VIEW: "view", enums.ObjectType.OBJECT_MATVIEW: "materialized view",
    enums.ObjectType.OBJECT_INDEX: "index", enums.ObjectType.OBJECT_SEQUENCE: "sequence",
    enums.ObjectType.OBJECT_FOREIGN_TABLE: "foreign table", enums.ObjectType.OBJECT_FUNCTION: "function",
    enums.ObjectType.OBJECT_PROCEDURE: "procedure", enums.ObjectType.OBJECT_ROUTINE: "routine",
    enums.ObjectType.OBJECT_AGGREGATE: "aggregate", enums.ObjectType.OBJECT_COLLATION: "collation",
    enums.ObjectType.OBJECT_TRIGGER: "trigger", enums.ObjectType.OBJECT_RULE: "rule",
    enums.ObjectType.OBJECT_POLICY: "policy", enums.ObjectType.OBJECT_FOREIGN_SERVER: "server",
    enums.ObjectType.OBJECT_FDW: "foreign-data wrapper", enums.ObjectType.OBJECT_OPERATOR: "operator",
    enums.ObjectType.OBJECT_CONVERSION: "conversion", enums.ObjectType.OBJECT_TABCONSTRAINT: "table constraint",
    enums.ObjectType.OBJECT_TSCONFIGURATION: "text search configuration",
    enums.ObjectType.OBJECT_TSDICTIONARY: "text search dictionary", enums.ObjectType.OBJECT_CAST: "cast",
    enums.ObjectType.OBJECT_TRANSFORM: "transform", enums.ObjectType.OBJECT_PUBLICATION: "publication",
    enums.ObjectType.OBJECT_STATISTIC_EXT: "statistics object", enums.ObjectType.OBJECT_EVENT_TRIGGER: "event trigger",
    enums.ObjectType.OBJECT_LANGUAGE: "language", enums.ObjectType.OBJECT_ACCESS_METHOD: "access method",
}
"""``DROP`` object kinds and the name ``pg_get_object_address`` gives them."""


# -- reading ----------------------------------------------------------------------------------------


def _sql(node: Any) -> str:
    """A parse tree (an expression, a type, a FROM list) printed back as SQL by pglast."""
    return str(RawStream()(node))


def _relation(range_var: ast.RangeVar) -> Relation:
    return range_var.schemaname, range_var.relname


def _strings(nodes: Iterable[Any]) -> tuple[str, ...]:
    return tuple(node.sval for node in nodes)


class _Calls(Visitor):
    """The functions a statement calls, ``(schema or None, name)``."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str | None, str]] = []

    def visit_FuncCall(self, ancestors: Any, node: ast.FuncCall) -> None:  # noqa: N802 - pglast's naming
        names = _strings(node.funcname)
        self.found.append((names[-2] if len(names) > 1 else None, names[-1]))


def _snippet(text: str) -> str:
    return one_line(" ".join(text.split()), 80)


def read_sql(sql: str) -> list[Destruction]:
    """What the SQL ``sql`` (one or more statements) can destroy, read by PostgreSQL's grammar.

    Examples
    --------
    >>> [(d.kind, d.relation, d.only, d.cascade) for d in read_sql("truncate only a, s.b restart identity cascade")]
    [('truncate', (None, 'a'), True, True), ('truncate', ('s', 'b'), False, True)]
    >>> print(read_sql("DROP TABLE songs; SELECT 1 FROM")[0].reason)
    PostgreSQL's grammar cannot read it: syntax error at end of input
    """
    try:
        parsed = pglast.parse_sql(sql)
    except ParseError as err:
        return [Destruction("uncountable", reason=f"PostgreSQL's grammar cannot read it: {err.args[0]}",
                            sql=_snippet(sql))]
    encoded = sql.encode()
    found = []
    for raw in parsed:
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(encoded)
        found += _read(raw.stmt, _snippet(encoded[start:end].decode(errors="replace")))
    return found


def _read(node: Any, text: str) -> list[Destruction]:  # noqa: C901 - one branch per kind of statement
    kind = type(node).__name__
    if kind not in HARMLESS:
        return [Destruction("uncountable", reason=_UNREADABLE.get(kind, f"the guard does not read {kind} statements"),
                            sql=text)]
    found: list[Destruction] = []
    if kind not in _STORED_ONLY:
        calls = _Calls()
        calls(node)
        if calls.found:
            found.append(Destruction("calls", functions=tuple(dict.fromkeys(calls.found)), sql=text))
    if isinstance(node, ast.DropStmt):
        found += _read_drop(node, text)
    elif isinstance(node, ast.TruncateStmt):
        cascade = node.behavior == enums.DropBehavior.DROP_CASCADE
        found += [Destruction("truncate", _relation(rv), only=not rv.inh, cascade=cascade, sql=text)
                  for rv in node.relations]
    elif isinstance(node, ast.AlterTableStmt):
        found += _read_alter_table(node, text)
    elif isinstance(node, ast.RenameStmt):
        found += _read_rename(node, text)
    elif isinstance(node, ast.AlterObjectSchemaStmt) and node.objectType == enums.ObjectType.OBJECT_TABLE:
        relation = _relation(node.relation)
        found.append(Destruction("rename_table", relation, new_name=relation[1], new_schema=node.newschema, sql=text))
    elif isinstance(node, ast.DeleteStmt | ast.UpdateStmt):
        found += _read_delete_or_update(node, text)
    elif isinstance(node, ast.InsertStmt) and node.onConflictClause is not None and (
            node.onConflictClause.action == enums.OnConflictAction.ONCONFLICT_UPDATE):
        found.append(Destruction("uncountable", reason="INSERT ... ON CONFLICT DO UPDATE overwrites rows "
                                 "the guard cannot count", sql=text))
    elif isinstance(node, ast.CopyStmt) and node.is_program:
        found.append(Destruction("uncountable", reason="COPY ... PROGRAM runs a command", sql=text))
    elif isinstance(node, ast.ExplainStmt):
        analyze = any(option.defname == "analyze" for option in node.options or ())
        if analyze:
            found += [d for d in _read(node.query, text) if d.kind != "calls"]
    return found


_UNREADABLE = {
    "DoStmt": "a DO block runs procedural code, which the guard cannot read",
    "CallStmt": "CALL runs a procedure, which the guard cannot read",
    "ExecuteStmt": "EXECUTE runs a prepared statement, which the guard cannot read",
    "MergeStmt": "MERGE can update and delete rows the guard cannot count",
    "DropdbStmt": "DROP DATABASE destroys a whole database",
    "DropOwnedStmt": "DROP OWNED drops every object of a role",
    "AlterExtensionStmt": "ALTER EXTENSION runs the extension's own scripts",
    "AlterExtensionContentsStmt": "ALTER EXTENSION changes what the extension owns, and so what dropping it drops",
}


def _read_drop(node: ast.DropStmt, text: str) -> list[Destruction]:
    cascade = node.behavior == enums.DropBehavior.DROP_CASCADE
    if node.removeType == enums.ObjectType.OBJECT_TABLE:
        found = []
        for names in node.objects:
            parts = _strings(names)
            if len(parts) > 2:  # database.schema.table: the server refuses another database's table
                continue
            relation = (parts[0] if len(parts) == 2 else None, parts[-1])
            found.append(Destruction("drop", relation, cascade=cascade, object_type="table",
                                     object_names=parts, sql=text))
        return found
    if not cascade:
        return []  # RESTRICT: the server refuses to drop anything that other objects need
    object_type = _OBJECT_TYPES.get(node.removeType)
    if object_type is None:
        return [Destruction("uncountable", reason=f"the guard cannot follow what DROP {node.removeType.name[7:]} "
                            "... CASCADE reaches", sql=text)]
    found = []
    for target in node.objects:
        names: tuple[str, ...]
        args: tuple[str, ...] = ()
        if isinstance(target, ast.String):
            names = (target.sval,)
        elif isinstance(target, ast.TypeName):
            names = (_sql(target),)
        elif isinstance(target, ast.ObjectWithArgs):
            names = _strings(target.objname)
            args = tuple(_sql(arg) for arg in target.objargs or ())
            if target.args_unspecified:
                return [Destruction("uncountable", reason=f"DROP {object_type.upper()} without its argument "
                                    "types names no one function to follow", sql=text)]
        else:
            names = _strings(target)
        found.append(Destruction("drop", cascade=True, object_type=object_type, object_names=names,
                                 object_args=args, sql=text))
    return found


def _read_alter_table(node: ast.AlterTableStmt, text: str) -> list[Destruction]:
    if node.objtype == enums.ObjectType.OBJECT_TYPE and any(
            cmd.subtype in (enums.AlterTableType.AT_DropColumn, enums.AlterTableType.AT_AlterColumnType)
            for cmd in node.cmds):
        return [Destruction("uncountable", reason="ALTER TYPE ... DROP/ALTER ATTRIBUTE changes the values of "
                            "every column of that type", sql=text)]
    if node.objtype != enums.ObjectType.OBJECT_TABLE:
        return []
    relation, only = _relation(node.relation), not node.relation.inh
    found = []
    for cmd in node.cmds:
        if cmd.subtype == enums.AlterTableType.AT_DropColumn:
            found.append(Destruction("drop_column", relation, cmd.name, only=only,
                                     cascade=cmd.behavior == enums.DropBehavior.DROP_CASCADE, sql=text))
        elif cmd.subtype == enums.AlterTableType.AT_AlterColumnType:
            using = cmd.def_.raw_default
            found.append(Destruction("alter_type", relation, cmd.name, only=only, new_type=_sql(cmd.def_.typeName),
                                     expression=None if using is None else _sql(using), sql=text))
    return found


def _read_rename(node: ast.RenameStmt, text: str) -> list[Destruction]:
    if node.renameType == enums.ObjectType.OBJECT_TABLE:
        relation = _relation(node.relation)
        return [Destruction("rename_table", relation, new_name=node.newname, new_schema=relation[0], sql=text)]
    if node.renameType == enums.ObjectType.OBJECT_COLUMN and node.relationType == enums.ObjectType.OBJECT_TABLE:
        return [Destruction("rename_column", _relation(node.relation), node.subname, new_name=node.newname, sql=text)]
    if node.renameType == enums.ObjectType.OBJECT_SCHEMA:
        return [Destruction("rename_schema", (node.subname, ""), new_name=node.newname, sql=text)]
    return []


def _read_delete_or_update(node: ast.DeleteStmt | ast.UpdateStmt, text: str) -> list[Destruction]:
    where = node.whereClause
    if isinstance(where, ast.CurrentOfExpr):
        return [Destruction("uncountable", reason="WHERE CURRENT OF names rows through a cursor", sql=text)]
    relation = node.relation
    alias = relation.alias.aliasname if relation.alias else None
    shared = {
        "only": not relation.inh, "alias": alias,
        "expression": None if where is None else _sql(where),
        "with_clause": None if node.withClause is None else (
            f"WITH {'RECURSIVE ' if node.withClause.recursive else ''}{_sql(node.withClause)}"),
        "sql": text,
    }
    if isinstance(node, ast.DeleteStmt):
        using = node.usingClause
        return [Destruction("delete", _relation(relation), from_list=", ".join(_sql(u) for u in using or ()) or None,
                            **shared)]
    assignments = []
    for target in node.targetList:
        if target.indirection or isinstance(target.val, ast.MultiAssignRef):
            return [Destruction("uncountable", reason="an UPDATE that assigns through a subscript, a field or a row "
                                "of columns", sql=text)]
        assignments.append((target.name, None if isinstance(target.val, ast.SetToDefault) else _sql(target.val)))
    return [Destruction("update", _relation(relation), from_list=", ".join(_sql(f) for f in node.fromClause or ())
                        or None, assignments=tuple(assignments), **shared)]


class _Statements(io.StringIO):
    """The output buffer of an offline run: each statement Alembic writes is read as it comes."""

    def __init__(self, found: list[Destruction]) -> None:
        super().__init__()
        self.found = found
        self.muted = 0

    def write(self, text: str) -> int:
        if not self.muted and text.strip():
            self.found += read_sql(text)
        return len(text)


def _from_operation(operation: ops.MigrateOperation) -> list[Destruction]:
    if isinstance(operation, ops.DropTableOp):
        relation = (operation.schema, operation.table_name)
        names = tuple(part for part in relation if part is not None)
        return [Destruction("drop", relation, object_type="table", object_names=names,
                            sql=f"op.drop_table({operation.table_name!r})")]
    assert isinstance(operation, ops.DropColumnOp)
    return [Destruction("drop_column", (operation.schema, operation.table_name), operation.column_name,
                        sql=f"op.drop_column({operation.table_name!r}, {operation.column_name!r})")]


def read_step(script: Script, *, upgrade: bool) -> list[Destruction]:
    """What one revision's ``upgrade()`` (or ``downgrade()``) can destroy, in the order it would run.

    The step runs offline (no database): ``op.drop_table``/``op.drop_column``
    are read from their operation objects, everything else the step sends
    from its SQL (:func:`read_sql`). Raises whatever the step's code raises
    when it needs a live database (``op.get_bind()``); the caller decides.

    Examples
    --------
    >>> from alembic.script import ScriptDirectory
    >>> from playlist_tools import migrations
    >>> step = ScriptDirectory.from_config(migrations.config()).get_revision("0002")
    >>> [(d.kind, d.relation, d.column) for d in read_step(step, upgrade=False)]
    [('drop_column', (None, 'playlists'), 'description')]
    """
    found: list[Destruction] = []
    buffer = _Statements(found)
    with quiet_alembic():
        context = MigrationContext.configure(
            dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True})
    operations = Operations(context)
    invoke = operations.invoke

    def reading(operation: Any) -> Any:
        if buffer.muted or not isinstance(operation, ops.DropTableOp | ops.DropColumnOp):
            return invoke(operation)
        found.extend(_from_operation(operation))
        buffer.muted += 1  # its statement is the operation just read
        try:
            return invoke(operation)
        finally:
            buffer.muted -= 1

    operations.invoke = reading  # type: ignore[method-assign]
    # Alembic's op proxy is a module global: runs in other threads take turns with this one.
    with ONE_RUN_AT_A_TIME, quiet_alembic(), installed_operations(operations):
        (script.module.upgrade if upgrade else script.module.downgrade)()
    return found


# -- counting ---------------------------------------------------------------------------------------

_DEPENDENTS = sa.text("""
    WITH RECURSIVE dropped(classid, objid, objsubid, how) AS (
        SELECT CAST(:classid AS oid), CAST(:objid AS oid), CAST(:objsubid AS int), CAST('r' AS "char")
        UNION
        SELECT step.classid, step.objid, step.objsubid, step.how FROM dropped x CROSS JOIN LATERAL (
            SELECT d.classid, d.objid, d.objsubid, CASE WHEN x.how = 'n' THEN x.how ELSE d.deptype END AS how
            FROM pg_depend d
            WHERE d.refclassid = x.classid AND d.refobjid = x.objid AND (x.objsubid = 0 OR d.refobjsubid = x.objsubid)
              AND d.deptype <> 'p' AND (:cascade OR d.deptype <> 'n')
            UNION ALL
            -- an object that is part of another (a view's rule) takes its owner with it
            SELECT d.refclassid, d.refobjid, d.refobjsubid, x.how FROM pg_depend d
            WHERE d.classid = x.classid AND d.objid = x.objid AND d.deptype = 'i'
        ) AS step
    )
    SELECT x.classid = 'pg_class'::regclass AND x.objsubid = 0 AND c.relkind = 'r' AS is_table,
           x.classid = 'pg_class'::regclass AND x.objsubid > 0 AND c.relkind IN ('r', 'p') AS is_column,
           x.classid = 'pg_class'::regclass AND c.relkind = 'p' AS is_partitioned,
           x.objid AS oid, x.objsubid, a.attname AS column_name, bool_or(x.how = 'n') AS by_cascade,
           pg_describe_object(x.classid, x.objid, x.objsubid) AS described
    FROM dropped x
    LEFT JOIN pg_class c ON x.classid = 'pg_class'::regclass AND c.oid = x.objid
    LEFT JOIN pg_attribute a ON x.classid = 'pg_class'::regclass AND a.attrelid = x.objid AND a.attnum = x.objsubid
    WHERE NOT (x.classid = 'pg_class'::regclass AND c.relkind IN ('t', 'i', 'I') AND x.objsubid = 0)
      AND x.classid NOT IN ('pg_type'::regclass, 'pg_rewrite'::regclass, 'pg_attrdef'::regclass)
      AND NOT (x.classid = 'pg_class'::regclass AND x.objsubid > 0 AND a.attisdropped)
      AND NOT (x.classid = 'pg_trigger'::regclass
               AND EXISTS (SELECT 1 FROM pg_trigger t WHERE t.oid = x.objid AND t.tgisinternal))
    GROUP BY x.classid, x.objid, x.objsubid, c.relkind, a.attname
    ORDER BY bool_or(x.how = 'r') DESC, described
""")
"""Everything dropping one object drops, as the server's dependency walk does (``CASCADE`` or not).

Type rows, rules and column defaults are parts of their owners and not listed
again; TOAST tables and indexes are left out (an index loses no data).
"""

_REFERENCING = sa.text("""
    SELECT DISTINCT conrelid AS oid FROM pg_constraint WHERE contype = 'f' AND confrelid = ANY(CAST(:oids AS oid[]))
""")

_ON_DELETE = sa.text("""
    SELECT c.conrelid AS oid, c.confdeltype AS action,
           (SELECT array_agg(quote_ident(attname) ORDER BY k.i) FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)
              JOIN pg_attribute ON attrelid = c.conrelid AND attnum = k.n) AS columns,
           (SELECT array_agg(quote_ident(attname) ORDER BY k.i) FROM unnest(c.confkey) WITH ORDINALITY AS k(n, i)
              JOIN pg_attribute ON attrelid = c.confrelid AND attnum = k.n) AS referenced
    FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = :oid AND c.confdeltype IN ('c', 'n', 'd')
""")

_FIRES = sa.text("""
    SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = :oid AND NOT tgisinternal AND tgenabled <> 'D'
              AND tgtype & CAST(:bit AS int2) <> 0)
         + (SELECT count(*) FROM pg_rewrite WHERE ev_class = :oid AND ev_type = :event)
""")
"""User triggers (TRIGGER_TYPE_DELETE 8, _UPDATE 16, _TRUNCATE 32) and rules (ev_type '4' delete, '2' update)."""

_NOT_BUILTIN = sa.text("""
    SELECT name FROM unnest(CAST(:names AS text[])) AS name
    WHERE NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = name AND p.pronamespace = 'pg_catalog'::regnamespace)
""")


@dataclass
class _Run:
    """Names as one run sees them, followed through its renames and drops, against the database now."""

    connection: Connection
    schema: str = ""
    tables: dict[Relation, int | None] = field(default_factory=dict)  # (schema, name) in the run -> oid now
    columns: dict[tuple[int, str], str | None] = field(default_factory=dict)  # (oid, name in the run) -> name now
    schemas: dict[str, str | None] = field(default_factory=dict)  # schema name in the run -> its name now
    gone: set[int] = field(default_factory=set)

    def canonical(self, relation: Relation) -> Relation:
        return relation[0] or self.schema, relation[1]

    def oid(self, relation: Relation) -> int | None:
        key = self.canonical(relation)
        if key in self.tables:
            return self.tables[key]
        schema = self.schemas.get(key[0], key[0])
        if schema is None:
            return None
        oid = self.connection.execute(sa.text("SELECT CAST(to_regclass(:name) AS oid)"),
                                      {"name": _quote(schema, key[1])}).scalar()
        kind = oid and self.connection.execute(sa.text("SELECT relkind FROM pg_class WHERE oid = :o"), {"o": oid}
                                               ).scalar()
        return None if oid is None or oid in self.gone or kind not in ("r", "p") else int(oid)

    def column(self, oid: int, name: str) -> str | None:
        now = self.columns.get((oid, name), name)
        if now is None:
            return None
        exists = self.connection.execute(
            sa.text("SELECT 1 FROM pg_attribute WHERE attrelid = :o AND attname = :n AND attnum > 0 "
                    "AND NOT attisdropped"), {"o": oid, "n": now}).first()
        return now if exists else None

    def names(self, oid: int) -> tuple[str, str]:
        """``(shown, quoted)``: the table as messages name it (schema only outside the current one), and for SQL."""
        row = self.connection.execute(sa.text(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = :o"), {"o": oid}).one()
        shown = row.relname if row.nspname == self.schema else f"{row.nspname}.{row.relname}"
        return shown, _quote(row.nspname, row.relname)


def _quote(schema: str | None, name: str) -> str:
    quoted = '"' + name.replace('"', '""') + '"'
    return quoted if schema is None else '"' + schema.replace('"', '""') + '".' + quoted


def _scalar(connection: Connection, sql: str) -> int:
    """``sql``'s one integer; ``%`` in the step's own text (``LIKE 'a%'``) is doubled, as both drivers want."""
    return int(connection.exec_driver_sql(sql.replace("%", "%%")).scalar_one())


def _attempt(connection: Connection, sql: str) -> int | str:
    """``sql``'s count, or the server's one-line reason it cannot be evaluated now (in a savepoint)."""
    try:
        with connection.begin_nested():
            return _scalar(connection, sql)
    except sa.exc.DBAPIError as err:
        return one_line(first_line(err.orig if err.orig is not None else err), 100)


Special = dict[tuple[str, str, str], tuple[str, str]]
"""(revision, table, column) -> (count SQL, what it counts): drops known to lose less than every value."""


def count(connection: Connection, steps: Iterable[tuple[str, list[Destruction]]],
          special: Special | None = None) -> list[tuple[Loss, Destruction]]:
    """What each ``(revision, destructions)`` step would destroy, counted in the database as it is now.

    Returns each :class:`Loss` with the :class:`Destruction` that causes it,
    in run order. Reads only: counts run in savepoints and leave nothing behind.

    Raises
    ------
    Uncountable
        For the first destruction whose loss cannot be known, naming it.

    Examples
    --------
    >>> from playlist_tools import db
    >>> with db.fresh_database() as url, db.transaction(url) as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1), (2);"
    ...                              "CREATE TABLE b (a_id int REFERENCES a); INSERT INTO b VALUES (1)")
    ...     [loss[1:] for loss, _ in count(conn, [("0009", read_sql("TRUNCATE a CASCADE"))])]
    [('a', '*', 2, 'rows'), ('b', '*', 1, 'rows, by cascade')]
    """
    run = _Run(connection, connection.exec_driver_sql("SELECT current_schema()").scalar_one())
    found: list[tuple[Loss, Destruction]] = []
    for rev, destructions in steps:
        for d in destructions:
            try:
                found += [(loss, d) for loss in _count_one(run, rev, d, special or {})]
            except Uncountable as err:
                err.rev = rev
                raise
    return found


def _count_one(run: _Run, rev: str, d: Destruction, special: Special) -> list[Loss]:  # noqa: C901, PLR0911, PLR0912
    conn = run.connection
    if d.kind == "uncountable":
        raise Uncountable(f"{d.reason} ({d.sql})")
    if d.kind == "calls":
        risky = [".".join(filter(None, f)) for f in d.functions if f[1] in RISKY_BUILTINS]
        outside = [".".join(filter(None, f)) for f in d.functions if f[0] not in (None, "pg_catalog")]
        unqualified = [name for schema, name in d.functions if schema is None and name not in RISKY_BUILTINS]
        if unqualified:
            outside += list(conn.execute(_NOT_BUILTIN, {"names": unqualified}).scalars())
        if risky or outside:
            raise Uncountable(f"it calls {', '.join(dict.fromkeys(risky + outside))}, which can run anything "
                              f"the guard cannot read ({d.sql})")
        return []
    if d.kind == "rename_schema":
        assert d.relation is not None and d.new_name is not None
        run.schemas[d.new_name] = run.schemas.get(d.relation[0] or "", d.relation[0])
        run.schemas[d.relation[0] or ""] = None
        for key in [key for key in run.tables if key[0] == d.relation[0]]:
            run.tables[(d.new_name, key[1])] = run.tables.pop(key)
        return []
    if d.kind == "drop" and d.object_type != "table":
        return _cascade(run, rev, d, _address(run, d))
    assert d.relation is not None
    oid = run.oid(d.relation)
    if d.kind == "rename_table":
        assert d.new_name is not None
        run.tables[run.canonical((d.new_schema, d.new_name))] = oid
        run.tables[run.canonical(d.relation)] = None
        return []
    if oid is None:
        return []  # not in the database now: created by the run (or IF EXISTS of nothing)
    shown, quoted = run.names(oid)
    if d.kind == "rename_column":
        assert d.column is not None and d.new_name is not None
        run.columns[(oid, d.new_name)], run.columns[(oid, d.column)] = run.column(oid, d.column), None
        return []
    if d.kind == "drop":
        run.tables[run.canonical(d.relation)] = None
        return _cascade(run, rev, d, ("pg_class", oid, 0))
    if d.kind == "truncate":
        return _truncate(run, rev, d, oid)
    if d.kind in ("delete", "update"):
        return _delete_or_update(run, rev, d, oid, shown, quoted)
    assert d.column is not None
    column = run.column(oid, d.column)
    if column is None:
        return []
    if d.kind == "drop_column":
        run.columns[(oid, d.column)] = None
        attnum = conn.execute(sa.text("SELECT attnum FROM pg_attribute WHERE attrelid = :o AND attname = :n"),
                              {"o": oid, "n": column}).scalar_one()
        losses = _cascade(run, rev, d, ("pg_class", oid, int(attnum)))
        if (rev, shown, column) in special:
            sql, what = special[(rev, shown, column)]
            losses[0] = Loss(rev, shown, column, _scalar(conn, sql), what)
        return losses
    # alter_type: what does not survive the new type and back
    old = conn.execute(sa.text("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                               "WHERE attrelid = :o AND attname = :n"), {"o": oid, "n": column}).scalar_one()
    value = '"' + column.replace('"', '""') + '"'
    converted = f"(({d.expression or value})::{d.new_type})::{old}"
    only = "ONLY " if d.only else ""
    lost = _attempt(conn, f"SELECT count(*) FROM {only}{quoted} WHERE {value} IS NOT NULL "
                          f"AND {converted} IS DISTINCT FROM {value}")
    if isinstance(lost, str):  # no way back to compare: every value is converted, count them all
        return [Loss(rev, shown, column, _scalar(conn, f"SELECT count({value}) FROM {only}{quoted}"),
                     "non-null values converted")]
    return [Loss(rev, shown, column, lost, "values changed by the new type")]


def _address(run: _Run, d: Destruction) -> tuple[str, int, int] | None:
    """The object a ``DROP ... CASCADE`` names, as the server resolves it; ``None`` when there is none now."""
    try:
        with run.connection.begin_nested():
            row = run.connection.execute(
                sa.text("SELECT CAST(classid AS regclass)::text, objid, objsubid "
                        "FROM pg_get_object_address(:type, CAST(:names AS text[]), CAST(:args AS text[]))"),
                {"type": d.object_type, "names": list(d.object_names), "args": list(d.object_args)}).one()
    except sa.exc.DBAPIError as err:
        # undefined object, function, table; invalid schema name: none now (created by the run, or IF EXISTS)
        if sqlstate(err) in ("42704", "42883", "42P01", "3F000"):
            return None
        raise Uncountable(f"the server cannot resolve what it drops: {one_line(first_line(err.orig), 100)} "
                          f"({d.sql})") from err
    return row[0], int(row[1]), int(row[2])


def _cascade(run: _Run, rev: str, d: Destruction, root: tuple[str, int, int] | None) -> list[Loss]:
    """The rows and values (and data-less objects) that dropping ``root`` destroys, the root first.

    Objects that are parts of what is dropped (its indexes, constraints,
    owned sequences) are not listed; objects only ``CASCADE`` reaches (a
    view, another table's foreign key or column) are, with 0 lost when they hold no data.
    """
    if root is None:
        return []
    conn = run.connection
    classid = conn.execute(sa.text("SELECT CAST(CAST(:c AS regclass) AS oid)"), {"c": root[0]}).scalar_one()
    rows = conn.execute(_DEPENDENTS, {"classid": classid, "objid": root[1], "objsubid": root[2],
                                      "cascade": d.cascade}).all()
    losses: list[Loss] = []
    dropped_tables = {row.oid for row in rows if (row.is_table or row.is_partitioned) and row.objsubid == 0}
    for row in rows:
        is_root = row.oid == root[1] and row.objsubid == root[2]
        by = ", by cascade" if row.by_cascade else ""
        if (row.is_table or row.is_partitioned) and not is_root and row.oid in run.gone:
            continue  # dropped by an earlier statement of the run
        if row.is_table:
            run.gone.add(row.oid)
            shown, quoted = run.names(row.oid)
            losses.append(Loss(rev, shown, "*", _scalar(conn, f"SELECT count(*) FROM ONLY {quoted}"), f"rows{by}"))
        elif row.is_partitioned:
            run.gone.add(row.oid)  # holds no rows itself: its partitions are listed as tables
        elif row.is_column:
            if row.oid in dropped_tables:
                continue
            shown, quoted = run.names(row.oid)
            name = '"' + row.column_name.replace('"', '""') + '"'
            only = "ONLY " if d.only and is_root else ""
            lost = _scalar(conn, f"SELECT count({name}) FROM {only}{quoted}")
            losses.append(Loss(rev, shown, row.column_name, lost, f"non-null values{by}"))
        elif row.by_cascade and not is_root:
            losses.append(Loss(rev, row.described, "*", 0, "dropped by cascade"))
    return losses


def _truncate(run: _Run, rev: str, d: Destruction, oid: int) -> list[Loss]:
    conn = run.connection
    if conn.execute(_FIRES, {"oid": oid, "bit": 32, "event": "0"}).scalar_one():
        raise Uncountable(f"a trigger on it fires on TRUNCATE ({d.sql})")
    shown, quoted = run.names(oid)
    only = "ONLY " if d.only else ""
    losses = [Loss(rev, shown, "*", _scalar(conn, f"SELECT count(*) FROM {only}{quoted}"), "rows")]
    if not d.cascade:
        return losses
    seen, frontier = {oid}, [oid]
    while frontier:
        referencing = [int(o) for o in conn.execute(_REFERENCING, {"oids": frontier}).scalars() if o not in seen]
        seen |= set(referencing)
        frontier = referencing
        for child in referencing:
            shown, quoted = run.names(child)
            losses.append(Loss(rev, shown, "*", _scalar(conn, f"SELECT count(*) FROM {quoted}"), "rows, by cascade"))
    return losses


def _delete_or_update(run: _Run, rev: str, d: Destruction, oid: int, shown: str, quoted: str) -> list[Loss]:
    conn = run.connection
    bit, event = (8, "4") if d.kind == "delete" else (16, "2")
    if conn.execute(_FIRES, {"oid": oid, "bit": bit, "event": event}).scalar_one():
        raise Uncountable(f"a trigger or rule on {shown} fires on {d.kind.upper()} ({d.sql})")
    alias = _quote(None, d.alias) if d.alias else None
    name = f"{'ONLY ' if d.only else ''}{quoted}{f' AS {alias}' if alias else ''}"
    target = alias or quoted
    conditions = [f"({d.expression})"] if d.expression else []
    if d.kind == "update":
        changes, assigned = [], []
        for column, value in d.assignments:
            now = run.column(oid, column)
            if now is None:
                continue  # a column the run adds: it holds nothing yet
            assigned.append(now)
            here = f"{target}.{_quote(None, now)}"
            changes.append(f"({here} IS NOT NULL AND {here} IS DISTINCT FROM ({value}))" if value
                           else f"{here} IS NOT NULL")
        if not changes:
            return []
        conditions.append("(" + " OR ".join(changes) + ")")
    where = " AND ".join(conditions) or "true"
    if d.from_list:
        where = f"EXISTS (SELECT FROM {d.from_list} WHERE {where})"
    prefix = f"{d.with_clause} " if d.with_clause else ""
    matched = f"{prefix}SELECT {target}.* FROM {name} WHERE {where}"
    lost = _attempt(conn, f"SELECT count(*) FROM ({matched}) AS matched")
    if isinstance(lost, str):
        raise Uncountable(f"its condition cannot be evaluated on the database as it is now: {lost} ({d.sql})")
    if d.kind == "update":
        return [Loss(rev, shown, ", ".join(assigned), lost, "non-null values overwritten")]
    return [Loss(rev, shown, "*", lost, "rows"), *_on_delete(run, rev, oid, matched, {oid}, d)]


def _on_delete(run: _Run, rev: str, oid: int, deleted: str, seen: set[int], d: Destruction) -> list[Loss]:
    """What the foreign keys referencing ``oid`` do to the rows ``deleted`` (a query) takes with it."""
    conn, losses = run.connection, []
    for ref in conn.execute(_ON_DELETE, {"oid": oid}).all():
        child = int(ref.oid)
        shown, quoted = run.names(child)
        if conn.execute(_FIRES, {"oid": child, "bit": 8 if ref.action == "c" else 16,
                                 "event": "4" if ref.action == "c" else "2"}).scalar_one():
            raise Uncountable(f"a trigger or rule on {shown} fires on the rows its foreign key changes ({d.sql})")
        keys = f"({', '.join(ref.columns)})"
        reached = (f"SELECT {quoted}.* FROM {quoted} WHERE {keys} IN "
                   f"(SELECT {', '.join(ref.referenced)} FROM ({deleted}) AS parent)")
        lost = _scalar(conn, f"SELECT count(*) FROM ({reached}) AS reached")
        if ref.action == "c":
            losses.append(Loss(rev, shown, "*", lost, "rows, by ON DELETE CASCADE"))
            if child not in seen:
                losses += _on_delete(run, rev, child, reached, seen | {child}, d)
        else:
            losses.append(Loss(rev, shown, ", ".join(c.strip('"') for c in ref.columns), lost,
                               "non-null values, by ON DELETE SET " + ("NULL" if ref.action == "n" else "DEFAULT")))
    return losses


_ONE = {"rows": "row", "non-null values": "non-null value", "entries out of song order": "entry out of song order"}


def _what(loss: Loss) -> str:
    if loss.lost != 1:
        return loss.what
    head, _, tail = loss.what.partition(",")
    return _ONE.get(head, head.replace("values", "value").replace("rows", "row")) + ("," + tail if tail else "")


def describe_losses(losses: Iterable[Loss]) -> str:
    """The losses that lose something, as one line: ``playlists.description (3 non-null values)``.

    Examples
    --------
    >>> describe_losses([Loss("0002", "playlists", "description", 3, "non-null values"),
    ...                  Loss("0001", "songs", "*", 1, "rows"), Loss("0001", "playlists", "*", 0, "rows"),
    ...                  Loss("0001", "entries", "*", 1, "rows, by cascade")])
    'playlists.description (3 non-null values), songs (1 row), entries (1 row, by cascade)'
    """
    return ", ".join(
        f"{loss.table}{'' if loss.column == '*' else '.' + loss.column} ({loss.lost} {_what(loss)})"
        for loss in losses if loss.lost > 0
    )


def comment(sql: str, version_table: str = "alembic_version") -> str:
    """The ``-- destroys ...`` lines ``--sql`` writes above ``sql`` (no database: what it names, not counts).

    Alembic's own bookkeeping of ``version_table`` is not commented, nor is an
    ``UPDATE``: without the database, whether it overwrites a value or fills a
    new column cannot be told (the online count tells).

    Examples
    --------
    >>> print(comment("DROP TABLE a, b CASCADE;"))
    -- destroys the rows of a (and what CASCADE reaches)
    -- destroys the rows of b (and what CASCADE reaches)
    <BLANKLINE>
    """
    lines = []
    for d in read_sql(sql):
        if d.relation is not None and d.relation[1] == version_table:
            continue
        name = ".".join(filter(None, d.relation)) if d.relation else ".".join(d.object_names)
        more = " (and what CASCADE reaches)" if d.cascade else ""
        if d.kind == "drop":
            lines.append(f"the rows of {name}{more}" if d.object_type == "table"
                         else f"what dropping {d.object_type} {name} CASCADE reaches")
        elif d.kind == "drop_column":
            lines.append(f"the values of {name}.{d.column}{more}")
        elif d.kind == "truncate":
            lines.append(f"the rows of {name}{more}")
        elif d.kind == "alter_type":
            lines.append(f"the values of {name}.{d.column} that do not survive {d.new_type}")
        elif d.kind == "delete":
            lines.append(f"the rows of {name} it deletes")
        elif d.kind == "uncountable":
            lines.append(f"cannot tell what this destroys: {d.reason}")
    return "".join(f"-- {line if line.startswith('cannot') else 'destroys ' + line}\n" for line in lines)
