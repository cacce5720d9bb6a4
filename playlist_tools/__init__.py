"""playlist-tools: songs and playlists in PostgreSQL, for notebooks.

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
    "playlist_song_association",
    "resolve_url",
    "session_factory",
]
