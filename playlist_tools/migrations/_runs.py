"""The verbs that run migrations: ``alembic upgrade``, ``downgrade``, and their ``--sql``.

Private to :mod:`playlist_tools.migrations`, which re-exports them. Each
reports exactly the revisions *this call* ran, through the
``on_version_apply`` hook that ``alembic/env.py`` passes to Alembic.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config

from playlist_tools.errors import DataLossError, MigrationError  # noqa: F401  (DataLossError: the doctest's)
from playlist_tools.migrations._config import current_heads as _current_heads
from playlist_tools.migrations._config import resolve
from playlist_tools.migrations._config import script as _script
from playlist_tools.migrations._errors import alembic_errors as _errors
from playlist_tools.migrations._errors import check_revision
from playlist_tools.migrations._listing import ordered, revision_frame


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


@contextlib.contextmanager
def _consent(cfg: Config, allow_data_loss: bool) -> Iterator[None]:
    """Tell env.py, for this call only, whether data may be lost (``config.attributes["allow_data_loss"]``).

    env.py counts the loss inside the migration lock, on the migration
    connection, and refuses a loss without consent before any step runs
    (see :mod:`playlist_tools.migrations._consent`); the refusal reaches us
    as :class:`DataLossError`.
    """
    saved = cfg.attributes.get("allow_data_loss")
    cfg.attributes["allow_data_loss"] = allow_data_loss
    try:
        yield
    finally:
        if saved is None:
            del cfg.attributes["allow_data_loss"]
        else:
            cfg.attributes["allow_data_loss"] = saved


def _ran(cfg: Config, revisions: list[str], upward: bool) -> pd.DataFrame:
    """What ran, in history order (reversed for a downgrade), not Alembic's.

    Alembic may run parallel branches in either order from one run to the
    next; history order keeps notebook outputs the same on every run.
    """
    script = _script(cfg)
    steps = ordered(script.get_revision(r) for r in revisions)
    frame = revision_frame(steps, set(_current_heads(cfg)), set(script.get_heads()))
    return frame if upward else frame.iloc[::-1].reset_index(drop=True)


def upgrade(
    config: Config | None = None, revision: str = "head", *, allow_data_loss: bool = False, tag: str | None = None
) -> pd.DataFrame:
    """Upgrade the database (``alembic upgrade <revision>``), refusing to lose data.

    Parameters
    ----------
    config : alembic.config.Config or None
        See the module docstring.
    revision : str
        Target: ``"head"``, ``"heads"``, an id, or ``"+N"``.
    allow_data_loss : bool
        Run even when an upgrade drops a column or table that holds data
        (``-x allow_data_loss=true`` on the CLI); see :func:`downgrade`.
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
    DataLossError
        Before anything runs, when an upgrade would destroy data and ``allow_data_loss`` is false.

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
    cfg = resolve(config)
    check_revision(revision)
    with _errors(cfg), _consent(cfg, allow_data_loss), _recording(cfg) as applied:
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
        Run even when :func:`data_loss` counts something (``-x allow_data_loss=true`` on the CLI).
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
    The count is taken by env.py inside the migration lock, on the
    connection the steps then run on, for the very steps Alembic planned:
    no other migration can change it in between. (A session that writes
    rows without migrating is not held back by that lock.)

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
    downgrade to '-1' would destroy playlists.description (1 non-null value);
    pass allow_data_loss=True to downgrade anyway
    >>> reverted["rev"].tolist()
    ['0002']
    """
    cfg = resolve(config)
    check_revision(revision)
    with _errors(cfg), _consent(cfg, allow_data_loss), _recording(cfg) as reverted:
        command.downgrade(cfg, revision, tag=tag)
    return _ran(cfg, reverted, upward=False)


def sql(config: Config | None = None, revision_range: str = "base:head", *, downgrade: bool = False) -> str:
    """The SQL a migration would run, without a database (``alembic upgrade --sql``).

    Nothing runs, so nothing is counted or refused; each statement that
    drops a table or a column has a ``-- destroys ...`` comment above it.

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
    ['-- destroys the values of playlists.description', 'ALTER TABLE playlists DROP COLUMN description;']
    """
    cfg = resolve(config)
    check_revision(revision_range)
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
