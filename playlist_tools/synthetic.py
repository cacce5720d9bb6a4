"""Synthetic songs and playlists: Chinook-shaped, deterministic, at any scale.

For scale tests and benchmarks, where the 3503 real songs of
:mod:`playlist_tools.sample` are too few. Also available as
``playlist_tools.sample.synthetic``.

Examples
--------
>>> from playlist_tools.synthetic import synthetic
>>> frames = synthetic(1000, 10, seed=1)
>>> {name: len(frame) for name, frame in frames.items()}
{'songs': 1000, 'playlists': 10, 'playlist_song_association': 2500}
"""

from __future__ import annotations

import datetime
import decimal

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["synthetic"]

# Chinook's genres and file formats with their counts there, so synthetic
# data is skewed the way the real sample is.
_GENRES = {
    "Rock": 1297, "Latin": 579, "Metal": 374, "Alternative & Punk": 332, "Jazz": 130,
    "TV Shows": 93, "Blues": 81, "Classical": 74, "Drama": 64, "R&B/Soul": 61,
    "Reggae": 58, "Pop": 48, "Soundtrack": 43, "Alternative": 40, "Hip Hop/Rap": 35,
    "Electronica/Dance": 30, "Heavy Metal": 28, "World": 28, "Sci Fi & Fantasy": 26,
    "Easy Listening": 24, "Comedy": 17, "Bossa Nova": 15, "Science Fiction": 13,
    "Rock And Roll": 12, "Opera": 1,
}
_AUDIO_FORMATS = {
    "MPEG audio file": 3034, "Protected AAC audio file": 237, "AAC audio file": 11, "Purchased AAC audio file": 7,
}
_VIDEO_FORMAT, _VIDEO_SHARE = "Protected MPEG-4 video file", 214 / 3503
# Non-ASCII on purpose (curly apostrophe, accents, umlaut), so encodings get exercised.
_WORDS_A = ("Blue Broken Electric Golden Midnight Silent Wild Lonely Crazy Sweet Burning Café "
            "Último Über Dancin’ Velvet Hollow Neon Paper Iron Secret Summer Frozen Little").split()
_WORDS_B = ("Heart Road Night River Dream Fire Rain Train Love Song Moon Highway Angel Garden "
            "Thunder Coração Mädchen Sky Ocean City Stranger Shadow Machine Blues").split()
_PLAYLIST_TITLES = ("Music|Movies|TV Shows|Audiobooks|90’s Music|Music Videos|Brazilian Music|Classical|"
                    "Grunge|Heavy Metal Classic|On-The-Go|Road Trip|Workout|Chill|Focus|Party").split("|")
_DESCRIPTIONS = ["Handpicked.", "Songs for a long drive.", "Niños y niñas: canciones.", "Late night, low volume."]
_PRICES = pa.array([decimal.Decimal("0.99"), decimal.Decimal("1.99")], pa.decimal128(10, 2))
_EPOCH = np.datetime64("2024-01-01T00:00:00", "us")
_STRING = pd.StringDtype("pyarrow")


def _pick(pool: list[str], index: np.ndarray) -> pd.Series:
    # take() on an Arrow-backed array: vectorised, no per-row Python strings.
    return pd.Series(pd.array(pool, dtype=_STRING).take(index))


def _weighted(rng: np.random.Generator, weights: dict[str, int], size: int) -> pd.Series:
    p = np.array(list(weights.values()), dtype=float)
    return _pick(list(weights), rng.choice(len(p), size=size, p=p / p.sum()))


def _distinct(keys: np.ndarray) -> np.ndarray:
    # Sort-based; np.unique's hash path is several times slower on int64 here.
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def _links(rng: np.random.Generator, n_songs: int, n_playlists: int, n_links: int) -> pd.DataFrame:
    """Distinct (playlist, song) pairs; playlists sized unevenly, as in Chinook."""
    n_links = min(n_links, n_songs * n_playlists)
    weights = rng.lognormal(0.0, 1.2, n_playlists)
    weights /= weights.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_links:  # duplicates are dropped, so top up until enough
        missing = n_links - len(keys)
        playlists = rng.choice(n_playlists, size=missing + missing // 8 + 16, p=weights)
        songs = rng.integers(0, n_songs, size=len(playlists))
        fresh = playlists.astype(np.int64) * n_songs + songs
        keys = _distinct(np.concatenate([keys, fresh]))
        if len(keys) >= n_songs * n_playlists * 0.9 and len(keys) < n_links:
            # Nearly full: enumerate the remaining pairs instead of hoping to hit them.
            keys = np.arange(n_songs * n_playlists, dtype=np.int64)
    if len(keys) > n_links:
        keys = np.sort(rng.choice(keys, size=n_links, replace=False))
    playlist_id, song_index = np.divmod(keys, n_songs)
    # Position = 1..n in song order within each playlist, like migration 0003.
    starts = np.r_[0, np.flatnonzero(np.diff(playlist_id)) + 1]
    sizes = np.diff(np.r_[starts, len(keys)])
    position = np.arange(len(keys)) - np.repeat(starts, sizes) + 1
    return pd.DataFrame({
        "playlist_id": pd.array(playlist_id + 1, dtype="Int32"),
        "song_id": pd.array(song_index + 1, dtype="Int32"),
        "position": pd.array(position, dtype="Int32"),
    })


def synthetic(
    n_songs: int, n_playlists: int, seed: int = 0, *, n_links: int | None = None
) -> dict[str, pd.DataFrame]:
    """Make-believe songs and playlists, shaped like Chinook, at any scale.

    Vectorised with a :class:`numpy.random.Generator`: the same arguments
    always give the same frames, and a million songs take a few seconds.
    Ids run from 1; positions are 1..n in ``song_id`` order within each
    playlist (the rule of migration 0003).

    Columns are exactly the tables' columns, in table order, with the
    dtypes :func:`playlist_tools.frames.read_frame` gives those columns, so
    a frame written and read back compares equal:

    * ``integer`` columns (ids, ``position``, ``duration_ms``): ``Int32``;
      ``bigint`` (``size_bytes``): ``Int64``;
    * text: ``string`` (``pd.StringDtype("pyarrow")``, ``pd.NA`` for NULL;
      ``composer`` and ``description`` have some);
    * ``unit_price``: ``decimal128(10, 2)[pyarrow]``, exact cents (``0.99``
      for audio, ``1.99`` for video, as in Chinook);
    * ``created_at``: ``datetime64[us, UTC]``, within 2024.

    Parameters
    ----------
    n_songs, n_playlists : int
        How many rows of each.
    seed : int
        Seed of the random generator.
    n_links : int, optional
        Number of playlist entries; defaults to Chinook's ratio, 2.5 per song
        (capped at ``n_songs * n_playlists``, every pair being distinct).

    Returns
    -------
    dict of str to pandas.DataFrame
        Keyed by table name: ``"songs"``, ``"playlists"``,
        ``"playlist_song_association"``.

    Examples
    --------
    >>> frames = synthetic(5, 2, seed=0)
    >>> frames["songs"].columns.tolist()
    ['song_id', 'title', 'artist', 'album', 'genre', 'composer', 'file_format',
     'duration_ms', 'size_bytes', 'unit_price']
    >>> frames["songs"].dtypes.astype(str).tolist()
    ['Int32', 'string', 'string', 'string', 'string', 'string', 'string',
     'Int32', 'Int64', 'decimal128(10, 2)[pyarrow]']
    >>> synthetic(5, 2, seed=0)["songs"].equals(frames["songs"])
    True
    >>> frames["playlist_song_association"].columns.tolist()
    ['playlist_id', 'song_id', 'position']
    """
    if n_songs < 0 or n_playlists < 0:
        raise ValueError(f"n_songs={n_songs} and n_playlists={n_playlists} must not be negative")
    if n_links is None:
        n_links = round(2.5 * n_songs)
    if n_links < 0:
        raise ValueError(f"n_links={n_links} must not be negative")
    rng = np.random.default_rng(seed)

    n_artists = max(1, n_songs // 13)
    n_albums = max(1, n_songs // 10)
    artist_names = [f"{a} {b} {i}" for i, (a, b) in enumerate(zip(
        np.array(_WORDS_A)[rng.integers(0, len(_WORDS_A), n_artists)],
        np.array(_WORDS_B)[rng.integers(0, len(_WORDS_B), n_artists)],
        strict=True,
    ), start=1)]
    album_artist = rng.integers(0, n_artists, n_albums)
    album_names = [f"Album {i}" for i in range(1, n_albums + 1)]
    album = rng.integers(0, n_albums, n_songs)
    titles = [f"{a} {b}" for a in _WORDS_A for b in _WORDS_B]

    video = rng.random(n_songs) < _VIDEO_SHARE
    file_format = _weighted(rng, _AUDIO_FORMATS, n_songs)
    file_format[video] = _VIDEO_FORMAT
    # Audio around 4-5 minutes; videos (TV episodes) around 40 minutes.
    duration = np.where(video, rng.normal(2_400_000, 600_000, n_songs), rng.lognormal(12.4, 0.45, n_songs))
    duration = np.clip(duration, 1_000, 10_800_000).astype(np.int64)
    # Bytes per millisecond as in Chinook: ~32 for audio, ~180 for video
    # (long videos pass 2**31, which BIGINT is for).
    rate = np.where(video, rng.normal(180, 20, n_songs), rng.normal(32, 4, n_songs))
    size = (duration * np.clip(rate, 8, None)).astype(np.int64)
    composer = _pick(artist_names, album_artist[album])
    composer[rng.random(n_songs) < 0.28] = pd.NA

    songs = pd.DataFrame({
        "song_id": pd.array(np.arange(1, n_songs + 1), dtype="Int32"),
        "title": _pick(titles, rng.integers(0, len(titles), n_songs)),
        "artist": _pick(artist_names, album_artist[album]),
        "album": _pick(album_names, album),
        "genre": _weighted(rng, _GENRES, n_songs),
        "composer": composer,
        "file_format": file_format,
        "duration_ms": pd.array(duration, dtype="Int32"),
        "size_bytes": pd.array(size, dtype="Int64"),
        "unit_price": pd.Series(pd.arrays.ArrowExtensionArray(_PRICES.take(video.astype(np.int64)))),
    })
    description = _pick(_DESCRIPTIONS, rng.integers(0, 4, n_playlists))
    description[rng.random(n_playlists) < 0.5] = pd.NA
    seconds = rng.integers(0, 366 * 24 * 3600, n_playlists)
    playlists = pd.DataFrame({
        "playlist_id": pd.array(np.arange(1, n_playlists + 1), dtype="Int32"),
        "title": _pick(_PLAYLIST_TITLES, rng.integers(0, len(_PLAYLIST_TITLES), n_playlists)),
        "description": description,
        "created_at": pd.Series(_EPOCH + seconds.astype("timedelta64[s]")).dt.tz_localize(datetime.timezone.utc),
    })
    links = _links(rng, n_songs, n_playlists, n_links) if n_songs and n_playlists else (
        pd.DataFrame({c: pd.array([], dtype="Int32") for c in ("playlist_id", "song_id", "position")})
    )
    return {"songs": songs, "playlists": playlists, "playlist_song_association": links}
