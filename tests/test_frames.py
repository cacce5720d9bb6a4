"""frames: faithful dtypes, round trips, and bad input that changes nothing.

Every test runs on its own fresh database (see conftest.py). No timing
assertions here: speed is measured in bench/.
"""

from __future__ import annotations

import datetime
import decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from playlist_tools import frames, sample
from playlist_tools.errors import DatabaseUnavailableError, FrameError
from playlist_tools.models import Song
from playlist_tools.synthetic import synthetic

from helpers import BIG, assert_faithful_songs, fill_two_songs

UTC = datetime.timezone.utc


@pytest.fixture
def schema(engine: Engine) -> Engine:
    """The models' tables, with two songs and a playlist; NULL in every nullable column."""
    return fill_two_songs(engine)


def count(engine: Engine, table: str) -> int:
    with engine.connect() as con:
        return con.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()


def canonical(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    """Rows as Python values with None for NA, to compare frames of different dtypes."""
    values = frame.astype(object)
    return [tuple(None if pd.isna(v) else v for v in row) for row in values.itertuples(index=False)]


# -- reading: dtypes -----------------------------------------------------------


@pytest.mark.parametrize("query", ["songs", Song, Song.__table__, sa.select(Song), "SELECT * FROM songs"])
def test_song_dtypes_are_faithful(schema: Engine, query: object) -> None:
    songs = frames.read_frame(query, schema).sort_values("song_id", ignore_index=True)
    assert_faithful_songs(songs)
    assert songs.drop(columns="song_id").iloc[1].drop("title").isna().all()


def test_timestamptz_is_zone_aware(schema: Engine) -> None:
    playlists = frames.read_frame("playlists", schema)
    assert str(playlists.created_at.dtype) == "datetime64[us, UTC]"
    assert playlists.description.isna().all() and playlists.title[0] == "90’s Music"


def test_other_types_with_nulls(engine: Engine) -> None:
    with engine.begin() as con:
        con.exec_driver_sql(
            "CREATE TABLE kinds (b boolean, d date, ts timestamptz, t timestamp, i2 smallint, f8 float8,"
            " n numeric, wide numeric(30, 4), j jsonb, raw bytea)"
        )
        con.exec_driver_sql(
            "INSERT INTO kinds VALUES (true, '2024-02-29', '9999-12-31 23:59:59.999999+00', '1900-01-01',"
            " 7, 'NaN', 3.14159265358979323846, 12345678901234567890.1234, '{\"a\": 1}', '\\x00ff'),"
            " (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        )
    kinds = frames.read_frame("SELECT * FROM kinds", engine)
    assert kinds.dtypes.astype(str).to_dict() == {
        "b": "boolean", "d": "date32[day][pyarrow]", "ts": "datetime64[us, UTC]", "t": "datetime64[us]",
        "i2": "Int16", "f8": "Float64", "n": "object", "wide": "decimal128(30, 4)[pyarrow]",
        "j": "string", "raw": "binary[pyarrow]",
    }
    first = kinds.iloc[0]
    assert first.b is True or first.b == True  # noqa: E712 - numpy/pandas bool
    assert first.d == datetime.date(2024, 2, 29)
    assert first.ts == pd.Timestamp("9999-12-31 23:59:59.999999", tz="UTC")
    assert kinds.f8.isna().tolist() == [True, True]  # pandas' Float64 counts 'NaN' as missing too
    assert first.n == decimal.Decimal("3.14159265358979323846")
    assert first.wide == decimal.Decimal("12345678901234567890.1234")
    assert first.j == '{"a": 1}' and first.raw == b"\x00\xff"
    assert kinds.iloc[1].isna().all()


def test_empty_result_keeps_dtypes(schema: Engine) -> None:
    empty = frames.read_frame(sa.select(Song).where(Song.song_id < 0), schema)
    assert len(empty) == 0 and str(empty.size_bytes.dtype) == "Int64"


# -- reading: inputs, connections, pieces ----------------------------------------


def test_parameters_are_bound(schema: Engine) -> None:
    query = "SELECT title FROM songs WHERE artist = :artist"
    assert frames.read_frame(query, schema, {"artist": "Accept"}).title.tolist() == ["Balls to the Wall"]
    assert frames.read_frame(query, schema, {"artist": "x' OR '1'='1"}).empty
    frames.read_frame(query, schema, {"artist": "x'; DROP TABLE songs; --"})
    assert count(schema, "songs") == 2


def test_placeholders_need_values(schema: Engine) -> None:
    with pytest.raises(FrameError, match=r"no value for :artist; pass params=\{'artist': \.\.\.\}"):
        frames.read_frame("SELECT title FROM songs WHERE artist = :artist", schema)
    with pytest.raises(FrameError, match=r"CAST\(:name AS type\)"):
        frames.read_frame("SELECT :n::int AS n", schema, {"n": 1})
    assert frames.read_frame("SELECT CAST(:n AS int) AS n, 5 % 3 AS m, '%' AS p", schema, {"n": 1}).n[0] == 1


def test_orm_select_with_expanding_in(schema: Engine) -> None:
    query = sa.select(Song.song_id, Song.unit_price).where(Song.song_id.in_([1, 2]), Song.title != "x")
    assert sorted(frames.read_frame(query, schema).song_id.tolist()) == [1, 2]


def test_every_kind_of_con(schema: Engine, database_url: URL) -> None:
    text = database_url.render_as_string(hide_password=False)
    for con in (schema, database_url, text):
        assert len(frames.read_frame("songs", con)) == 2


def test_none_means_database_url(schema: Engine, database_url: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert len(frames.read_frame("songs")) == 2


def test_a_connection_sees_its_own_transaction(schema: Engine) -> None:
    with schema.connect() as con:
        con.execute(sa.insert(Song), [{"song_id": 3, "title": "Uncommitted"}])
        assert len(frames.read_frame("songs", con)) == 3
        assert len(frames.read_frame("songs", schema)) == 2  # other sessions don't see it yet
        same = frames.read_frame("SELECT * FROM songs WHERE song_id = :id", con, {"id": 1})
        assert same.size_bytes[0] == BIG and str(same.unit_price.dtype) == "decimal128(10, 2)[pyarrow]"
        con.rollback()
        assert not con.closed  # the caller's Connection stays open
    assert count(schema, "songs") == 2


def test_parallel_read_on_one_snapshot(schema: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with schema.begin() as con:
        con.exec_driver_sql(
            "INSERT INTO songs (song_id, title) SELECT i, 'song ' || i FROM generate_series(3, 20000) i"
        )
    monkeypatch.setattr("playlist_tools.frames._read._PARALLEL_MIN_PAGES", 0)
    whole = frames.read_frame("songs", schema, parallel=3)
    assert sorted(whole.song_id.tolist()) == list(range(1, 20001))
    assert whole.size_bytes.dropna().tolist() == [BIG]


def test_chunks_and_parquet(schema: Engine, tmp_path: Path) -> None:
    with schema.begin() as con:
        con.exec_driver_sql("INSERT INTO songs (song_id, title) SELECT i, 'song ' || i FROM generate_series(3, 1000) i")
    whole = frames.read_frame("SELECT * FROM songs ORDER BY song_id", schema)
    chunks = list(frames.read_frame("SELECT * FROM songs ORDER BY song_id", schema, chunksize=300))
    assert [len(c) for c in chunks] == [300, 300, 300, 100]
    assert (pd.concat(chunks, ignore_index=True).dtypes == whole.dtypes).all()
    assert canonical(pd.concat(chunks, ignore_index=True)) == canonical(whole)
    with schema.connect() as con:  # the psycopg path cuts the same pieces
        assert [len(c) for c in frames.read_frame("songs", con, chunksize=400)] == [400, 400, 200]
    path = tmp_path / "songs.parquet"
    assert frames.to_parquet("SELECT * FROM songs ORDER BY song_id", path, schema, batch_rows=256) == 1000
    assert canonical(pd.read_parquet(path, dtype_backend="pyarrow")) == canonical(whole)
    assert [p.name for p in tmp_path.iterdir()] == ["songs.parquet"]


def test_stopping_early_leaves_the_connection_usable(schema: Engine) -> None:
    with schema.begin() as con:
        con.exec_driver_sql(
            "INSERT INTO songs (song_id, title) SELECT i, 'song ' || i FROM generate_series(3, 50000) i"
        )
    with schema.connect() as con:
        pieces = frames.read_frame("songs", con, chunksize=100)
        assert len(next(pieces)) == 100
        pieces.close()
        assert con.execute(sa.text("SELECT count(*) FROM songs")).scalar_one() == 50000
    pieces = frames.read_frame("songs", schema, chunksize=100)
    assert len(next(pieces)) == 100
    pieces.close()


# -- reading: bad input -----------------------------------------------------------


@pytest.mark.parametrize("query", ["nope", "public.nope", "SELECT * FROM nope", 'songs"; DROP TABLE songs; --',
                                   "songs) AS x; DROP TABLE songs; --", "SELECT 1; DROP TABLE songs"])
def test_bad_queries_raise_and_change_nothing(schema: Engine, query: str) -> None:
    with pytest.raises(FrameError, match="cannot read"):
        frames.read_frame(query, schema)
    assert count(schema, "songs") == 2


def test_a_failing_query_raises_and_spares_the_callers_transaction(schema: Engine) -> None:
    broken = "SELECT song_id / (song_id - 2) AS x FROM songs"  # fails on the second row, not at planning
    with pytest.raises(FrameError, match="division by zero"):
        frames.read_frame(broken, schema)
    with schema.connect() as con:
        con.execute(sa.insert(Song), [{"song_id": 3, "title": "Pending"}])
        for query in (broken, "nope"):
            with pytest.raises(FrameError, match="division by zero|nope"):
                frames.read_frame(query, con)
        assert len(frames.read_frame("songs", con)) == 3  # the transaction goes on
        con.commit()
    assert count(schema, "songs") == 3


def test_no_server_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUnavailableError, match=r"cannot connect to postgresql://ann:\*\*\*@127.0.0.1:1/music"):
        frames.read_frame("songs", "postgresql://ann:secret@127.0.0.1:1/music")


def test_bad_chunksize(schema: Engine) -> None:
    with pytest.raises(FrameError, match="chunksize=0"):
        frames.read_frame("songs", schema, chunksize=0)


# -- writing ----------------------------------------------------------------------


def test_round_trip_synthetic(schema: Engine) -> None:
    data = synthetic(2000, 20, seed=7)
    with schema.begin() as con:
        con.exec_driver_sql("DELETE FROM playlists; DELETE FROM songs")
    for table in ("songs", "playlists", "playlist_song_association"):
        assert frames.write_frame(data[table], table, schema) == len(data[table])
        back = frames.read_frame(f"SELECT * FROM {table} ORDER BY 1, 2", schema)
        assert canonical(back) == canonical(data[table]), table


def test_round_trip_sample(schema: Engine) -> None:
    data = sample.read_sample()
    with schema.begin() as con:
        con.exec_driver_sql("DELETE FROM playlists; DELETE FROM songs")
    for table in ("songs", "playlists", "playlist_song_association"):
        frames.write_frame(data[table], table, schema)
        back = frames.read_frame(f"SELECT * FROM {table} ORDER BY 1, 2", schema)
        columns = list(data[table].columns)
        expected = data[table].sort_values(columns[:2], ignore_index=True)
        assert canonical(back[columns]) == canonical(expected), table


def test_write_traps(engine: Engine) -> None:
    with engine.begin() as con:
        con.exec_driver_sql(
            "CREATE TABLE t (i int NOT NULL, s text, b boolean, d date, ts timestamptz, p numeric(6, 2))"
        )
    df = pd.DataFrame({
        "i": [1.0, 2.0],  # integral floats into integer
        "s": ["", None],  # empty string stays empty, None is NULL
        "b": pd.array([True, None], dtype="boolean"),
        "d": [datetime.date(2024, 1, 31), None],
        "ts": pd.to_datetime(["2024-06-01 12:00", None]).tz_localize("Europe/Paris"),
        "p": [0.1 + 0.2, None],  # rounds to the scale, as PostgreSQL does
    })
    assert frames.write_frame(df, "t", engine) == 2
    back = frames.read_frame("SELECT * FROM t ORDER BY i", engine)
    assert canonical(back) == [
        (1, "", True, datetime.date(2024, 1, 31), pd.Timestamp("2024-06-01 10:00", tz="UTC"), decimal.Decimal("0.30")),
        (2, None, None, None, None, None),
    ]


def test_empty_frame_writes_nothing(schema: Engine) -> None:
    empty = frames.read_frame(sa.select(Song).where(Song.song_id < 0), schema)
    assert frames.write_frame(empty, "songs", schema) == 0
    assert count(schema, "songs") == 2


def test_write_joins_the_callers_transaction(schema: Engine) -> None:
    new = pd.DataFrame({"song_id": [10], "title": ["Joined"]})
    with schema.connect() as con:
        con.execute(sa.text("DELETE FROM songs WHERE song_id = 2"))
        frames.write_frame(new, "songs", con)
        with pytest.raises(FrameError, match="already exists"):
            frames.write_frame(new, "songs", con)  # rolled back to its savepoint only
        assert len(frames.read_frame("songs", con)) == 2
        con.rollback()
    assert sorted(frames.read_frame("songs", schema).song_id) == [1, 2]
    with schema.connect() as con:
        frames.write_frame(new, Song, con)  # no transaction yet: it begins one, as SQLAlchemy's autobegin would
        assert con.in_transaction()
        con.commit()  # the caller's to commit
    assert count(schema, "songs") == 3


def test_if_exists(schema: Engine) -> None:
    new = pd.DataFrame({"playlist_id": [5], "title": ["Fresh"]})
    with pytest.raises(FrameError, match="already has rows"):
        frames.write_frame(new, "playlists", schema, if_exists="fail")
    frames.write_frame(new, "playlists", schema, if_exists="replace")
    assert frames.read_frame("playlists", schema).title.tolist() == ["Fresh"]
    with pytest.raises(FrameError, match="if_exists='merge'"):
        frames.write_frame(new, "playlists", schema, if_exists="merge")  # type: ignore[arg-type]


@pytest.mark.parametrize(("df", "table", "message"), [
    (pd.DataFrame({"title": ["x"]}), "nope", "table nope does not exist"),
    (pd.DataFrame({"title": ["x"]}), 'songs"; DROP TABLE songs; --', "is not a plain identifier"),
    (pd.DataFrame({"song_id": [9]}), "songs", "column 'title' is required"),
    (pd.DataFrame({"song_id": [9], "title": ["x"], "rating": [5]}), "songs", "columns \\[.rating.\\] are not in"),
    (pd.DataFrame({"song_id": ["9"], "title": ["x"]}), "songs", "column 'song_id' is str but int4 needs int32"),
    (pd.DataFrame({"song_id": [9], "title": [42]}), "songs", "column 'title' is int64 but varchar needs string"),
    (pd.DataFrame({"song_id": [2**31], "title": ["x"]}), "songs", "column 'song_id' has values that do not fit int4"),
    (pd.DataFrame({"song_id": [9.5], "title": ["x"]}), "songs", "do not fit int4.*truncated"),
    (pd.DataFrame({"song_id": [9], "title": [None]}), "songs", "column 'title' has 1 NULL"),
    (pd.DataFrame({"song_id": [9], "title": ["x" * 201]}), "songs", "201 characters, more than varchar.200."),
    (pd.DataFrame({"song_id": [9], "title": ["x"], "unit_price": [decimal.Decimal("123456789.99")]}), "songs",
     "'unit_price' has values that do not fit numeric"),
    (pd.DataFrame({"song_id": [9], "title": ["x"], "duration_ms": [1], "size_bytes": ["big"]}), "songs",
     "'size_bytes' is str"),
    (pd.DataFrame({"playlist_id": [9], "title": ["x"], "created_at": [pd.Timestamp("2024-01-01")]}), "playlists",
     r"tz_localize\('UTC'\)"),
    (pd.DataFrame({"song_id": [1], "title": ["x"]}), "songs",
     "duplicate key value .*Key \\(song_id\\)=\\(1\\) already exists.*nothing was written"),
])
def test_bad_frames_raise_and_write_nothing(schema: Engine, df: pd.DataFrame, table: str, message: str) -> None:
    before = {t: count(schema, t) for t in ("songs", "playlists")}
    with pytest.raises(FrameError, match=message) as caught:
        frames.write_frame(df, table, schema)
    assert "\n" not in str(caught.value)
    assert {t: count(schema, t) for t in ("songs", "playlists")} == before


def test_every_problem_in_one_line(schema: Engine) -> None:
    df = pd.DataFrame({"song_id": [2**40], "extra": [1], "duration_ms": ["long"]})
    with pytest.raises(FrameError) as caught:
        frames.write_frame(df, "songs", schema)
    message = str(caught.value)
    for part in ("['extra'] are not in songs", "'title' is required", "'song_id' has values", "'duration_ms' is str"):
        assert part in message
    assert count(schema, "songs") == 2


def test_a_late_failure_writes_nothing(schema: Engine) -> None:
    # Passes every check, then a row in the middle breaks the primary key:
    # the COPY is one transaction, so the rows before it vanish too.
    df = pd.DataFrame({"song_id": list(range(100, 5100)) + [1], "title": "x"})
    with pytest.raises(FrameError, match="nothing was written"):
        frames.write_frame(df, "songs", schema)
    assert count(schema, "songs") == 2
