"""Convert the Chinook SQLite database into the sample shipped in playlist_tools/data.

Usage (from the repo root)::

    python tools/convert_chinook.py [--source ../shared/data/chinook] [--out playlist_tools/data]

Reads ``Chinook_Sqlite.sqlite`` read-only with the standard library's
``sqlite3`` and writes three typed, zstd-compressed Parquet files (one per
table of our schema), a copy of Chinook's ``LICENSE.md`` (MIT: it must
travel with the data) and ``PROVENANCE.md`` (source, SHA256, mapping,
counts). Running it again with the same pyarrow version writes
byte-identical files: rows are ordered by key, and the files carry no
timestamps and no pandas metadata.

Mapping: track -> song (artist via album -> artist; genre and media type by
name; ``UnitPrice`` as exact ``NUMERIC(10, 2)``), playlist -> playlist
(``description`` NULL; ``created_at`` left to the server's default),
playlist_track -> playlist_song_association with ``position`` = 1..n in
``TrackId`` order within each playlist (migration 0003's rule). Nothing is
filtered: empty playlists, repeated names, videos and NULL composers stay.
"""

from __future__ import annotations

import argparse
import decimal
import hashlib
import shutil
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "chinook"
DEFAULT_OUT = REPO / "playlist_tools" / "data"
SQLITE_NAME = "Chinook_Sqlite.sqlite"
CENT = decimal.Decimal("0.01")

SCHEMAS = {
    "songs": pa.schema([
        pa.field("song_id", pa.int32(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        ("artist", pa.string()), ("album", pa.string()), ("genre", pa.string()),
        ("composer", pa.string()), ("file_format", pa.string()),
        ("duration_ms", pa.int32()), ("size_bytes", pa.int64()),
        ("unit_price", pa.decimal128(10, 2)),
    ]),
    "playlists": pa.schema([
        pa.field("playlist_id", pa.int32(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        ("description", pa.string()),
    ]),
    "playlist_song_association": pa.schema([
        pa.field("playlist_id", pa.int32(), nullable=False),
        pa.field("song_id", pa.int32(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
    ]),
}

QUERIES = {
    "songs": """
        SELECT t.TrackId, t.Name, ar.Name, al.Title, g.Name, t.Composer, m.Name,
               t.Milliseconds, t.Bytes, t.UnitPrice
        FROM Track AS t
        LEFT JOIN Album AS al ON al.AlbumId = t.AlbumId
        LEFT JOIN Artist AS ar ON ar.ArtistId = al.ArtistId
        LEFT JOIN Genre AS g ON g.GenreId = t.GenreId
        LEFT JOIN MediaType AS m ON m.MediaTypeId = t.MediaTypeId
        ORDER BY t.TrackId""",
    "playlists": "SELECT PlaylistId, Name, NULL FROM Playlist ORDER BY PlaylistId",
    "playlist_song_association": """
        SELECT PlaylistId, TrackId,
               row_number() OVER (PARTITION BY PlaylistId ORDER BY TrackId)
        FROM PlaylistTrack ORDER BY PlaylistId, TrackId""",
}


def _price(value: float) -> decimal.Decimal:
    # SQLite keeps NUMERIC(10,2) as a REAL (0.99 is 0.98999...); round to cents
    # and make sure nothing but binary noise was rounded away.
    exact = decimal.Decimal(repr(value)).quantize(CENT)
    if abs(float(exact) - value) > 1e-9:
        raise ValueError(f"UnitPrice {value!r} is not a whole number of cents")
    return exact


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_tables(sqlite_path: Path) -> dict[str, pa.Table]:
    """The three tables of our schema, as typed Arrow tables, from the SQLite file."""
    connection = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        tables = {}
        for name, query in QUERIES.items():
            rows = connection.execute(query).fetchall()
            if name == "songs":
                rows = [(*row[:9], _price(row[9])) for row in rows]
            columns = list(zip(*rows, strict=True)) if rows else [[] for _ in SCHEMAS[name]]
            tables[name] = pa.Table.from_arrays(
                [pa.array(column, type=field.type) for column, field in zip(columns, SCHEMAS[name], strict=True)],
                schema=SCHEMAS[name],
            )
        return tables
    finally:
        connection.close()


PROVENANCE = """\
# The sample playlists: provenance

Derived from the Chinook sample database (real artist, album, track and
playlist names from an iTunes library), release v1.4.5 of
lerocha/chinook-database, MIT licence: see LICENSE.md next to this file,
which must travel with every copy of these files.

- Source: `{source}`, SHA256 `{source_sha}`
- Licence: `LICENSE.md`, SHA256 `{license_sha}`
- Converted by `tools/convert_chinook.py` with pyarrow {pyarrow}.

Mapping: track -> `songs` (song_id = TrackId, title = Name, artist via
album -> artist, album title, genre name, composer, file_format = media
type name, duration_ms = Milliseconds, size_bytes = Bytes, unit_price =
UnitPrice as exact NUMERIC(10, 2)); playlist -> `playlists` (playlist_id,
title = Name, description NULL; created_at is left to the database's
default); playlist_track -> `playlist_song_association` with position =
1..n in TrackId order within each playlist (the rule of migration 0003).

Nothing is filtered. Row counts: {counts}.

Kept quirks: playlist names repeat (two "Music", two "Movies", two
"TV Shows", two "Audiobooks"), four playlists are empty, titles are
non-ASCII ("90’s Music"), many composers are NULL, and some tracks are
videos ("Protected MPEG-4 video file").
"""


def convert(source: Path = DEFAULT_SOURCE, out: Path = DEFAULT_OUT) -> dict[str, int]:
    """Write the sample files into ``out``; return the row count of each table."""
    sqlite_path = source / SQLITE_NAME
    tables = read_tables(sqlite_path)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(
            table, out / f"{name}.parquet", compression="zstd", compression_level=19,
            store_schema=False,
        )
    shutil.copyfile(source / "LICENSE.md", out / "LICENSE.md")
    counts = {name: table.num_rows for name, table in tables.items()}
    (out / "PROVENANCE.md").write_text(
        PROVENANCE.format(
            source=SQLITE_NAME,
            source_sha=sha256(sqlite_path),
            license_sha=sha256(source / "LICENSE.md"),
            pyarrow=pa.__version__,
            counts=", ".join(f"{name} {count}" for name, count in counts.items()),
        ),
        encoding="utf-8",
    )
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE, help="folder holding Chinook_Sqlite.sqlite and LICENSE.md"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the sample files")
    args = parser.parse_args(argv)
    missing = [args.source / name for name in (SQLITE_NAME, "LICENSE.md") if not (args.source / name).is_file()]
    if missing:
        parser.error(f"no {missing[0]}; pass --source with the folder of the Chinook files (shared/data/chinook)")
    for name, count in convert(args.source, args.out).items():
        print(f"{name}: {count} rows")


if __name__ == "__main__":
    main()
