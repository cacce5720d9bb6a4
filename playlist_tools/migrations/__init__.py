"""The Alembic commands, for notebooks: they return data instead of printing.

One function per ``alembic`` verb, with the same names and parameters as
:mod:`alembic.command`, ``config`` first. Pass ``None`` as ``config`` for
the repo's migrations on ``$DATABASE_URL`` or the embedded server; pass
:func:`config` (or a :class:`~playlist_tools.workspace.Workspace`'s
``config``) to aim elsewhere. Listings come back as DataFrames with the
columns ``rev, down_rev, message, is_current, is_head``, in history order
(base first; parallel branches by revision id).

``upgrade`` and ``downgrade`` refuse to destroy data unless told it is fine
(``allow_data_loss=True``): see :func:`data_loss` for how the steps' losses are
counted. ``revision`` and ``preview`` take ``renames=`` for autogenerate's
rename candidates. Before a migration: :func:`impact` (what it locks,
rewrites, scans and destroys), :func:`affected_queries` (which queries it
breaks), :func:`history_diagram`; ``playlist_tools.schema.at`` gives the
schema at any revision. They replay the history into cache databases on the
same server; :func:`drop_replays` drops those.

Who closes what: every function that needs a database opens one
connection and closes it before returning, unless ``config`` carries the
caller's own (``config.attributes["connection"]``), which is left open.

Everything is importable from here. The workings are private modules:
``_config`` (``config`` and the one ``config=None`` resolver), ``_errors``
(the one translator of Alembic's errors), ``_history`` (``current``,
``history``, ``heads``), ``_runs`` (``upgrade``, ``downgrade``, ``sql``),
``_revisions`` (``preview``, ``check``, ``revision``, ``merge``),
``_listing`` (the DataFrames), ``_renames`` (rename candidates), ``_data_loss``
and ``_consent`` (what a step destroys, and the consent to it), ``_replay``
(the history replayed elsewhere), ``_impact*``, ``_affected`` and
``_saved_queries``, ``_diagram``, ``_lint`` (squawk) and ``_env`` (what
``alembic/env.py`` calls). One public submodule,
:mod:`playlist_tools.migrations.locks`, holds the migration lock and
``lock_timeout``.

Examples
--------
>>> from playlist_tools import migrations
>>> from playlist_tools.workspace import Workspace
>>> with Workspace.open(upto="0002") as ws:
...     migrations.upgrade(ws.config, "head")[["rev", "message"]]
    rev                        message
0  0001              Initial migration
1  0002  Added description to Playlist
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each public name and the private module it lives in. They are imported on
# first use (PEP 562): alembic/env.py imports this package, and an `alembic`
# command should not pay for pandas, which only the functions returning
# frames need.
_WHERE = {
    "AFFECTED_COLUMNS": "_affected", "affected_queries": "_affected",
    "REPO_ROOT": "_config", "config": "_config",
    "LOSS_COLUMNS": "_data_loss", "data_loss": "_data_loss",
    "history_diagram": "_diagram",
    "current": "_history", "heads": "_history", "history": "_history",
    "IMPACT_COLUMNS": "_impact", "impact": "_impact",
    "LINT_COLUMNS": "_lint", "lint": "_lint",
    "COLUMNS": "_listing", "DIFF_COLUMNS": "_listing",
    "drop_replays": "_replay",
    "check": "_revisions", "merge": "_revisions", "preview": "_revisions", "revision": "_revisions",
    "downgrade": "_runs", "sql": "_runs", "upgrade": "_runs",
}

if TYPE_CHECKING:
    from playlist_tools.migrations._affected import AFFECTED_COLUMNS, affected_queries
    from playlist_tools.migrations._config import REPO_ROOT, config
    from playlist_tools.migrations._data_loss import LOSS_COLUMNS, data_loss
    from playlist_tools.migrations._diagram import history_diagram
    from playlist_tools.migrations._history import current, heads, history
    from playlist_tools.migrations._impact import IMPACT_COLUMNS, impact
    from playlist_tools.migrations._lint import LINT_COLUMNS, lint
    from playlist_tools.migrations._listing import COLUMNS, DIFF_COLUMNS
    from playlist_tools.migrations._replay import drop_replays
    from playlist_tools.migrations._revisions import check, merge, preview, revision
    from playlist_tools.migrations._runs import downgrade, sql, upgrade


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "AFFECTED_COLUMNS",
    "COLUMNS",
    "DIFF_COLUMNS",
    "IMPACT_COLUMNS",
    "LINT_COLUMNS",
    "LOSS_COLUMNS",
    "REPO_ROOT",
    "affected_queries",
    "check",
    "config",
    "current",
    "data_loss",
    "downgrade",
    "drop_replays",
    "heads",
    "history",
    "history_diagram",
    "impact",
    "lint",
    "merge",
    "preview",
    "revision",
    "sql",
    "upgrade",
]
