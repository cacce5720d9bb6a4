"""The verbs: ``alembic current``, ``history``, ``heads``, ``upgrade``, ``downgrade``, ``revision``, ``merge``...

Private to :mod:`playlist_tools.migrations`, which re-exports them with the
same names and parameters as :mod:`alembic.command`, ``config`` first,
``None`` for the repo's migrations, data returned instead of printed:

* the read-only verbs ``current``, ``history`` and ``heads``, and
  ``history_diagram`` (the history as a Mermaid flowchart);
* the verbs that run migrations, ``upgrade``, ``downgrade`` and their
  ``--sql`` (``sql``): each reports exactly the revisions *this call* ran,
  through the ``on_version_apply`` hook that ``alembic/env.py`` passes to Alembic;
* the verbs that write revisions, ``preview``, ``check``, ``revision`` and
  ``merge``; revision ids default to the next readable number, never a random one;
* the listings they return: revisions and autogenerate diffs as DataFrames,
  in a deterministic order (:func:`ordered`, :func:`revision_frame`, :func:`diff_frame`).

Examples
--------
>>> from alembic.script import ScriptDirectory
>>> from playlist_tools import migrations
>>> script = ScriptDirectory.from_config(migrations.config())
>>> [s.revision for s in ordered(script.walk_revisions())][:3]
['0001', '0002', '0003']
>>> sorted(ancestors(script, ["0002"]))
['0001', '0002']
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa
from alembic import autogenerate, command, util
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import Script, ScriptDirectory

from playlist_tools._mermaid import MermaidDiagram, quoted
from playlist_tools.errors import DataLossError, MigrationError  # noqa: F401  (DataLossError: upgrade's doctest's)
from playlist_tools.history import (
    alembic_errors,
    check_revision,
    current_heads,
    found,
    next_id,
    resolve,
    run_options,
    script_directory,
    sql_type,
    with_run_options,
)

__all__ = [
    "REVISION_COLUMNS", "PREVIEW_COLUMNS", "ancestors", "check", "current", "diff_frame", "down_revisions", "downgrade",
    "heads", "history", "history_diagram", "merge", "ordered", "preview", "revision", "revision_frame", "sql",
    "upgrade",
]

REVISION_COLUMNS = ["rev", "down_rev", "message", "is_current", "is_head"]
"""The columns of every revision listing (``current``, ``history``, ``heads``, ``upgrade``...)."""

PREVIEW_COLUMNS = ["op", "table", "name", "detail"]
"""The columns of ``preview`` and ``check``."""


def down_revisions(script: Script) -> tuple[str, ...]:
    """The revisions ``script`` revises: none for a base, two or more for a merge."""
    return tuple(util.to_tuple(script.down_revision, default=()))


def ancestors(script: ScriptDirectory, revs: Iterable[str]) -> set[str]:
    """``revs`` and every revision below them: what a database at ``revs`` has applied."""
    seen: set[str] = set()
    todo = list(revs)
    while todo:
        rev = todo.pop()
        if rev not in seen:
            seen.add(rev)
            todo.extend(down_revisions(script.get_revision(rev)))  # type: ignore[arg-type]
    return seen


def ordered(scripts: Iterable[Script]) -> list[Script]:
    """Base first, each revision after those it revises; parallel branches by id.

    Alembic walks its map in no promised order; notebook outputs need one.
    """
    pending = {s.revision: s for s in scripts}
    placed: list[Script] = []
    while pending:
        ready = min(
            rev for rev, s in pending.items() if not set(down_revisions(s)) & pending.keys()
        )
        placed.append(pending.pop(ready))
    return placed


def revision_frame(scripts: Iterable[Script], current: Iterable[str], heads: Iterable[str]) -> pd.DataFrame:
    """One row per revision: ``rev, down_rev, message, is_current, is_head``.

    ``down_rev`` is ``"base"`` for a first revision and ``"a, b"`` for a merge;
    ``message`` is the first paragraph of the file's docstring.
    """
    rows = list(scripts)
    current, heads = set(current), set(heads)
    data = {
        "rev": [s.revision for s in rows],
        "down_rev": [", ".join(down_revisions(s)) or "base" for s in rows],
        "message": [s.doc for s in rows],
        "is_current": [s.revision in current for s in rows],
        "is_head": [s.revision in heads for s in rows],
    }
    return pd.DataFrame(data, columns=REVISION_COLUMNS).astype({"is_current": bool, "is_head": bool})


def _diff_row(diff: tuple[object, ...]) -> tuple[str, str, str, str]:
    """One autogenerate diff tuple (``UpgradeOps.as_diffs()``) as (op, table, name, detail)."""
    kind, rest = str(diff[0]), diff[1:]
    if kind.startswith("rename_"):  # ours (migrations._renames): (kind, schema, table, old, new, detail)
        _, table_name, old, new, detail = rest
        return kind, str(table_name), f"{old} -> {new}", str(detail)
    if kind.endswith("_column"):  # (kind, schema, table name, Column)
        _, table_name, column = rest
        null = "NULL" if column.nullable else "NOT NULL"  # type: ignore[attr-defined]
        return kind, str(table_name), column.name, f"{sql_type(column.type)} {null}"  # type: ignore[attr-defined]
    if kind.startswith("modify_"):  # (kind, schema, table, column, existing, old, new)
        _, table_name, column_name, _, old, new = rest
        return kind, str(table_name), str(column_name), f"{sql_type(old)} -> {sql_type(new)}"
    item = rest[0]  # a Table, Index or Constraint
    if kind.endswith("_table"):
        return kind, item.name, "", ", ".join(c.name for c in item.columns)  # type: ignore[attr-defined]
    table = getattr(item, "table", None)
    columns = ", ".join(c.name for c in getattr(item, "columns", []))
    return kind, str(getattr(table, "name", "")), str(getattr(item, "name", "") or ""), columns


def diff_frame(diffs: Iterable[object]) -> pd.DataFrame:
    """Autogenerate's diffs as rows ``op, table, name, detail``, in the file's order.

    Renames (``rename_column``, ``rename_table``, ``rename_index``,
    ``rename_constraint``, and the unconfirmed ``rename_column?`` and
    ``rename_table?``) show ``old -> new`` as their name.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> column = sa.Column("description", sa.Text())
    >>> diff_frame([("add_column", None, "playlists", column)])
               op      table         name     detail
    0  add_column  playlists  description  TEXT NULL
    >>> diff_frame([("rename_column?", None, "songs", "media_type", "file_format", "VARCHAR(120) NULL")])
                   op  table                       name             detail
    0  rename_column?  songs  media_type -> file_format  VARCHAR(120) NULL
    """
    flat: list[tuple[object, ...]] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])  # modify_* come grouped
    return pd.DataFrame([_diff_row(d) for d in flat], columns=PREVIEW_COLUMNS)


def _listing(cfg: Config, scripts: Iterable[Script], indicate_current: bool) -> pd.DataFrame:
    script = script_directory(cfg)
    current = set(current_heads(cfg)) if indicate_current else set()
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
    script = script_directory(cfg)
    with alembic_errors(cfg):
        heads_now = current_heads(cfg)
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
    with alembic_errors(cfg):
        scripts = list(script_directory(cfg).walk_revisions(base or "base", head or "heads"))
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
    script = script_directory(cfg)
    with alembic_errors(cfg):
        return _listing(cfg, (script.get_revision(r) for r in script.get_heads()), indicate_current)


def _run(cfg: Config, allow_data_loss: bool) -> tuple[Config, list[str]]:
    """The config this call runs on (a copy carrying its options), and the list its revisions are recorded in.

    Consent goes to env.py, which counts the loss inside the migration lock
    and refuses it without consent before any step runs (see
    :mod:`._data_loss`); the refusal reaches us as :class:`DataLossError`.
    The revisions come from Alembic's ``on_version_apply``, which env.py
    passes on and Alembic calls inside the migration lock: exact even when
    another process migrates the same database at the same time (comparing
    heads before and after would count its revisions as ours).
    """
    ran: list[str] = []

    def record(*, ctx: object, step: Any, heads: object, run_args: object) -> None:
        if step.is_migration:
            ran.append(step.up_revision_id)

    hooks = (*run_options(cfg).on_version_apply, record)
    return with_run_options(cfg, allow_data_loss=allow_data_loss, on_version_apply=hooks), ran


def _ran(cfg: Config, revisions: list[str], upward: bool) -> pd.DataFrame:
    """What ran, in history order (reversed for a downgrade), not Alembic's.

    Alembic may run parallel branches in either order from one run to the
    next; history order keeps notebook outputs the same on every run.
    """
    script = script_directory(cfg)
    steps = ordered(script.get_revision(r) for r in revisions)
    frame = revision_frame(steps, set(current_heads(cfg)), set(script.get_heads()))
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
    run, applied = _run(cfg, allow_data_loss)
    with alembic_errors(cfg):
        command.upgrade(run, revision, tag=tag)
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
    downgrade to '0001' ('-1') would destroy playlists.description (1 non-null value);
    pass allow_data_loss=True to downgrade anyway
    >>> reverted["rev"].tolist()
    ['0002']
    """
    cfg = resolve(config)
    check_revision(revision)
    run, reverted = _run(cfg, allow_data_loss)
    with alembic_errors(cfg):
        command.downgrade(run, revision, tag=tag)
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
    run = with_run_options(cfg)  # a copy: the caller's own output_buffer stays as it was
    run.output_buffer = buffer = io.StringIO()
    with alembic_errors(cfg):
        (command.downgrade if downgrade else command.upgrade)(run, revision_range, sql=True)
    return buffer.getvalue()


def _require_head(cfg: Config, script: ScriptDirectory) -> None:
    """Autogenerate compares the models with head: a database behind it gives wrong diffs."""
    now = current_heads(cfg)
    with alembic_errors(cfg):
        up_to_date = set(script.get_revisions(now)) == set(script.get_revisions("heads"))
    if not up_to_date:
        raise MigrationError(
            f"the database is not up to date (it is at {', '.join(now) or 'base'}, head is "
            f"{', '.join(sorted(script.get_heads()))}); run upgrade(config, 'head') (`alembic upgrade head`) first"
        )


def _with(
    cfg: Config, metadata: sa.MetaData | None, renames: Mapping[str, str] | None, *, safe: bool | None = None
) -> Config:
    """A copy of ``cfg`` for one autogenerate: these renames and ``safe``, these models if given; ``cfg`` unchanged."""
    run = with_run_options(cfg, renames=renames, safe=safe)
    if metadata is not None:
        run.attributes["target_metadata"] = metadata  # the copy's own attributes: Alembic's key for the models
    return run


def _autogenerate(cfg: Config) -> list[object]:
    """Autogenerate's diffs against the config's target metadata, writing nothing.

    First a row for each rename candidate left unconfirmed (``rename_column?``, ``rename_table?``).
    """
    script = script_directory(cfg)
    _require_head(cfg, script)
    context = autogenerate.RevisionContext(cfg, script, dict(
        message=None, autogenerate=True, sql=False, head="head", splice=False,
        branch_label=None, version_path=None, rev_id=None, depends_on=None,
    ))

    unconfirmed: list[object] = []

    def retrieve(rev: object, ctx: object) -> list[object]:
        context.run_autogenerate(rev, ctx)  # type: ignore[arg-type]
        # While the connection is open: a table's candidates are found in the database.
        upgrade_ops = context.generated_revisions[-1].upgrade_ops_list
        unconfirmed.extend(c.diff() for ops in upgrade_ops for c in found(ops, ctx))
        return []

    with alembic_errors(cfg), EnvironmentContext(cfg, script, fn=retrieve, as_sql=False,
                                          template_args=context.template_args,
                                          revision_context=context):
        script.run_env()
    return unconfirmed + [d for ops in context.generated_revisions[-1].upgrade_ops_list for d in ops.as_diffs()]


def preview(
    config: Config | None = None, metadata: sa.MetaData | None = None, *, renames: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The operations ``alembic revision --autogenerate`` would write, without writing a file.

    A dropped and an added column of the same type and nullability in one
    table (or a dropped and an added table with the same columns) may be
    one thing renamed: each such candidate comes first, as a row
    ``rename_column?`` (``rename_table?``) named ``old -> new``, followed
    by the drop and the add that would be written unless ``renames``
    confirms it; a confirmed one is a ``rename_column`` (``rename_table``) row,
    with ``rename_index`` / ``rename_constraint`` rows for what follows its name.

    Parameters
    ----------
    metadata : sqlalchemy.MetaData, optional
        The models to compare with; default the config's target metadata.
    renames : mapping of str to str, optional
        The renames to write: ``{"songs.media_type": "file_format"}`` for a
        column, ``{"songs": "tracks"}`` for a table (``-x rename=`` on the CLI).

    Returns
    -------
    pandas.DataFrame
        Columns ``op, table, name, detail``, in the order the file would list them.

    Raises
    ------
    MigrationError
        When the database is not at head (autogenerate compares against head).
    SettingError
        When ``renames`` names no candidate (the message lists them).

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> from playlist_tools import models
    >>> from playlist_tools import migrations
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open() as ws:
    ...     _ = migrations.upgrade(ws.config)
    ...     with ws.engine.begin() as connection:
    ...         _ = connection.execute(sa.text("ALTER TABLE playlists DROP COLUMN description"))
    ...     drift = preview(ws.config, models.Base.metadata)
    >>> drift
               op      table         name     detail
    0  add_column  playlists  description  TEXT NULL
    """
    cfg = resolve(config)
    return diff_frame(_autogenerate(_with(cfg, metadata, renames)))


def check(config: Config | None = None) -> pd.DataFrame:
    """Drift between the models and the database (``alembic check``).

    Returns :func:`preview` for the config's models: an empty DataFrame
    when they match. Unlike the CLI (exit status 1), drift is data, not an
    error; a database behind head raises :class:`MigrationError`.

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open() as ws:
    ...     _ = migrations.upgrade(ws.config)
    ...     in_sync = check(ws.config).empty
    >>> in_sync
    True
    """
    return preview(config)


def revision(
    config: Config | None = None,
    message: str | None = None,
    *,
    autogenerate: bool = True,
    rev_id: str | None = None,
    head: str = "head",
    splice: bool = False,
    branch_label: str | None = None,
    depends_on: str | None = None,
    renames: Mapping[str, str] | None = None,
    safe: bool | None = None,
) -> Script:
    """Write a new revision file (``alembic revision``).

    A rename is written as one only when ``renames`` confirms it (see
    :func:`preview`, which lists the candidates); nothing is asked here.

    Parameters
    ----------
    message : str
        ``-m/--message``; also the file name's slug.
    autogenerate : bool
        ``--autogenerate``; true by default here (the CLI's default is false).
    rev_id : str, optional
        ``--rev-id``; default the next readable number (``0006`` after ``0005``), never random.
    head, splice, branch_label, depends_on
        ``--head``, ``--splice``, ``--branch-label``, ``--depends-on``.
    renames : mapping of str to str, optional
        ``{"songs.media_type": "file_format"}``: write ``op.alter_column(..., new_column_name=...)``
        both ways instead of a drop and an add; ``{"songs": "tracks"}``: ``op.rename_table``
        (``-x rename=songs.media_type:file_format``, ``-x rename=songs:tracks`` on the CLI).
        One that names no candidate raises :class:`SettingError` and nothing is written.
    safe : bool, optional
        ``-x safe=false`` when false: Alembic's plain operations instead of the
        lock-safe forms (``CONCURRENTLY``, ``NOT VALID`` then ``VALIDATE``, ...)
        that autogenerate writes by default; see :mod:`playlist_tools.migrations.safe`.
        Default: the ini's ``safe``, else true.

    Returns
    -------
    alembic.script.Script
        ``.revision``, ``.path`` (read it for the source) and ``.doc``.

    Examples
    --------
    A scratch workspace whose database lost an index the models have:

    >>> from pathlib import Path
    >>> import sqlalchemy as sa
    >>> from playlist_tools import migrations
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open(upto="0005") as ws:
    ...     _ = migrations.upgrade(ws.config)
    ...     with ws.engine.begin() as connection:
    ...         _ = connection.execute(sa.text("DROP INDEX ix_songs_genre"))
    ...     script = revision(ws.config, "Restored genre index")
    ...     name = Path(script.path).name
    ...     operations = [line.strip() for line in Path(script.path).read_text().splitlines() if "op.f(" in line]
    >>> script.revision, script.down_revision, name
    ('0006', '0005', '0006_restored_genre_index.py')
    >>> for line in operations:
    ...     print(line)
    safe.create_index(op.f('ix_songs_genre'), 'songs', ['genre'], unique=False)
    safe.drop_index(op.f('ix_songs_genre'), table_name='songs')
    """
    cfg = resolve(config)
    if autogenerate:
        _require_head(cfg, script_directory(cfg))
    with alembic_errors(cfg):
        written = command.revision(
            _with(cfg, None, renames, safe=safe), message, autogenerate=autogenerate,
            rev_id=rev_id or next_id(script_directory(cfg)), head=head, splice=splice, branch_label=branch_label,
            depends_on=depends_on,
        )
    assert isinstance(written, Script)  # one version location: one script
    return written


def merge(
    config: Config | None = None, revisions: str = "heads", message: str | None = None, *, rev_id: str | None = None
) -> Script:
    """Write a revision that joins parallel branches (``alembic merge heads -m ... --rev-id ...``).

    ``revisions`` is the CLI's positional argument; ``rev_id`` defaults as in :func:`revision`.

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open(upto="0005") as ws:
    ...     _ = revision(ws.config, "a", autogenerate=False)
    ...     _ = revision(ws.config, "b", autogenerate=False, head="0005", splice=True)
    ...     joined = merge(ws.config, "heads", "join a and b")
    >>> joined.revision, joined.down_revision
    ('0008', ('0006', '0007'))
    """
    cfg = resolve(config)
    with alembic_errors(cfg):
        written = command.merge(cfg, revisions, message=message, rev_id=rev_id or next_id(script_directory(cfg)))
    assert isinstance(written, Script)
    return written


_STYLES = {
    "head": "fill:#e8f0fe,stroke:#1a73e8",
    "current": "fill:#e6f4ea,stroke:#1e8e3e,stroke-width:3px",
}


def _node(rev: str) -> str:
    # A Mermaid node id: letters, digits and _ only, and never a keyword such as "end".
    return "r_" + re.sub(r"\W", "_", rev)


def history_diagram(config: Config | None = None, *, current: bool = False) -> MermaidDiagram:
    """The history as a Mermaid flowchart, base at the top, rendered inline by JupyterLab.

    Each revision is a node ``0002: Added description to Playlist``, with an
    arrow from each revision it revises: a branch point has several arrows
    out, a merge several in. Heads are marked ``(head)``. Nodes come in
    history order (base first; parallel branches by revision id) and arrows
    sorted, so the text is the same on every run for the same history.

    Parameters
    ----------
    config : alembic.config.Config or None
        As everywhere in :mod:`playlist_tools.migrations`.
    current : bool
        Also mark the revision(s) the config's database is at ``(current)``.
        Off by default: the history alone needs no database, and the diagram
        then depends only on the revision files.

    Raises
    ------
    DatabaseUnavailableError
        With ``current=True``, when the database cannot be reached.

    Examples
    --------
    >>> print(history_diagram())  # doctest: +ELLIPSIS
    flowchart TB
        r_0001["0001: Initial migration"]
        r_0002["0002: Added description to Playlist"]
        ...
        r_0005["0005: Added index on song genre (head)"]:::head
        r_0001 --> r_0002
        r_0002 --> r_0003
        ...
        classDef head fill:#e8f0fe,stroke:#1a73e8
    """
    listing = history(config, indicate_current=current)
    lines, arrows = ["flowchart TB"], []
    for row in listing.itertuples():
        marks = ["head"] * bool(row.is_head) + ["current"] * bool(row.is_current)
        label = (f"{row.rev}: {row.message}" if row.message else row.rev) + "".join(f" ({m})" for m in marks)
        style = f":::{marks[-1]}" if marks else ""
        lines.append(f"    {_node(row.rev)}[{quoted(label)}]{style}")
        if row.down_rev != "base":
            arrows += [f"    {_node(down)} --> {_node(row.rev)}" for down in row.down_rev.split(", ")]
    lines += sorted(arrows)
    lines += [f"    classDef {name} {style}" for name, style in _STYLES.items() if name != "current" or current]
    return MermaidDiagram("\n".join(lines))
