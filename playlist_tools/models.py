"""The schema: songs, playlists, and which songs are on which playlist.

Typed SQLAlchemy 2 declarative models. ``Base.metadata`` carries a
constraint naming convention so that every index, key and constraint has a
predictable name, which Alembic needs to drop or alter it later.

Deliberate ``ON DELETE`` behaviour on the association:

* deleting a playlist deletes its entries (``CASCADE``): the entries are
  part of the playlist;
* deleting a song that is still on a playlist is refused (``RESTRICT``):
  silently removing it from people's playlists would lose data; remove it
  from the playlists first.

Examples
--------
>>> from playlist_tools.models import Playlist, Song
>>> song = Song(title="Balls to the Wall", artist="Accept", duration_ms=342562)
>>> playlist = Playlist(title="Heavy Metal Classic", songs=[song])
>>> song.playlists[0].title
'Heavy Metal Classic'
>>> song
Song(song_id=None, title='Balls to the Wall', artist='Accept')
"""

from __future__ import annotations

import datetime
import decimal
from typing import Optional

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["NAMING_CONVENTION", "Base", "Song", "Playlist", "playlist_song_association"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Alembic's recommended convention: every constraint gets a stable name."""


class Base(DeclarativeBase):
    """Declarative base whose metadata names every constraint."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


playlist_song_association = Table(
    "playlist_song_association",
    Base.metadata,
    Column(
        "playlist_id",
        ForeignKey("playlists.playlist_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "song_id",
        ForeignKey("songs.song_id", ondelete="RESTRICT"),
        primary_key=True,
        # The primary key index leads with playlist_id; this one serves
        # "which playlists is this song on?".
        index=True,
    ),
    # Order within a playlist (migration 0003). An identity, so a song
    # appended through the ORM (``playlist.songs.append(song)``) gets the next
    # value and lands at the end; values have gaps and are only compared
    # within one playlist.
    Column("position", Integer, Identity(), nullable=False),
)
"""Which song is on which playlist, and where: one row per (playlist, song) pair."""


class Song(Base):
    """A track, as the Chinook sample describes it.

    ``unit_price`` is ``NUMERIC(10, 2)``: money keeps its exact cents.
    ``file_format`` (Chinook's "media type", renamed by migration 0004) says
    how the track is encoded; a handful of Chinook tracks are videos
    (``"Protected MPEG-4 video file"``). ``genre`` is indexed (0005).
    """

    __tablename__ = "songs"

    song_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    artist: Mapped[Optional[str]] = mapped_column(String(120), index=True)
    album: Mapped[Optional[str]] = mapped_column(String(160))
    genre: Mapped[Optional[str]] = mapped_column(String(120), index=True)
    composer: Mapped[Optional[str]] = mapped_column(String(220))
    file_format: Mapped[Optional[str]] = mapped_column(String(120))
    duration_ms: Mapped[Optional[int]] = mapped_column(Integer)
    size_bytes: Mapped[Optional[int]] = mapped_column(BigInteger)
    unit_price: Mapped[Optional[decimal.Decimal]] = mapped_column(Numeric(10, 2))

    playlists: Mapped[list[Playlist]] = relationship(
        secondary=playlist_song_association,
        back_populates="songs",
        order_by="Playlist.playlist_id",
    )

    def __repr__(self) -> str:
        return f"Song(song_id={self.song_id!r}, title={self.title!r}, artist={self.artist!r})"


class Playlist(Base):
    """A named list of songs. ``description`` arrived in migration 0002."""

    __tablename__ = "playlists"

    playlist_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(120), index=True)
    description: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    songs: Mapped[list[Song]] = relationship(
        secondary=playlist_song_association,
        back_populates="playlists",
        order_by=playlist_song_association.c.position,
    )

    def __repr__(self) -> str:
        return f"Playlist(playlist_id={self.playlist_id!r}, title={self.title!r})"
