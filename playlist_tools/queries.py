"""Analyst one-liners: common questions about playlists, answered as DataFrames.

Every function takes the database last (``con``: a URL, an engine, a
connection, or ``None`` for the default database; what is opened here is
closed here, what you pass in is left open), binds every value as a
parameter, and orders its rows completely, so the same data always gives
the same frame. Results come through :func:`playlist_tools.frames.read_frame`,
with its dtypes (``Int32``/``Int64``, ``string``, exact decimals).

Examples
--------
>>> from playlist_tools import db, models, queries, sample
>>> with db.fresh_database() as url:
...     engine = db.create_engine(url)
...     models.Base.metadata.create_all(engine)
...     _ = sample.load_sample(engine, progress=False)
...     songs = queries.playlist_songs("Grunge", engine)
...     engine.dispose()
>>> songs[["position", "title", "artist"]].head(3)
   position                    title           artist
0         1           Man In The Box  Alice In Chains
1         2  Smells Like Teen Spirit          Nirvana
2         3                 In Bloom          Nirvana
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from playlist_tools import db
from playlist_tools.errors import QueryError, SchemaError, first_line, sqlstate
from playlist_tools.frames import read_frame

__all__ = ["QueryError", "playlist_songs", "song_playlists", "playlist_summary"]

_PLAYLIST_SONGS = sa.text("""
    SELECT a.position, s.song_id, s.title, s.artist, s.album, s.genre, s.composer,
           s.file_format, s.duration_ms, s.size_bytes, s.unit_price
    FROM playlist_song_association AS a
    JOIN songs AS s ON s.song_id = a.song_id
    WHERE a.playlist_id = :playlist_id
    ORDER BY a.position, s.song_id
""")

_SONG_PLAYLISTS = sa.text("""
    SELECT p.playlist_id, p.title, a.position
    FROM playlist_song_association AS a
    JOIN playlists AS p ON p.playlist_id = a.playlist_id
    WHERE a.song_id = :song_id
    ORDER BY p.playlist_id
""")

# Top genre: most songs; ties go to the first name in byte order (COLLATE "C"),
# so the answer does not depend on the server's locale.
_SUMMARY = sa.text("""
    WITH per_genre AS (
        SELECT a.playlist_id, s.genre, count(*) AS n
        FROM playlist_song_association AS a
        JOIN songs AS s ON s.song_id = a.song_id
        WHERE s.genre IS NOT NULL
        GROUP BY a.playlist_id, s.genre
    ), top AS (
        SELECT DISTINCT ON (playlist_id) playlist_id, genre, n
        FROM per_genre
        ORDER BY playlist_id, n DESC, genre COLLATE "C"
    )
    SELECT p.playlist_id, p.title, count(s.song_id) AS songs,
           COALESCE(sum(s.duration_ms), 0)::bigint AS duration_ms,
           top.genre AS top_genre, top.n AS top_genre_songs
    FROM playlists AS p
    LEFT JOIN playlist_song_association AS a ON a.playlist_id = p.playlist_id
    LEFT JOIN songs AS s ON s.song_id = a.song_id
    LEFT JOIN top ON top.playlist_id = p.playlist_id
    WHERE CAST(:playlist_id AS integer) IS NULL OR p.playlist_id = :playlist_id
    GROUP BY p.playlist_id, p.title, top.genre, top.n
    ORDER BY p.playlist_id
""")


_INT4 = 2**31  # playlist_id and song_id are PostgreSQL integers
_MISSING_SCHEMA = {"42P01", "42703"}  # undefined table, undefined column


def _as_id(value: object, what: str, example: str, wanted: str = "an integer id") -> int:
    """``value`` as an integer id; a bool (an int to Python), a float or None is refused, not converted.

    Examples
    --------
    >>> _as_id(True, "song_id", "song_id=1")
    Traceback (most recent call last):
    ...
    playlist_tools.errors.QueryError: song_id True is a bool, not an integer id; pass e.g. song_id=1
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise QueryError(f"{what} {value!r:.80} is a {type(value).__name__}, not {wanted}; pass e.g. {example}")
    number = int(value)
    if not -_INT4 <= number < _INT4:
        raise QueryError(f"{what} {number} is beyond PostgreSQL's integer range, so nothing has it; e.g. {example}")
    return number


def _as_playlist(value: object) -> int | str:
    """A playlist reference as given: a title stays a title, anything else must be an integer id."""
    if isinstance(value, str):
        return value
    return _as_id(value, "playlist", "17 or 'Grunge'", "an integer id or a title")


def _as_con(con: object) -> db.Connectable:
    """``con`` itself, when it is something :func:`playlist_tools.db.connection` takes."""
    if con is not None and not isinstance(con, (str, URL, Engine, Connection)):
        raise QueryError(
            f"con={con!r:.80} is a {type(con).__name__}, not a database; "
            "pass a URL, an Engine, a Connection or None (the default database)"
        )
    return con


@contextlib.contextmanager
def _schema_errors() -> Iterator[None]:
    """A database without the playlist tables (or with old ones) says so in one line, without our SQL."""
    try:
        yield
    except sa.exc.ProgrammingError as err:
        if sqlstate(err) not in _MISSING_SCHEMA:
            raise
        raise SchemaError(
            f"{first_line(err.orig):.120}: this database has no playlist schema, or an old one; "
            "create or upgrade it first: alembic upgrade head"
        ) from err


def _playlist_id(connection: Connection, playlist: int | str) -> int:
    """The id of a playlist given by id or by (unique) title."""
    if isinstance(playlist, str):
        ids = connection.execute(
            sa.text("SELECT playlist_id FROM playlists WHERE title = :title ORDER BY playlist_id"),
            {"title": playlist},
        ).scalars().all()
        if len(ids) > 1:
            raise QueryError(
                f"{len(ids)} playlists are titled {playlist!r:.80} (ids {', '.join(map(str, ids[:10]))}); "
                "pass the id instead"
            )
        if not ids:
            raise QueryError(f"no playlist is titled {playlist!r:.80}; playlist_summary() lists them all")
        return int(ids[0])
    found = connection.execute(
        sa.text("SELECT playlist_id FROM playlists WHERE playlist_id = :playlist_id"), {"playlist_id": playlist}
    ).scalar()
    if found is None:
        raise QueryError(f"no playlist has id {playlist!r}; playlist_summary() lists them all")
    return int(found)


def playlist_songs(playlist: int | str, con: db.Connectable = None) -> pd.DataFrame:
    """The songs of a playlist, in playlist order.

    Parameters
    ----------
    playlist : int or str
        The playlist's id, or its title when no other playlist has that
        title (Chinook has two "Music" playlists, ids 1 and 8).
    con : str, sqlalchemy.engine.URL, Engine, Connection or None
        The database (see the module docstring for who closes what).

    Returns
    -------
    pandas.DataFrame
        ``position`` and every column of ``songs``, ordered by position.
        Empty (with those columns) for an empty playlist.

    Raises
    ------
    QueryError
        When no playlist has that id or title, or several have that title;
        when ``playlist`` is neither an int nor a str (a bool, a float) or
        ``con`` is not a database.
    SchemaError
        When the database has no playlist tables (``alembic upgrade head``).

    Examples
    --------
    >>> playlist_songs(True)
    Traceback (most recent call last):
    ...
    playlist_tools.errors.QueryError: playlist True is a bool, not an integer id or a title; pass e.g. 17 or 'Grunge'
    """
    playlist, con = _as_playlist(playlist), _as_con(con)
    with db.connection(con) as connection, _schema_errors():
        playlist_id = _playlist_id(connection, playlist)
        return read_frame(_PLAYLIST_SONGS, connection, {"playlist_id": playlist_id})


def song_playlists(song_id: int, con: db.Connectable = None) -> pd.DataFrame:
    """The playlists a song is on, and its position in each.

    Parameters
    ----------
    song_id : int
        The song's id.
    con : str, sqlalchemy.engine.URL, Engine, Connection or None
        The database.

    Returns
    -------
    pandas.DataFrame
        ``playlist_id``, ``title``, ``position``, ordered by playlist id;
        empty when the song is on no playlist.

    Raises
    ------
    QueryError
        When there is no song with that id, ``song_id`` is not an int (a
        bool, a float, a str), or ``con`` is not a database.
    SchemaError
        When the database has no playlist tables (``alembic upgrade head``).
    """
    song_id, con = _as_id(song_id, "song_id", "song_id=1"), _as_con(con)
    with db.connection(con) as connection, _schema_errors():
        exists = connection.execute(
            sa.text("SELECT 1 FROM songs WHERE song_id = :song_id"), {"song_id": song_id}
        ).scalar()
        if exists is None:
            raise QueryError(f"no song has id {song_id!r}; look one up with playlist_songs(...)")
        return read_frame(_SONG_PLAYLISTS, connection, {"song_id": song_id})


def playlist_summary(con: db.Connectable = None, *, playlist: int | str | None = None) -> pd.DataFrame:
    """One row per playlist: how many songs, how long, and the top genre.

    Parameters
    ----------
    con : str, sqlalchemy.engine.URL, Engine, Connection or None
        The database.
    playlist : int or str, optional
        Only this playlist (by id, or by a title no other playlist has).

    Raises
    ------
    QueryError, SchemaError
        As :func:`playlist_songs`; ``playlist_summary("Grunge")`` names a
        database, not a playlist: write ``playlist="Grunge"``.

    Returns
    -------
    pandas.DataFrame
        Ordered by ``playlist_id``, with ``title``, ``songs`` (count),
        ``duration_ms`` (total, exact), ``duration`` (the same, as a
        timedelta rounded to the second, for reading), ``top_genre`` (the
        genre with most songs; ties go to the first name in byte order; NA
        for an empty playlist) and ``top_genre_songs``.

    Examples
    --------
    >>> from playlist_tools import db, models, sample
    >>> with db.fresh_database() as url:
    ...     engine = db.create_engine(url)
    ...     models.Base.metadata.create_all(engine)
    ...     _ = sample.load_sample(engine, progress=False)
    ...     summary = playlist_summary(engine)
    ...     engine.dispose()
    >>> summary.loc[summary["title"].isin(["Grunge", "Audiobooks"]), ["title", "songs", "duration", "top_genre"]]
             title  songs        duration top_genre
    3   Audiobooks      0 0 days 00:00:00      <NA>
    5   Audiobooks      0 0 days 00:00:00      <NA>
    15      Grunge     15 0 days 01:08:42      Rock
    """
    playlist, con = (None if playlist is None else _as_playlist(playlist)), _as_con(con)
    with db.connection(con) as connection, _schema_errors():
        playlist_id = None if playlist is None else _playlist_id(connection, playlist)
        frame = read_frame(_SUMMARY, connection, {"playlist_id": playlist_id})
    duration = pd.to_timedelta(frame["duration_ms"], unit="ms").dt.round("s").astype("timedelta64[s]")
    frame.insert(frame.columns.get_loc("duration_ms") + 1, "duration", duration)
    return frame
