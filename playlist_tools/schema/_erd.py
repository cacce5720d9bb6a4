"""erd(): the live schema, or a revision with what changed since another, as a Mermaid ER diagram.

Private to :mod:`playlist_tools.schema`, which re-exports :func:`erd`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic.config import Config

from playlist_tools import db
from playlist_tools._mermaid import MermaidDiagram
from playlist_tools.errors import SettingError, one_line
from playlist_tools.schema._at import at
from playlist_tools.schema._draw import draw
from playlist_tools.schema._live import all_columns

__all__ = ["erd"]


def erd(
    con: db.Connectable = None,
    *,
    exclude: Sequence[str] = ("alembic_version",),
    diff: tuple[str, str] | None = None,
    config: Config | None = None,
) -> MermaidDiagram:
    """Draw the live schema as a Mermaid entity-relationship diagram.

    Each table is an entity listing its columns (type, ``PK``/``FK``; a
    type Mermaid cannot spell, like ``numeric(10,2)``, is shortened and
    given in full as the attribute's comment); each
    foreign key is a relationship, one parent row to any number of child
    rows (``|o`` on the parent's side when the key column is nullable),
    labelled with the key column.

    Parameters
    ----------
    con : str, sqlalchemy.engine.URL, Engine, Connection or None
        As in :func:`tables`.
    exclude : sequence of str
        Tables to leave out; by default Alembic's bookkeeping table.
    diff : (str, str), optional
        ``(a, b)``: instead of the live schema, draw revision ``b`` with what
        changed since ``a`` marked, without touching any database of yours;
        the same as ``schema.at(b, config).erd(since=a)`` (see
        :meth:`SchemaAt.erd`). Not together with ``con``.
    config : alembic.config.Config or None
        With ``diff``: the migrations and the server, as in :func:`at`.

    Returns
    -------
    MermaidDiagram
        Rendered inline by JupyterLab; ``str()`` is the Mermaid text.

    Raises
    ------
    SettingError
        For ``con`` and ``diff`` together, or a ``diff`` that is not two revisions.

    Examples
    --------
    >>> from playlist_tools import models
    >>> with db.fresh_database() as url:
    ...     engine = db.create_engine(url)
    ...     models.Base.metadata.create_all(engine)
    ...     diagram = erd(engine)
    ...     engine.dispose()
    >>> print(diagram)  # doctest: +ELLIPSIS
    erDiagram
        playlist_song_association {
            integer playlist_id PK, FK
            integer song_id PK, FK
            integer position
        }
        playlists {
            integer playlist_id PK
            varchar(120) title
            text description
            timestamptz created_at
        }
        songs {
            integer song_id PK
            ...
            numeric unit_price "numeric(10,2)"
        }
        playlists ||--o{ playlist_song_association : "playlist_id"
        songs ||--o{ playlist_song_association : "song_id"
    >>> print(erd(diff=("0001", "0002")))  # doctest: +ELLIPSIS
    erDiagram
        ...
        playlists["playlists (changed)"]:::changed {
            integer playlist_id PK
            varchar(120) title
            timestamptz created_at
            text description "added"
        }
        ...
    """
    if diff is None:
        with db.connection(con) as connection:
            return draw(all_columns(connection), exclude)
    if con is not None:
        raise SettingError(
            "erd() draws either a database (con) or the change between two revisions (diff=), not both; "
            "pass config= for the migrations and server of diff="
        )
    if not isinstance(diff, (tuple, list)) or len(diff) != 2 or not all(isinstance(r, str) for r in diff):
        raise SettingError(
            f"diff={one_line(repr(diff), 80)} is not two revisions; pass diff=(a, b), such as diff=('0001', 'head')"
        )
    since, revision = diff
    return at(revision, config).erd(exclude=exclude, since=since)
