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
same server, or on the embedded one when the role may not create databases
there or the server is a standby; :func:`drop_replays` drops those.

Who closes what: every function that needs a database opens one
connection and closes it before returning, unless ``config`` carries the
caller's own (``config.attributes["connection"]``), which is left open.

Everything is importable from here. The workings are private modules, one
per concept: ``_verbs`` (the verbs, and the DataFrames they return),
``_loss_reader`` (the one reader of what a step destroys: Alembic's
operations and PostgreSQL's own grammar), ``_data_loss`` (that count for a
planned run, and the consent to it), ``_impact``
(what a step locks, rewrites and scans, measured on a replay), ``_affected``
(which saved queries a step breaks), ``_lint`` (squawk) and ``_env`` (what
``alembic/env.py`` calls). One public submodule,
:mod:`playlist_tools.migrations.locks`, holds the migration lock and
``lock_timeout``. Config resolution, the translation of Alembic's errors,
the replays, rename candidates and revision ids live one room below, in
:mod:`playlist_tools.history`, which :mod:`playlist_tools.schema` shares.

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

# Each public name and the module it lives in: the one list. It drives lazy
# loading (PEP 562: alembic/env.py imports this package, and an `alembic`
# command should not pay for pandas, which only the functions returning frames
# need) and __all__; the TYPE_CHECKING imports below repeat it for type
# checkers only, and tests/test_migrations_api.py checks that they agree.
_WHERE = {
    "AFFECTED_COLUMNS": "._affected", "affected_queries": "._affected",
    "REPO_ROOT": "playlist_tools.history", "config": "playlist_tools.history",
    "drop_replays": "playlist_tools.history",
    "LOSS_COLUMNS": "._data_loss", "data_loss": "._data_loss",
    "IMPACT_COLUMNS": "._impact", "impact": "._impact",
    "LINT_COLUMNS": "._lint", "lint": "._lint",
    "PREVIEW_COLUMNS": "._verbs", "REVISION_COLUMNS": "._verbs",
    "check": "._verbs", "current": "._verbs", "downgrade": "._verbs", "heads": "._verbs", "history": "._verbs",
    "history_diagram": "._verbs", "merge": "._verbs", "preview": "._verbs", "revision": "._verbs",
    "sql": "._verbs", "upgrade": "._verbs",
}
__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from playlist_tools.history import REPO_ROOT, config, drop_replays
    from playlist_tools.migrations._affected import AFFECTED_COLUMNS, affected_queries
    from playlist_tools.migrations._data_loss import LOSS_COLUMNS, data_loss
    from playlist_tools.migrations._impact import IMPACT_COLUMNS, impact
    from playlist_tools.migrations._lint import LINT_COLUMNS, lint
    from playlist_tools.migrations._verbs import (
        PREVIEW_COLUMNS,
        REVISION_COLUMNS,
        check,
        current,
        downgrade,
        heads,
        history,
        history_diagram,
        merge,
        preview,
        revision,
        sql,
        upgrade,
    )


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
