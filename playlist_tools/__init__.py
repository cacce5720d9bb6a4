"""playlist-tools: songs and playlists in PostgreSQL, for notebooks.

In a notebook, ``%load_ext playlist_tools`` adds ``%sql`` and ``%alembic``
(see :mod:`playlist_tools.magics`).

Importing the package connects to nothing and starts nothing; the embedded
server starts on the first call that needs a database. The modules with
heavier imports (pandas, pyarrow, alembic) are imported by name when needed:
``from playlist_tools import frames, sample, schema, queries, migrations``.

Examples
--------
>>> import playlist_tools
>>> playlist_tools.Playlist.__tablename__
'playlists'
"""

from playlist_tools.db import (
    create_engine,
    fresh_database,
    mask_url,
    resolve_url,
    session_factory,
)
from playlist_tools.errors import (
    DatabaseUnavailableError,
    DatabaseURLError,
    DataLossError,
    FrameError,
    LockTimeoutError,
    MigrationError,
    PlaylistToolsError,
    QueryError,
    RevisionError,
    SampleError,
    SchemaError,
    SettingError,
)
from playlist_tools.models import Base, Playlist, Song, playlist_song_association

metadata = Base.metadata
"""The models' MetaData, what ``alembic/env.py`` migrates against (Alembic's template: ``target_metadata =
myapp.Base.metadata``). Kept here, in the package rather than in the ``models`` module, because
pytest-alembic's ``all_models_register_on_metadata`` looks for a module-level MetaData in a *package* (it
does not recognise SQLAlchemy 2's ``DeclarativeBase`` as a base) and then imports every module below it."""

__all__ = [
    "Base",
    "DataLossError",
    "DatabaseURLError",
    "DatabaseUnavailableError",
    "FrameError",
    "LockTimeoutError",
    "MigrationError",
    "Playlist",
    "PlaylistToolsError",
    "QueryError",
    "RevisionError",
    "SampleError",
    "SchemaError",
    "SettingError",
    "Song",
    "create_engine",
    "fresh_database",
    "mask_url",
    "metadata",
    "playlist_song_association",
    "resolve_url",
    "load_ipython_extension",
    "session_factory",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext playlist_tools``: the ``%sql`` and ``%alembic`` magics."""
    from playlist_tools import magics  # IPython only when a notebook asks

    magics.load(ipython)  # type: ignore[arg-type]
