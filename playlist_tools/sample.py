"""Sample data: the real Chinook playlists, and a synthetic generator for scale.

The real sample ships inside the package (``playlist_tools/data``, MIT,
derived from Chinook by ``tools/convert_chinook.py``; see the
``PROVENANCE.md`` and ``LICENSE.md`` there): 3503 songs, 18 playlists and
8715 playlist entries, quirks included (repeated playlist names, four empty
playlists, non-ASCII titles, NULL composers, a few videos).
:func:`read_sample` returns it as DataFrames; :func:`load_sample` puts it
in a database. ``synthetic`` makes any number of made-up songs and playlists, the same
ones for the same seed, as DataFrames whose columns are exactly those of
the tables (see :func:`synthetic` for the dtypes).

Examples
--------
>>> from playlist_tools import sample
>>> {name: len(frame) for name, frame in sample.read_sample().items()}
{'songs': 3503, 'playlists': 18, 'playlist_song_association': 8715}
>>> frames = sample.synthetic(1000, 10, seed=1)
>>> {name: len(frame) for name, frame in frames.items()}
{'songs': 1000, 'playlists': 10, 'playlist_song_association': 2500}
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
from collections.abc import Iterator
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import REGCLASS, insert
from sqlalchemy.engine import URL, Connection, Engine

from playlist_tools import db
from playlist_tools.errors import PlaylistToolsError
from playlist_tools.models import Base

__all__ = ["TABLES", "SampleError", "read_sample", "load_sample", "synthetic"]

TABLES = ("playlists", "songs", "playlist_song_association")
"""The tables the sample fills, in loading order (parents first)."""

_KEYS = {"songs": ("song_id",), "playlists": ("playlist_id",), "playlist_song_association": ("playlist_id", "song_id")}
_IDENTITIES = {"songs": "song_id", "playlists": "playlist_id", "playlist_song_association": "position"}
_BATCH = 1000


class SampleError(PlaylistToolsError, ValueError):
    """The sample does not fit the database: rows differ, or the schema is not at head."""


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas with the dtypes :func:`synthetic` documents."""
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    for field in table.schema:
        if pa.types.is_integer(field.type):
            frame[field.name] = frame[field.name].astype("Int64" if field.nullable else "int64")
    return frame


def read_sample() -> dict[str, pd.DataFrame]:
    """The shipped sample playlists as DataFrames, keyed by table name.

    Dtypes as in :func:`synthetic`; ``playlists`` has no ``created_at``
    (Chinook has no dates; the database's default fills it on load).

    Examples
    --------
    >>> playlists = read_sample()["playlists"]
    >>> playlists.loc[playlists["title"] == "90’s Music", "playlist_id"].tolist()
    [5]
    """
    data = resources.files("playlist_tools") / "data"
    frames = {}
    for name in ("songs", "playlists", "playlist_song_association"):
        table = pq.read_table(pa.BufferReader((data / f"{name}.parquet").read_bytes()))
        frames[name] = _to_pandas(table)
    return frames


@contextlib.contextmanager
def _transaction(con: str | URL | Engine | Connection | None) -> Iterator[Connection]:
    """One transaction on ``con``; an engine made here is disposed of here."""
    if isinstance(con, Connection):
        # Inside the caller's transaction a savepoint keeps the load all-or-nothing
        # without committing the caller's other work.
        with con.begin_nested() if con.in_transaction() else con.begin():
            yield con
    elif isinstance(con, Engine):
        with con.begin() as connection:
            yield connection
    else:
        engine = db.create_engine(con, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as connection:
                yield connection
        finally:
            engine.dispose()


def _check_schema(connection: Connection) -> None:
    inspector = sa.inspect(connection)
    for name in TABLES:
        if not inspector.has_table(name):
            raise SampleError(f"table {name!r} does not exist; create the schema first: alembic upgrade head")
        present = {column["name"] for column in inspector.get_columns(name)}
        missing = [c.name for c in Base.metadata.tables[name].columns if c.name not in present]
        if missing:
            raise SampleError(
                f"table {name!r} has no column {missing[0]!r}; upgrade the schema first: alembic upgrade head"
            )


def _rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [
        {key: (None if value is pd.NA else value) for key, value in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]


def _check_skipped(connection: Connection, name: str, rows: list[dict[str, object]], inserted: set[tuple]) -> None:
    """Rows that were already there must equal the sample's, or the load is refused."""
    keys, table = _KEYS[name], Base.metadata.tables[name]
    expected = {tuple(row[k] for k in keys): row for row in rows}
    skipped = [key for key in expected if key not in inserted]
    if not skipped:
        return
    columns = [table.c[c] for c in rows[0]]
    key_clause = sa.tuple_(*(table.c[k] for k in keys)).in_(skipped)
    for found in connection.execute(sa.select(*columns).where(key_clause)).mappings():
        want = expected[tuple(found[k] for k in keys)]
        for column, value in want.items():
            if found[column] != value:
                where = ", ".join(f"{k}={found[k]}" for k in keys)
                raise SampleError(
                    f"{name} row {where} already exists with {column}={found[column]!r}, "
                    f"but the sample has {value!r}; load the sample into an empty database "
                    "(playlist_tools.db.fresh_database) or delete that row first"
                )


def _advance_sequence(table: sa.Table, column: str) -> sa.Select:
    """Move the column's sequence past its largest value, never backwards (deletes leave it ahead)."""
    sequence = sa.func.pg_get_serial_sequence(table.name, column)
    largest = sa.select(sa.func.max(table.c[column])).scalar_subquery()
    last = sa.func.pg_sequence_last_value(sa.cast(sequence, REGCLASS))
    return sa.select(sa.func.setval(sequence, sa.func.greatest(largest, last, 1)))


def load_sample(
    con: str | URL | Engine | Connection | None = None, *, progress: bool = True
) -> pd.DataFrame:
    """Load the sample playlists into ``con``, all or nothing, idempotently.

    Rows already present with the same values are skipped, so loading twice
    changes nothing. A row present with *different* values (a key taken by
    other data) raises :class:`SampleError`, and nothing is loaded: the
    whole load is one transaction. Afterwards the id and position
    sequences continue past the loaded values, so rows inserted later get
    fresh ids. ``created_at`` is left to the database's default (the load
    time). The schema must be at head (``alembic upgrade head``).

    Parameters
    ----------
    con : str, sqlalchemy.engine.URL, Engine, Connection or None
        Where to load. A URL or ``None`` (see :func:`playlist_tools.db.resolve_url`):
        an engine is made and disposed of here. An ``Engine``: one of its
        connections is used and returned; the caller disposes of the engine.
        A ``Connection``: used as is and left open; inside a transaction the
        load runs in a savepoint and the caller commits, otherwise it is
        committed here.
    progress : bool
        Show a tqdm progress bar (terminal or notebook widget).

    Returns
    -------
    pandas.DataFrame
        Indexed by table: ``sample`` rows in the sample, ``inserted`` rows
        added now, ``total`` rows in the table afterwards.

    Examples
    --------
    >>> from playlist_tools import models
    >>> with db.fresh_database() as url:
    ...     engine = db.create_engine(url)
    ...     models.Base.metadata.create_all(engine)
    ...     first = load_sample(engine, progress=False)
    ...     again = load_sample(engine, progress=False)
    ...     engine.dispose()
    >>> first
                               sample  inserted  total
    table
    playlists                      18        18     18
    songs                        3503      3503   3503
    playlist_song_association    8715      8715   8715
    >>> again["inserted"].tolist()
    [0, 0, 0]
    """
    from tqdm.auto import tqdm

    frames = read_sample()
    rows = {name: _rows(frames[name]) for name in TABLES}
    counts = []
    with _transaction(con) as connection, tqdm(
        total=sum(map(len, rows.values())), unit="row", desc="loading sample", disable=not progress
    ) as bar:
        _check_schema(connection)
        for name in TABLES:
            table, keys = Base.metadata.tables[name], _KEYS[name]
            statement = insert(table).on_conflict_do_nothing().returning(*(table.c[k] for k in keys))
            inserted: set[tuple] = set()
            for start in range(0, len(rows[name]), _BATCH):
                batch = rows[name][start : start + _BATCH]
                inserted.update(tuple(r) for r in connection.execute(statement, batch))
                bar.update(len(batch))
            _check_skipped(connection, name, rows[name], inserted)
            connection.execute(_advance_sequence(table, _IDENTITIES[name]))
            total = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            counts.append((name, len(rows[name]), len(inserted), total))
    return pd.DataFrame(counts, columns=["table", "sample", "inserted", "total"]).set_index("table")

# Chinook's genres and file formats, most common first, with their weights
# there, so synthetic data is skewed the way the real sample is.
_GENRES = {
    "Rock": 1297, "Latin": 579, "Metal": 374, "Alternative & Punk": 332, "Jazz": 130,
    "TV Shows": 93, "Blues": 81, "Classical": 74, "Drama": 64, "R&B/Soul": 61,
    "Reggae": 58, "Pop": 48, "Soundtrack": 43, "Alternative": 40, "Hip Hop/Rap": 35,
    "Electronica/Dance": 30, "Heavy Metal": 28, "World": 28, "Sci Fi & Fantasy": 26,
    "Easy Listening": 24, "Comedy": 17, "Bossa Nova": 15, "Science Fiction": 13,
    "Rock And Roll": 12, "Opera": 1,
}
_AUDIO_FORMATS = {
    "MPEG audio file": 3034, "Protected AAC audio file": 237,
    "AAC audio file": 11, "Purchased AAC audio file": 7,
}
_VIDEO_FORMAT = "Protected MPEG-4 video file"
_VIDEO_SHARE = 214 / 3503
# Non-ASCII on purpose (curly apostrophe, accents, umlaut): encodings get exercised.
_WORDS_A = [
    "Blue", "Broken", "Electric", "Golden", "Midnight", "Silent", "Wild", "Lonely",
    "Crazy", "Sweet", "Burning", "Café", "Último", "Über", "Dancin’", "Velvet",
    "Hollow", "Neon", "Paper", "Iron", "Secret", "Summer", "Frozen", "Little",
]
_WORDS_B = [
    "Heart", "Road", "Night", "River", "Dream", "Fire", "Rain", "Train", "Love",
    "Song", "Moon", "Highway", "Angel", "Garden", "Thunder", "Coração", "Mädchen",
    "Sky", "Ocean", "City", "Stranger", "Shadow", "Machine", "Blues",
]
_PLAYLIST_TITLES = [
    "Music", "Movies", "TV Shows", "Audiobooks", "90’s Music", "Music Videos",
    "Brazilian Music", "Classical", "Grunge", "Heavy Metal Classic", "On-The-Go",
    "Road Trip", "Workout", "Chill", "Focus", "Party",
]
_PRICES = np.array([decimal.Decimal("0.99"), decimal.Decimal("1.99")], dtype=object)
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
    return pd.DataFrame(
        {
            "playlist_id": playlist_id + 1,
            "song_id": song_index + 1,
            "position": position.astype(np.int64),
        }
    )


def synthetic(
    n_songs: int, n_playlists: int, seed: int = 0, *, n_links: int | None = None
) -> dict[str, pd.DataFrame]:
    """Make-believe songs and playlists, shaped like Chinook, at any scale.

    Vectorised with a :class:`numpy.random.Generator`: the same arguments
    always give the same frames, and a million songs take a few seconds.
    Ids run from 1; positions are 1..n in ``song_id`` order within each
    playlist (the rule of migration 0003).

    Columns are exactly the tables' columns, in table order, with these
    dtypes (nullable in the table means a nullable dtype here):

    * NOT NULL integers (ids, ``position``): ``int64``;
    * nullable integers (``duration_ms``, ``size_bytes``): ``Int64``;
    * text: ``string[pyarrow]`` (``pd.NA`` for NULL; ``composer`` and
      ``description`` have some);
    * ``unit_price``: ``object`` holding :class:`decimal.Decimal` (exact
      cents, ``0.99`` for audio, ``1.99`` for video, as in Chinook);
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
    ['song_id', 'title', 'artist', 'album', 'genre', 'composer', 'file_format', 'duration_ms', 'size_bytes', 'unit_price']
    >>> frames["songs"].dtypes.astype(str).tolist()
    ['int64', 'string', 'string', 'string', 'string', 'string', 'string', 'Int64', 'Int64', 'object']
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

    songs = pd.DataFrame(
        {
            "song_id": np.arange(1, n_songs + 1, dtype=np.int64),
            "title": _pick(titles, rng.integers(0, len(titles), n_songs)),
            "artist": _pick(artist_names, album_artist[album]),
            "album": _pick(album_names, album),
            "genre": _weighted(rng, _GENRES, n_songs),
            "composer": composer,
            "file_format": file_format,
            "duration_ms": pd.array(duration, dtype="Int64"),
            "size_bytes": pd.array(size, dtype="Int64"),
            "unit_price": _PRICES[video.astype(np.int64)],
        }
    )
    description = _pick(
        ["Handpicked.", "Songs for a long drive.", "Niños y niñas: canciones.", "Late night, low volume."],
        rng.integers(0, 4, n_playlists),
    )
    description[rng.random(n_playlists) < 0.5] = pd.NA
    seconds = rng.integers(0, 366 * 24 * 3600, n_playlists)
    playlists = pd.DataFrame(
        {
            "playlist_id": np.arange(1, n_playlists + 1, dtype=np.int64),
            "title": _pick(_PLAYLIST_TITLES, rng.integers(0, len(_PLAYLIST_TITLES), n_playlists)),
            "description": description,
            "created_at": pd.Series(_EPOCH + seconds.astype("timedelta64[s]")).dt.tz_localize(datetime.timezone.utc),
        }
    )
    links = _links(rng, n_songs, n_playlists, n_links) if n_songs and n_playlists else (
        pd.DataFrame({c: np.empty(0, np.int64) for c in ("playlist_id", "song_id", "position")})
    )
    return {"songs": songs, "playlists": playlists, "playlist_song_association": links}
