"""Autogenerate writes the lock-safe form of each risky operation (``process_revision_directives``).

:func:`make_safe` rewrites the operations autogenerate found, both ways
(upgrade and downgrade), before they are rendered:

==========================  ==================================================
Alembic's plain operation    written instead (:mod:`playlist_tools.migrations.safe`)
==========================  ==================================================
``op.create_index``          ``safe.create_index``: ``CONCURRENTLY``, outside the transaction, reruns
``op.drop_index``            ``safe.drop_index``: ``CONCURRENTLY IF EXISTS``
``op.create_foreign_key``    ``safe.create_foreign_key``: ``NOT VALID``, then ``VALIDATE``
``op.create_check_...``      ``safe.create_check_constraint``: the same
``op.create_unique_...``     ``safe.create_unique_constraint``: unique index concurrently, ``USING INDEX``
``op.drop_constraint``       ``safe.drop_constraint``: the plain drop with ``lock_timeout`` retries
``alter_column(nullable=     ``safe.set_not_null``: ``CHECK ... NOT VALID``, validate, ``SET NOT NULL``
False)``
==========================  ==================================================

Each rewritten call has a ``# lock-safe: ...`` comment above it. Operations on
a table the same revision creates (or drops) stay plain: a new table has no
readers to block. Two operations are refused, because no single statement
does them safely: a column type change that rewrites the table, and a new
column whose default is volatile (``random()``, ``clock_timestamp()``,
``gen_random_uuid()``...: every row gets its own value, so the table is
rewritten). Writing such a revision fails with one line naming the
expand/contract steps (a downgrade that shortens a column back is written
plain, with a ``# not lock-safe`` comment, since refusing it would block the
safe upgrade too); :func:`alembic check` and ``preview`` still list the
change.

``-x safe=false`` (``safe=False`` in :func:`playlist_tools.migrations.revision`,
or ``safe = false`` in the ini) writes Alembic's plain forms, refused ones
included.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.render import render_op
from alembic.config import Config
from alembic.operations import ops

from playlist_tools.errors import MigrationError
from playlist_tools.history import run_options
from playlist_tools.migrations._data_loss import flag

__all__ = ["SAFE_OPTION", "NotedOp", "RefusedOp", "SafeOp", "make_safe", "rewrites_table"]

SAFE_OPTION = "safe"
"""``-x safe=false`` / ``safe=False``: write Alembic's plain forms."""

_IMPORT = "from playlist_tools.migrations import safe"

_WHY = {
    "create_index": "built CONCURRENTLY outside the transaction (writes go on); a failed build reruns",
    "drop_index": "dropped CONCURRENTLY outside the transaction (reads and writes go on)",
    "create_foreign_key": "added NOT VALID (no scan), then validated in its own transaction (writes go on)",
    "create_check_constraint": "added NOT VALID (no scan), then validated in its own transaction (writes go on)",
    "create_unique_constraint": "a unique index built CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX",
    "drop_constraint": "its own transaction, with a short lock_timeout and retries",
    "set_not_null": "CHECK (... IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL (no scan), drop the check",
}


class SafeOp(ops.MigrateOperation):
    """A plain operation written as its :mod:`~playlist_tools.migrations.safe` call."""

    def __init__(self, kind: str, plain: ops.MigrateOperation) -> None:
        self.kind = kind
        self.plain = plain

    def to_diff_tuple(self) -> Any:
        return self.plain.to_diff_tuple()  # type: ignore[attr-defined]

    def reverse(self) -> ops.MigrateOperation:
        return self.plain.reverse()  # type: ignore[attr-defined,no-any-return]


class RefusedOp(ops.MigrateOperation):
    """A change that no safe single step makes: listed by ``check``/``preview``, refused when written."""

    def __init__(self, plain: ops.MigrateOperation, reason: str) -> None:
        self.plain = plain
        self.reason = reason

    def to_diff_tuple(self) -> Any:
        return self.plain.to_diff_tuple()  # type: ignore[attr-defined]


@renderers.dispatch_for(SafeOp)
def _render_safe(autogen_context: AutogenContext, safe_op: SafeOp) -> list[str]:
    autogen_context.imports.add(_IMPORT)
    comment = f"# lock-safe: {_WHY[safe_op.kind]}"
    if safe_op.kind == "set_not_null":
        alter = safe_op.plain
        assert isinstance(alter, ops.AlterColumnOp)
        schema = f", schema={alter.schema!r}" if alter.schema else ""
        return [comment, f"safe.set_not_null({alter.table_name!r}, {alter.column_name!r}{schema})"]
    prefix = autogen_context.opts.get("alembic_module_prefix", "op.")
    text = "\n".join(render_op(autogen_context, safe_op.plain))
    plain_call = f"{prefix}{safe_op.kind}("
    assert text.startswith(plain_call), text
    return [comment, f"safe.{safe_op.kind}(" + text[len(plain_call):]]


class NotedOp(ops.MigrateOperation):
    """A plain operation written with a ``# not lock-safe: ...`` comment (a downgrade's table rewrite)."""

    def __init__(self, plain: ops.MigrateOperation, note: str) -> None:
        self.plain = plain
        self.note = note

    def to_diff_tuple(self) -> Any:
        return self.plain.to_diff_tuple()  # type: ignore[attr-defined]


@renderers.dispatch_for(NotedOp)
def _render_noted(autogen_context: AutogenContext, noted: NotedOp) -> list[str]:
    return [f"# not lock-safe: {noted.note}", *render_op(autogen_context, noted.plain)]


@renderers.dispatch_for(RefusedOp)
def _render_refused(autogen_context: AutogenContext, refused: RefusedOp) -> list[str]:
    raise MigrationError(refused.reason)


def _safe_wanted(config: Config | None) -> bool:
    if config is None:
        return True
    return flag(config, SAFE_OPTION, True, "write -x safe=false for Alembic's plain forms, or leave it out",
                given=run_options(config).safe)


def _rewrites(old: sa.types.TypeEngine[Any] | None, new: sa.types.TypeEngine[Any]) -> bool:
    """Whether changing a column from ``old`` to ``new`` rewrites the table (when unsure: yes).

    Catalog-only changes in PostgreSQL: a longer or unlimited ``varchar``,
    ``varchar`` to ``text``; a ``numeric`` with more precision and the same scale.
    """
    if old is None:
        return True
    if isinstance(old, sa.String) and isinstance(new, sa.String) and not isinstance(old, sa.Enum | sa.Text) \
            and not isinstance(new, sa.Enum):
        return new.length is not None and (old.length is None or new.length < old.length)
    if isinstance(old, sa.Text) and isinstance(new, sa.Text):
        return False
    if type(old) is sa.Numeric and type(new) is sa.Numeric:
        same_scale = old.scale == new.scale
        return not (same_scale and (new.precision is None or (old.precision or 0) <= new.precision))
    return type(old) is not type(new) or repr(old) != repr(new)


def rewrites_table(old: sa.types.TypeEngine[Any] | None, new: sa.types.TypeEngine[Any]) -> bool:
    """Whether changing a column's type from ``old`` to ``new`` rewrites the table (when unsure: yes).

    Examples
    --------
    >>> rewrites_table(sa.String(40), sa.String(120)), rewrites_table(sa.String(40), sa.Text())
    (False, False)
    >>> rewrites_table(sa.String(40), sa.Integer()), rewrites_table(sa.String(120), sa.String(40))
    (True, True)
    """
    return _rewrites(old, new)


_CALL = re.compile(r'([A-Za-z_][A-Za-z0-9_$]*)"?\s*\(')


def _volatile_functions(connection: Any, default: Any) -> list[str]:
    """The volatile functions a column default calls, as PostgreSQL's catalog says.

    Every name followed by ``(`` in the compiled default is looked up in
    ``pg_proc``; a name that is not a function (a cast's type) is simply not
    found, and one that is volatile under any signature counts, so a doubt
    refuses rather than lets a table rewrite through.
    """
    if connection is None or default is None or isinstance(default, str):
        return []
    expression = getattr(default, "arg", default)
    text = expression if isinstance(expression, str) else str(expression.compile(dialect=connection.dialect))
    names = sorted({match[1].lower() for match in _CALL.finditer(text)})
    if not names:
        return []
    return sorted(connection.execute(
        sa.text("SELECT DISTINCT proname FROM pg_proc WHERE proname = ANY(:names) AND provolatile = 'v'"),
        {"names": names},
    ).scalars())


def _expand_contract(what: str) -> str:
    return (
        f"{what}, which rewrites the whole table under ACCESS EXCLUSIVE; expand and contract instead "
        f"(add a new column, backfill it in batches, switch reads and writes to it, drop the old one), "
        f"or write the plain form with -x safe=false (safe=False from Python)"
    )


def _rewrite(op_: ops.MigrateOperation, new_tables: set[tuple[str | None, str]],
             connection: Any, downgrade: bool) -> list[ops.MigrateOperation]:
    """One operation as the operations to write instead."""
    if (getattr(op_, "schema", None), getattr(op_, "table_name", None)) in new_tables:
        return [op_]  # a table this revision creates or drops has no readers to block
    if isinstance(op_, ops.ModifyTableOps):
        op_.ops = [new for sub in op_.ops for new in _rewrite(sub, new_tables, connection, downgrade)]
        return [op_]
    if isinstance(op_, ops.CreateIndexOp):
        return [SafeOp("create_index", op_)]
    if isinstance(op_, ops.DropIndexOp):
        return [SafeOp("drop_index", op_)]
    if isinstance(op_, ops.CreateForeignKeyOp):
        return [SafeOp("create_foreign_key", op_)]
    if isinstance(op_, ops.CreateCheckConstraintOp):
        return [SafeOp("create_check_constraint", op_)]
    if isinstance(op_, ops.CreateUniqueConstraintOp):
        return [SafeOp("create_unique_constraint", op_)]
    if isinstance(op_, ops.DropConstraintOp):
        return [SafeOp("drop_constraint", op_)]
    if isinstance(op_, ops.AddColumnOp) and not downgrade:
        column = op_.column
        if column.identity is not None or column.computed is not None:  # filled row by row: a rewrite
            kind = "an identity column" if column.identity is not None else "a generated column"
            return [RefusedOp(op_, _expand_contract(f"{op_.table_name}.{column.name} is added as {kind}"))]
        volatile = _volatile_functions(connection, column.server_default)
        if volatile:
            return [RefusedOp(op_, _expand_contract(
                f"{op_.table_name}.{op_.column.name} is added with a volatile default ({', '.join(volatile)}())"
            ))]
        return [op_]
    if isinstance(op_, ops.AlterColumnOp):
        return _rewrite_alter(op_, downgrade)
    return [op_]


def _rewrite_alter(alter: ops.AlterColumnOp, downgrade: bool) -> list[ops.MigrateOperation]:
    where = f"{alter.table_name}.{alter.column_name}"
    if alter.modify_type is not None and _rewrites(alter.existing_type, alter.modify_type):
        if downgrade:  # the way back from a change the upgrade makes safely: written, and said
            return [NotedOp(alter, "this type change rewrites the table under ACCESS EXCLUSIVE")]
        return [RefusedOp(alter, _expand_contract(
            f"{where} changes type from {alter.existing_type} to {alter.modify_type}"
        ))]
    if alter.modify_nullable is not False or alter.existing_nullable is False:
        return [alter]
    not_null = ops.AlterColumnOp(
        alter.table_name, alter.column_name, schema=alter.schema, existing_type=alter.existing_type,
        existing_nullable=alter.existing_nullable, modify_nullable=False,
    )
    alter.modify_nullable = None
    more = (alter.modify_type is not None or alter.modify_server_default is not False
            or alter.modify_comment is not False or alter.modify_name is not None)
    written: list[ops.MigrateOperation] = [alter] if more else []
    return [*written, SafeOp("set_not_null", not_null)]


def _created_or_dropped(container: ops.OpContainer) -> set[tuple[str | None, str]]:
    return {
        (op_.schema, op_.table_name) for op_ in container.ops
        if isinstance(op_, ops.CreateTableOp | ops.DropTableOp)
    }


def make_safe(context: Any, revision: Any, directives: list[Any]) -> None:
    """``process_revision_directives``: the lock-safe form of each risky operation, both ways.

    Leaves the directives alone when ``-x safe=false`` (``safe=False``) was asked for.
    """
    if not _safe_wanted(getattr(context, "config", None)):
        return
    connection = getattr(context, "bind", None)
    for script in directives:
        if not isinstance(script, ops.MigrationScript):
            continue
        for downgrade, containers in ((False, script.upgrade_ops_list), (True, script.downgrade_ops_list)):
            for container in containers:
                new_tables = _created_or_dropped(container)
                container.ops = [
                    new for op_ in container.ops for new in _rewrite(op_, new_tables, connection, downgrade)
                ]
