"""Alembic run on the side: a revision's step rendered offline, quietly, inside a run in progress.

The data-loss count renders each step with :func:`render`; a replay started
from inside ``alembic/env.py`` keeps the log clean with :func:`quiet_alembic`
(and the outer run's proxies with :func:`~._alembic_private.kept_proxies`).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script

from playlist_tools.history._alembic_private import kept_proxies

__all__ = ["quiet_alembic", "render"]


def render(script: Script, *, upgrade: bool = False) -> str:
    """The SQL of one revision's ``downgrade()`` (or ``upgrade()``), rendered offline for PostgreSQL.

    Raises whatever the revision's code raises when it needs a live
    database (``op.get_bind()``); the caller decides what that means.
    Safe inside a run in progress (see :func:`kept_proxies`).
    """
    buffer = io.StringIO()
    with quiet_alembic():
        context = MigrationContext.configure(
            dialect_name="postgresql",
            opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True},
        )
    with quiet_alembic(), kept_proxies(), Operations.context(context):
        (script.module.upgrade if upgrade else script.module.downgrade)()
    return buffer.getvalue()


@contextlib.contextmanager
def quiet_alembic() -> Iterator[None]:
    """Keep out of the log Alembic's INFO lines (``Context impl ...``) about work done on the side.

    Rendering a step offline, or replaying the history elsewhere, is not what
    the user's command does; its lines would only confuse (and would change
    notebook outputs that show the CLI's log).
    """
    loggers = [logging.getLogger(name) for name in ("alembic", "alembic.runtime.migration")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
