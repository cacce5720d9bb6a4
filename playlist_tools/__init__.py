"""playlist-tools: songs and playlists in PostgreSQL, for notebooks.

Importing the package connects to nothing and starts nothing; the embedded
server starts on the first call that needs a database.

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
    MigrationError,
    PlaylistToolsError,
    RevisionError,
)
from playlist_tools.models import Base, Playlist, Song, playlist_song_association

__all__ = [
    "Base",
    "DataLossError",
    "DatabaseURLError",
    "DatabaseUnavailableError",
    "FrameError",
    "MigrationError",
    "Playlist",
    "PlaylistToolsError",
    "RevisionError",
    "Song",
    "create_engine",
    "fresh_database",
    "mask_url",
    "playlist_song_association",
    "resolve_url",
    "session_factory",
]
