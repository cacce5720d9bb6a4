"""Alembic's private API, used in one module (playlist_tools.history._alembic_private): each use still works.

The module is private and has no public path; importing it here is the point: these tests fail loudly,
naming the private name, when an Alembic release changes one of them.
"""

from __future__ import annotations

import io

from alembic import op
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from playlist_tools.history import _alembic_private as private  # the module under test: no public path


def _context(**opts: object) -> MigrationContext:
    return MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": io.StringIO(),
                                                                         **opts})


def test_the_private_names_are_there() -> None:
    private.check()


def test_wrap_plan_replaces_what_run_migrations_calls() -> None:
    def plan(heads: object, ctx: object) -> list[object]:
        return ["step"]

    context = _context(fn=plan)
    private.wrap_plan(context, lambda inner: lambda heads, ctx: [*inner(heads, ctx), "checked"])
    assert list(context._migrations_fn((), context)) == ["step", "checked"]


def test_an_inner_run_gives_the_outer_op_back() -> None:
    outer, inner = Operations(_context()), Operations(_context())
    with private.installed_operations(outer):
        with private.installed_operations(inner):
            assert op._proxy is inner
        assert op._proxy is outer  # Alembic alone would have removed it: the outer run's op.* would fail


def test_statement_runner_sees_every_statement() -> None:
    context = _context()
    seen: list[str] = []

    def replace(run):  # type: ignore[no-untyped-def]
        def recording(construct, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(str(construct))
            return run(construct, *args, **kwargs)
        return recording

    private.statement_runner(context, replace)
    with private.installed_operations(Operations(context)):
        op.execute("SELECT 1")
    assert seen == ["SELECT 1"]
