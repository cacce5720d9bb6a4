"""The Alembic commands, for notebooks: they return data instead of printing.

One function per ``alembic`` verb, with the same names and parameters as
:mod:`alembic.command`, ``config`` first. Pass ``None`` as ``config`` for
the repo's migrations on ``$DATABASE_URL`` or the embedded server; pass
:func:`config` (or a :class:`~playlist_tools.workspace.Workspace`'s
``config``) to aim elsewhere. Listings come back as DataFrames with the
columns ``rev, down_rev, message, is_current, is_head``, in history order
(base first; parallel branches by revision id).

``downgrade`` refuses to destroy data unless told it is fine: see
:func:`data_loss` for how it counts what a downgrade would drop.

Who closes what: every function that needs a database opens one
connection and closes it before returning, unless ``config`` carries the
caller's own (``config.attributes["connection"]``), which is left open.

Everything is importable from here; it lives in small modules:
:mod:`~playlist_tools.migration_config` (``config``, connections, errors),
:mod:`~playlist_tools.revisions` (``preview``, ``check``, ``revision``,
``merge``), :mod:`~playlist_tools.listings` (the DataFrames) and
:mod:`~playlist_tools.losses` (what a downgrade destroys).

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

import contextlib
import io
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.script import Script

from playlist_tools import losses
from playlist_tools.losses import data_loss
from playlist_tools.errors import DataLossError, MigrationError
from playlist_tools.listings import COLUMNS, ordered, revision_frame
from playlist_tools.migration_config import REPO_ROOT, config
from playlist_tools.migration_config import alembic_errors as _errors
from playlist_tools.migration_config import current_heads as _current_heads
from playlist_tools.migration_config import script as _script
from playlist_tools.revisions import check, merge, preview, revision

__all__ = [
    "REPO_ROOT", "COLUMNS", "config", "current", "history", "heads", "upgrade",
    "downgrade", "data_loss", "sql", "lint", "preview", "check", "revision", "merge",
]

_make_config = config


def _listing(cfg: Config, scripts: Iterable[Script], indicate_current: bool) -> pd.DataFrame:
    script = _script(cfg)
    current = set(_current_heads(cfg)) if indicate_current else set()
    return revision_frame(ordered(scripts), current, set(script.get_heads()))


# -- the verbs ------------------------------------------------------------------


def current(config: Config | None = None) -> pd.DataFrame:
    """The revision(s) the database is at (``alembic current``); empty at base.

    Examples
    --------
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open() as ws:
    ...     before = current(ws.config)
    ...     _ = upgrade(ws.config, "0002")
    ...     after = current(ws.config)
    >>> before.empty, after["rev"].tolist(), after["is_head"].tolist()
    (True, ['0002'], [False])
    """
    cfg = config if config is not None else _make_config()
    script = _script(cfg)
    with _errors(cfg):
        heads_now = _current_heads(cfg)
        return revision_frame(ordered(script.get_revision(r) for r in heads_now), set(heads_now), set(script.get_heads()))


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
    cfg = config if config is not None else _make_config()
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
    cfg = config if config is not None else _make_config()
    script = _script(cfg)
    with _errors(cfg):
        return _listing(cfg, (script.get_revision(r) for r in script.get_heads()), indicate_current)


@contextlib.contextmanager
def _recording(cfg: Config) -> Iterator[list[str]]:
    """Collect the revisions this call applies or reverts, in the order they run.

    env.py passes ``config.attributes["on_version_apply"]`` to Alembic, which
    calls it inside the migration lock: exact even when another process
    migrates the same database at the same time (comparing heads before
    and after would count its revisions as ours).
    """
    ran: list[str] = []

    def record(*, ctx: object, step: Any, heads: object, run_args: object) -> None:
        if step.is_migration:
            ran.append(step.up_revision_id)

    saved = cfg.attributes.get("on_version_apply")
    cfg.attributes["on_version_apply"] = [*(saved or ()), record]
    try:
        yield ran
    finally:
        if saved is None:
            del cfg.attributes["on_version_apply"]
        else:
            cfg.attributes["on_version_apply"] = saved


def _ran(cfg: Config, revisions: list[str], upward: bool) -> pd.DataFrame:
    """What ran, in history order (reversed for a downgrade), not Alembic's.

    Alembic may run parallel branches in either order from one run to the
    next; history order keeps notebook outputs the same on every run.
    """
    script = _script(cfg)
    steps = ordered(script.get_revision(r) for r in revisions)
    frame = revision_frame(steps, set(_current_heads(cfg)), set(script.get_heads()))
    return frame if upward else frame.iloc[::-1].reset_index(drop=True)


def upgrade(config: Config | None = None, revision: str = "head", *, tag: str | None = None) -> pd.DataFrame:
    """Upgrade the database (``alembic upgrade <revision>``).

    Parameters
    ----------
    config : alembic.config.Config or None
        See the module docstring.
    revision : str
        Target: ``"head"``, ``"heads"``, an id, or ``"+N"``.
    tag : str, optional
        Passed to env.py (``--tag``).

    Returns
    -------
    pandas.DataFrame
        The revisions this call applied (not another process at the same
        time), base first; empty when already there.

    Raises
    ------
    RevisionError
        For an unknown or ambiguous ``revision``; nothing runs.

    Examples
    --------
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open(upto="0003") as ws:
    ...     first = upgrade(ws.config, "+1")
    ...     rest = upgrade(ws.config)
    ...     again = upgrade(ws.config)
    >>> first["rev"].tolist(), rest["rev"].tolist(), again.empty
    (['0001'], ['0002', '0003'], True)
    """
    cfg = config if config is not None else _make_config()
    with _errors(cfg), _recording(cfg) as applied:
        command.upgrade(cfg, revision, tag=tag)
    return _ran(cfg, applied, upward=True)


def downgrade(
    config: Config | None, revision: str, *, allow_data_loss: bool = False, tag: str | None = None
) -> pd.DataFrame:
    """Revert the database (``alembic downgrade <revision>``), refusing to lose data.

    Parameters
    ----------
    config : alembic.config.Config or None
        See the module docstring.
    revision : str
        Target: an id, ``"base"`` or ``"-N"``.
    allow_data_loss : bool
        Run even when :func:`data_loss` counts something (no CLI flag: the CLI never checks).
    tag : str, optional
        Passed to env.py (``--tag``).

    Returns
    -------
    pandas.DataFrame
        The revisions this call reverted, head first.

    Raises
    ------
    DataLossError
        Before anything runs, when data would be lost and ``allow_data_loss`` is false.

    Notes
    -----
    The count is taken just before the downgrade, outside its migration
    lock: rows another session writes in between are not counted.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open(upto="0002") as ws:
    ...     _ = upgrade(ws.config)
    ...     with ws.engine.begin() as connection:
    ...         _ = connection.execute(sa.text("INSERT INTO playlists (title, description) VALUES ('a', 'mine')"))
    ...     try:
    ...         downgrade(ws.config, "-1")
    ...     except DataLossError as err:
    ...         print(err)
    ...     reverted = downgrade(ws.config, "-1", allow_data_loss=True)
    downgrade to '-1' would destroy playlists.description (1 non-null values); pass allow_data_loss=True to downgrade anyway
    >>> reverted["rev"].tolist()
    ['0002']
    """
    cfg = config if config is not None else _make_config()
    if not allow_data_loss:
        what = losses.describe(data_loss(cfg, revision))
        if what:
            raise DataLossError(
                f"downgrade to {revision!r} would destroy {what}; "
                "pass allow_data_loss=True to downgrade anyway"
            )
    with _errors(cfg), _recording(cfg) as reverted:
        command.downgrade(cfg, revision, tag=tag)
    return _ran(cfg, reverted, upward=False)


def sql(config: Config | None = None, revision_range: str = "base:head", *, downgrade: bool = False) -> str:
    """The SQL a migration would run, without a database (``alembic upgrade --sql``).

    Parameters
    ----------
    revision_range : str
        ``"start:end"``, e.g. ``"base:head"``, or ``"head:0002"`` with ``downgrade=True``.
    downgrade : bool
        Render ``alembic downgrade start:end --sql`` instead.

    Examples
    --------
    >>> [line for line in sql(None, "0001:0002").splitlines() if "description" in line]
    ['ALTER TABLE playlists ADD COLUMN description TEXT;']
    >>> [line for line in sql(None, "0002:0001", downgrade=True).splitlines() if "description" in line]
    ['ALTER TABLE playlists DROP COLUMN description;']
    """
    cfg = config if config is not None else _make_config()
    if downgrade and ":" not in revision_range:
        raise MigrationError(
            f"sql(..., downgrade=True) needs a range 'from:to' such as 'head:0002', not {revision_range!r}"
        )
    buffer = io.StringIO()
    saved, cfg.output_buffer = cfg.output_buffer, buffer
    try:
        with _errors(cfg):
            (command.downgrade if downgrade else command.upgrade)(cfg, revision_range, sql=True)
    finally:
        cfg.output_buffer = saved
    return buffer.getvalue()


def lint(config: Config | None = None, revision_range: str = "base:head") -> pd.DataFrame:
    """Run squawk over the offline SQL of ``revision_range``; findings as a DataFrame.

    ``playlist-tools lint RANGE`` on the command line. The rules and the
    reason for each one left out are in the repo's ``.squawk.toml``; see
    :func:`playlist_tools.lint.lint` for the columns. An empty frame means
    the range passes.

    Examples
    --------
    >>> lint(None, "0001:0002").empty
    True
    """
    from playlist_tools.lint import lint as run_squawk

    return run_squawk(revision_range, config)

