"""Every use of Alembic's private API, in one place, each with why no public API serves.

Alembic (1.20) offers no public way to do four things we need; each is one
function here, and :func:`check` verifies the private names they rely on,
so that an Alembic release that changes one fails the test suite
(``tests/test_alembic_private.py``) loudly instead of a migration quietly:

* :func:`wrap_plan`: the data-loss guard must see the steps a run is about
  to execute, for the heads it just read, before the first one runs.
  ``alembic.command.upgrade``/``downgrade`` pass their planner as the public
  ``EnvironmentContext`` keyword ``fn``, which ``MigrationContext.__init__``
  copies to the private ``_migrations_fn`` that ``run_migrations`` calls.
* :func:`kept_proxies`: running Alembic inside a run of Alembic (a replay
  from env.py, a data-loss count, ``impact``'s measuring) removes the outer
  run's ``alembic.op`` and ``alembic.context`` proxies on exit instead of
  restoring them; only the private ``_proxy`` attribute says which was
  installed, and ``_install_proxy`` puts it back.
* :func:`installed_operations`: ``impact`` drives a revision's ``upgrade()`` through an
  ``Operations`` of its own, whose ``invoke`` it wraps; ``Operations.context``
  (public) would build a fresh one, so the private ``_install_proxy`` /
  ``_remove_proxy`` install ours.
* :func:`statement_runner`: ``impact`` measures each statement Alembic sends;
  every statement goes through the private ``DefaultImpl._exec``.
* :func:`detached_copy`: a replay runs ``alembic upgrade`` on a copy of the
  caller's ``Config`` with attributes of its own; ``Config.attributes`` is a
  memoised property stored in the instance ``__dict__``.

Examples
--------
>>> check()
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from alembic import context as alembic_context
from alembic import op as alembic_op
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

__all__ = ["Plan", "check", "detached_copy", "installed_operations", "kept_proxies", "statement_runner", "wrap_plan"]

Runner = TypeVar("Runner", bound=Callable[..., Any])

Plan = Callable[..., Iterable[Any]]
"""What ``alembic.command`` passes as ``fn``: ``(heads, migration_context) -> steps``."""


def check() -> None:
    """Fail with one line naming the private Alembic name that is gone (what the test suite runs).

    Raises
    ------
    AssertionError
        When this Alembic no longer has one of the names this module relies on.
    """
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "fn": check, "output_buffer": io.StringIO()}
    )
    assert getattr(context, "_migrations_fn", None) is check, "MigrationContext keeps opts['fn'] elsewhere"
    assert callable(getattr(context.impl, "_exec", None)), "DefaultImpl._exec is gone: impact cannot see statements"
    operations = Operations(context)
    with installed_operations(operations):
        assert getattr(alembic_op, "_proxy", None) is operations, "alembic.op no longer keeps its proxy in _proxy"
    cfg = Config()
    cfg.attributes["probe"] = True
    assert cfg.__dict__.get("attributes") == {"probe": True}, "Config.attributes is no longer memoised in __dict__"


def wrap_plan(context: MigrationContext, wrap: Callable[[Plan], Plan]) -> None:
    """Replace the function that lists the steps this run executes with ``wrap(it)``.

    Nothing happens when the run has no planner (``alembic revision``, ``check``).
    """
    plan = context.opts.get("fn")
    if plan is not None:
        context._migrations_fn = wrap(plan)


@contextlib.contextmanager
def kept_proxies() -> Iterator[None]:
    """Run Alembic inside a run of Alembic: ``alembic.op`` and ``alembic.context`` work again after."""
    outer = [getattr(module, "_proxy", None) for module in (alembic_context, alembic_op)]
    try:
        yield
    finally:
        for proxy in outer:
            if proxy is not None:
                proxy._install_proxy()


@contextlib.contextmanager
def installed_operations(operations: Operations) -> Iterator[Operations]:
    """``operations`` as ``alembic.op`` for the block; the outer run's ``op`` (if any) comes back after."""
    with kept_proxies():
        operations._install_proxy()
        try:
            yield operations
        finally:
            operations._remove_proxy()


def statement_runner(context: MigrationContext, replace: Callable[[Callable[..., Any]], Runner]) -> Runner:
    """Make every statement ``context`` sends go through ``replace(Alembic's own runner)``; returns that runner."""
    impl = context.impl
    runner = replace(impl._exec)
    impl._exec = runner  # type: ignore[method-assign]
    return runner


def detached_copy(cfg: Config, attributes: Mapping[str, Any]) -> Config:
    """A shallow copy of ``cfg`` with ``attributes`` as its own attributes dict; ``cfg``'s stays untouched."""
    replay = copy.copy(cfg)
    replay.__dict__["attributes"] = dict(attributes)
    return replay
