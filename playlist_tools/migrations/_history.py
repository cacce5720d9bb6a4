"""The read-only verbs: ``alembic current``, ``history`` and ``heads`` as DataFrames.

Private to :mod:`playlist_tools.migrations`, which re-exports them.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from alembic.config import Config
from alembic.script import Script

from playlist_tools.migrations._config import current_heads as _current_heads
from playlist_tools.migrations._config import resolve
from playlist_tools.migrations._config import script as _script
from playlist_tools.migrations._errors import alembic_errors as _errors
from playlist_tools.migrations._listing import ordered, revision_frame


def _listing(cfg: Config, scripts: Iterable[Script], indicate_current: bool) -> pd.DataFrame:
    script = _script(cfg)
    current = set(_current_heads(cfg)) if indicate_current else set()
    return revision_frame(ordered(scripts), current, set(script.get_heads()))


def current(config: Config | None = None) -> pd.DataFrame:
    """The revision(s) the database is at (``alembic current``); empty at base.

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open() as ws:
    ...     before = current(ws.config)
    ...     _ = migrations.upgrade(ws.config, "0002")
    ...     after = current(ws.config)
    >>> before.empty, after["rev"].tolist(), after["is_head"].tolist()
    (True, ['0002'], [False])
    """
    cfg = resolve(config)
    script = _script(cfg)
    with _errors(cfg):
        heads_now = _current_heads(cfg)
        scripts = ordered(script.get_revision(r) for r in heads_now)
        return revision_frame(scripts, set(heads_now), set(script.get_heads()))


def history(
    config: Config | None = None, rev_range: str | None = None, *, indicate_current: bool = True
) -> pd.DataFrame:
    """The migration history, base first (``alembic history``).

    Parameters
    ----------
    config : alembic.config.Config or None
        See the module docstring.
    rev_range : str, optional
        ``"start:end"`` (``-r/--rev-range``); either side may be empty.
    indicate_current : bool
        Ask the database which revision is current (``-i/--indicate-current``);
        ``False`` needs no database.

    Examples
    --------
    >>> history(None, "0003:0004", indicate_current=False)
        rev down_rev                             message  is_current  is_head
    0  0003     0002  Added position to playlist entries       False    False
    1  0004     0003   Renamed media_type to file_format       False    False
    """
    cfg = resolve(config)
    base, _, head = (rev_range or ":").partition(":")
    with _errors(cfg):
        scripts = list(_script(cfg).walk_revisions(base or "base", head or "heads"))
        return _listing(cfg, scripts, indicate_current)


def heads(config: Config | None = None, *, indicate_current: bool = True) -> pd.DataFrame:
    """The head revisions (``alembic heads``): more than one means parallel branches.

    ``indicate_current`` is as in :func:`history` (the CLI has no such flag here).

    Examples
    --------
    >>> heads(None, indicate_current=False)["rev"].tolist()[-1] >= "0005"
    True
    """
    cfg = resolve(config)
    script = _script(cfg)
    with _errors(cfg):
        return _listing(cfg, (script.get_revision(r) for r in script.get_heads()), indicate_current)
