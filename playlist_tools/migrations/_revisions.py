"""Writing revisions: what autogenerate would write, drift, new revision files, merges.

Private to :mod:`playlist_tools.migrations`, which re-exports these verbs;
the same conventions hold (``config`` first, ``None`` for the
repo's migrations, data returned instead of printed). Revision ids
default to the next readable number, never a random one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import pandas as pd
import sqlalchemy as sa
from alembic import autogenerate, command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import Script, ScriptDirectory

from playlist_tools.errors import MigrationError
from playlist_tools.migrations._config import current_heads, resolve
from playlist_tools.migrations._config import script as _script
from playlist_tools.migrations._errors import alembic_errors
from playlist_tools.migrations._listing import diff_frame
from playlist_tools.migrations._renames import found


def next_id(script: ScriptDirectory) -> str:
    """The next readable revision id: one more than the largest numeric id, four digits.

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> int(next_id(ScriptDirectory.from_config(migrations.config()))) > 5
    True
    """
    numbers = [int(s.revision) for s in script.walk_revisions() if s.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


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


@contextlib.contextmanager
def _given(cfg: Config, **attributes: object) -> Iterator[None]:
    """``cfg.attributes`` with these set (those that are not ``None``) for the block, as they were after."""
    saved = {key: cfg.attributes[key] for key in attributes if key in cfg.attributes}
    given = {key: value for key, value in attributes.items() if value is not None}
    cfg.attributes.update(given)
    try:
        yield
    finally:
        for key in given:
            cfg.attributes.pop(key, None)
        cfg.attributes.update(saved)


def _autogenerate(cfg: Config) -> list[object]:
    """Autogenerate's diffs against the config's target metadata, writing nothing.

    First a row for each rename candidate left unconfirmed (``rename_column?``, ``rename_table?``).
    """
    script = _script(cfg)
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
    with _given(cfg, target_metadata=metadata, renames=renames):
        return diff_frame(_autogenerate(cfg))


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
        _require_head(cfg, _script(cfg))
    with _given(cfg, renames=renames, safe=safe), alembic_errors(cfg):
        written = command.revision(
            cfg, message, autogenerate=autogenerate, rev_id=rev_id or next_id(_script(cfg)),
            head=head, splice=splice, branch_label=branch_label, depends_on=depends_on,
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
        written = command.merge(cfg, revisions, message=message, rev_id=rev_id or next_id(_script(cfg)))
    assert isinstance(written, Script)
    return written
