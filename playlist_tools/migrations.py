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

import argparse
import contextlib
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from alembic import autogenerate, command, util
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import MultipleHeads, ResolutionError
from alembic.script.revision import RevisionError as AlembicRevisionError
from sqlalchemy.engine import URL, Connection

from playlist_tools import db, losses
from playlist_tools.errors import DataLossError, MigrationError, PlaylistToolsError, RevisionError
from playlist_tools.revisions import COLUMNS, ancestors, diff_frame, next_id, ordered, revision_frame

__all__ = [
    "REPO_ROOT", "COLUMNS", "config", "current", "history", "heads", "upgrade",
    "downgrade", "data_loss", "sql", "preview", "check", "revision", "merge",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout this package is installed from (editable install): alembic.ini and alembic/ live here."""


def config(
    url: str | URL | None = None,
    *,
    script_location: str | Path | None = None,
    metadata: sa.MetaData | None = None,
    connection: Connection | None = None,
    ini: str | Path | None = None,
) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the repo's migrations.

    Parameters
    ----------
    url : str, URL or None
        The database (``DATABASE_URL=...`` for the CLI); ``None`` leaves the
        choice to ``playlist_tools.db``: ``$DATABASE_URL``, else the embedded
        server. Nothing is resolved or started here.
    script_location : str or Path, optional
        Another migrations folder (``script_location`` in the ini).
    metadata : sqlalchemy.MetaData, optional
        What autogenerate compares against; default the package's models.
    connection : sqlalchemy.engine.Connection, optional
        Run on this connection; the caller owns it and closes it.
    ini : str or Path, optional
        Another ini file (``-c/--config``); default ``REPO_ROOT/alembic.ini``.

    Raises
    ------
    MigrationError
        When the ini file is missing (a non-editable install has none).

    Examples
    --------
    >>> config().get_main_option("script_location").endswith("alembic")
    True
    """
    path = Path(ini) if ini is not None else REPO_ROOT / "alembic.ini"
    if not path.is_file():
        raise MigrationError(
            f"no Alembic configuration at {path}; install playlist-tools from a checkout "
            "(pip install -e .) or pass ini= the path of an alembic.ini"
        )
    # quiet: "Generating /tmp/.../0002_....py ... done" would put a path in notebook outputs.
    cfg = Config(str(path), cmd_opts=argparse.Namespace(quiet=True))
    # env.py would otherwise call fileConfig and print INFO lines into notebook outputs.
    cfg.attributes["skip_logging_config"] = True
    if url is not None:
        cfg.attributes["url"] = db.parse_url(url)
    if script_location is not None:
        cfg.set_main_option("script_location", str(script_location).replace("%", "%%"))
    if metadata is not None:
        cfg.attributes["target_metadata"] = metadata
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


_make_config = config

# -- helpers ------------------------------------------------------------------


def _script(cfg: Config) -> ScriptDirectory:
    return ScriptDirectory.from_config(cfg)


@contextlib.contextmanager
def _connection(cfg: Config) -> Iterator[Connection]:
    given = cfg.attributes.get("connection")
    if given is not None:
        started = not given.in_transaction()
        yield given
        # Reading autobegins a transaction; leaving it open would make env.py
        # run the migrations inside it, uncommitted.
        if started and given.in_transaction():
            given.rollback()
        return
    engine = db.create_engine(cfg.attributes.get("url"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _current_heads(cfg: Config) -> tuple[str, ...]:
    with _connection(cfg) as connection:
        return tuple(MigrationContext.configure(connection).get_current_heads())


def _known(cfg: Config) -> str:
    ids = sorted(s.revision for s in _script(cfg).walk_revisions())
    return ", ".join(ids) if ids else "none yet"


@contextlib.contextmanager
def _errors(cfg: Config) -> Iterator[None]:
    """Turn Alembic's errors into ours: one line, naming the bad value."""
    try:
        yield
    except util.CommandError as err:
        cause = err.__cause__
        if isinstance(cause, PlaylistToolsError):
            raise cause from cause.__cause__  # env.py wraps ours for the CLI
        if isinstance(cause, ResolutionError):
            raise RevisionError(
                f"unknown revision {cause.argument!r}; known revisions: {_known(cfg)}; "
                "or use head, base, +N or -N (history() lists them)"
            ) from cause
        if isinstance(cause, MultipleHeads):
            raise RevisionError(
                f"{cause.argument!r} is ambiguous: the history has several heads "
                f"({', '.join(sorted(cause.heads))}); use 'heads', name one, or merge them with merge()"
            ) from cause
        if isinstance(cause, AlembicRevisionError):
            raise RevisionError(f"{err}; history() shows where each revision sits") from cause
        message = " ".join(str(err).split())
        if "not up to date" in message:
            message += " Run upgrade(config, 'head') first."
        raise MigrationError(message) from err


def _listing(cfg: Config, scripts: Iterable[Script], indicate_current: bool) -> pd.DataFrame:
    script = _script(cfg)
    current = set(_current_heads(cfg)) if indicate_current else set()
    return revision_frame(ordered(scripts), current, set(script.get_heads()))


# -- the verbs ------------------------------------------------------------------


def current(config: Config | None = None) -> pd.DataFrame:
    """The revision(s) the database is at (``alembic current``); empty at base."""
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
        Ask the database which revision is current (``-i``); ``False`` needs no database.
    """
    cfg = config if config is not None else _make_config()
    base, _, head = (rev_range or ":").partition(":")
    with _errors(cfg):
        scripts = list(_script(cfg).walk_revisions(base or "base", head or "heads"))
        return _listing(cfg, scripts, indicate_current)


def heads(config: Config | None = None, *, indicate_current: bool = True) -> pd.DataFrame:
    """The head revisions (``alembic heads``): more than one means parallel branches."""
    cfg = config if config is not None else _make_config()
    script = _script(cfg)
    with _errors(cfg):
        return _listing(cfg, (script.get_revision(r) for r in script.get_heads()), indicate_current)


def _moved(cfg: Config, before: tuple[str, ...], after: tuple[str, ...], upward: bool) -> pd.DataFrame:
    script = _script(cfg)
    old, new = ancestors(script, before), ancestors(script, after)
    changed = ordered(script.get_revision(r) for r in ((new - old) if upward else (old - new)))
    frame = revision_frame(changed, set(after), set(script.get_heads()))
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
        The revisions applied, in the order they ran; empty when already there.
    """
    cfg = config if config is not None else _make_config()
    with _errors(cfg):
        before = _current_heads(cfg)
        command.upgrade(cfg, revision, tag=tag)
        return _moved(cfg, before, _current_heads(cfg), upward=True)


def data_loss(config: Config | None = None, revision: str = "-1") -> pd.DataFrame:
    """What ``downgrade(config, revision)`` would destroy, counted before anything runs.

    For each revision the downgrade would revert, its ``downgrade()`` is
    rendered as offline SQL; every ``DROP TABLE`` counts that table's rows,
    every ``DROP COLUMN`` that column's non-null values, in the database as
    it is now. A few drops lose less than that, and
    :data:`playlist_tools.losses.LOSS_QUERIES` says how much
    (e.g. 0003's ``position``: only entries out of song order). Renames
    destroy nothing and are not listed. A table or column that does not
    exist yet (created by another step of the same downgrade) is skipped.

    Returns
    -------
    pandas.DataFrame
        Columns ``rev, table, column, lost, what``; ``column`` is ``"*"`` for a whole table.

    Raises
    ------
    DataLossError
        When a revision's downgrade cannot be rendered offline, so its loss is unknown.
    """
    cfg = config if config is not None else _make_config()
    script = _script(cfg)
    with _errors(cfg):
        # The private planner command.downgrade itself uses: the same steps, in the same order.
        steps = script._downgrade_revs(revision, _current_heads(cfg))
    rendered = []
    for step in steps:
        try:
            rendered.append((step.revision.revision, losses.render_downgrade(step.revision)))
        except Exception as err:  # any code in a revision file can fail offline
            raise DataLossError(
                f"cannot tell what downgrading {step.revision.revision} destroys: its downgrade() "
                f"does not run offline ({type(err).__name__}); check by hand, then pass allow_data_loss=True"
            ) from err
    with _errors(cfg), _connection(cfg) as connection:
        return losses.count_losses(connection, rendered)


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
        The revisions reverted, in the order they ran.

    Raises
    ------
    DataLossError
        Before anything runs, when data would be lost and ``allow_data_loss`` is false.
    """
    cfg = config if config is not None else _make_config()
    if not allow_data_loss:
        what = losses.describe(data_loss(cfg, revision))
        if what:
            raise DataLossError(
                f"downgrade to {revision!r} would destroy {what}; "
                "pass allow_data_loss=True to downgrade anyway"
            )
    with _errors(cfg):
        before = _current_heads(cfg)
        command.downgrade(cfg, revision, tag=tag)
        return _moved(cfg, before, _current_heads(cfg), upward=False)


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
    buffer = io.StringIO()
    saved, cfg.output_buffer = cfg.output_buffer, buffer
    try:
        with _errors(cfg):
            (command.downgrade if downgrade else command.upgrade)(cfg, revision_range, sql=True)
    finally:
        cfg.output_buffer = saved
    return buffer.getvalue()


def _autogenerate(cfg: Config) -> list[object]:
    """Autogenerate's diffs against the config's target metadata, writing nothing."""
    script = _script(cfg)
    context = autogenerate.RevisionContext(cfg, script, dict(
        message=None, autogenerate=True, sql=False, head="head", splice=False,
        branch_label=None, version_path=None, rev_id=None, depends_on=None,
    ))

    def retrieve(rev: object, ctx: object) -> list[object]:
        context.run_autogenerate(rev, ctx)  # type: ignore[arg-type]
        return []

    with _errors(cfg), EnvironmentContext(cfg, script, fn=retrieve, as_sql=False,
                                          template_args=context.template_args,
                                          revision_context=context):
        script.run_env()
    return [diff for ops in context.generated_revisions[-1].upgrade_ops_list for diff in ops.as_diffs()]


def preview(config: Config | None = None, metadata: sa.MetaData | None = None) -> pd.DataFrame:
    """The operations ``alembic revision --autogenerate`` would write, without writing a file.

    Parameters
    ----------
    metadata : sqlalchemy.MetaData, optional
        The models to compare with; default the config's target metadata.

    Returns
    -------
    pandas.DataFrame
        Columns ``op, table, name, detail``, in the order the file would list them.
    """
    cfg = config if config is not None else _make_config()
    saved = cfg.attributes.get("target_metadata")
    if metadata is not None:
        cfg.attributes["target_metadata"] = metadata
    try:
        return diff_frame(_autogenerate(cfg))
    finally:
        if metadata is not None:
            if saved is None:
                del cfg.attributes["target_metadata"]
            else:
                cfg.attributes["target_metadata"] = saved


def check(config: Config | None = None) -> pd.DataFrame:
    """Drift between the models and the database (``alembic check``).

    Returns :func:`preview` for the config's models: an empty DataFrame
    when they match. Unlike the CLI (exit status 1), drift is data, not an
    error; a database behind head raises :class:`MigrationError`.
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
) -> Script:
    """Write a new revision file (``alembic revision``).

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

    Returns
    -------
    alembic.script.Script
        ``.revision``, ``.path`` (read it for the source) and ``.doc``.
    """
    cfg = config if config is not None else _make_config()
    with _errors(cfg):
        written = command.revision(
            cfg, message, autogenerate=autogenerate, rev_id=rev_id or next_id(_script(cfg)),
            head=head, splice=splice, branch_label=branch_label, depends_on=depends_on,
        )
    assert isinstance(written, Script)  # one version location: one script
    return written


def merge(
    config: Config | None = None, revisions: str = "heads", message: str | None = None, *, rev_id: str | None = None
) -> Script:
    """Write a revision that joins parallel branches (``alembic merge heads -m ...``)."""
    cfg = config if config is not None else _make_config()
    with _errors(cfg):
        written = command.merge(cfg, revisions, message=message, rev_id=rev_id or next_id(_script(cfg)))
    assert isinstance(written, Script)
    return written
