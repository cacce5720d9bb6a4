"""frames, sample, schema and queries through psycopg2 as through psycopg 3: one behaviour, any driver.

Each test runs over an Engine and a caller's Connection of both drivers
(``how``): the engine's driver picks nothing but the describe step (rows
come through ADBC either way); a Connection's driver carries the rows.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, frames, queries, sample, schema
from playlist_tools.errors import FrameError
from playlist_tools.models import Base

from helpers import assert_faithful_songs, fill_two_songs

DRIVERS = ["postgresql+psycopg", "postgresql+psycopg2"]
HOW = [(driver, kind) for driver in DRIVERS for kind in ("engine", "connection")]


@pytest.fixture(params=DRIVERS)
def drivername(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def any_engine(database_url: URL, drivername: str) -> Iterator[Engine]:
    engine = sa.create_engine(database_url.set(drivername=drivername))
    yield engine
    engine.dispose()


@pytest.fixture
def filled(any_engine: Engine) -> Engine:
    """The models' tables with two songs and a playlist; NULL in every nullable column."""
    return fill_two_songs(any_engine)


def read(query: str, engine: Engine, kind: str) -> pd.DataFrame:
    if kind == "engine":
        return frames.read_frame(query, engine)
    with engine.connect() as con:
        return frames.read_frame(query, con)


@pytest.mark.parametrize("kind", ["engine", "connection"])
def test_dtypes_are_faithful(filled: Engine, kind: str) -> None:
    songs = read("SELECT * FROM songs ORDER BY song_id", filled, kind)
    assert_faithful_songs(songs)
    assert str(read("playlists", filled, kind).created_at.dtype) == "datetime64[us, UTC]"


@pytest.mark.parametrize("kind", ["engine", "connection"])
def test_dates_timestamps_and_numerics(any_engine: Engine, kind: str) -> None:
    query = ("SELECT DATE '2024-02-29' AS d, TIMESTAMPTZ '1900-01-01 12:00:00.000001+05' AS ts,"
             " TIMESTAMP '0001-01-01 00:00' AS t, 3.14159265358979323846::numeric AS n,"
             " '\\x00ff'::bytea AS raw, 1.5::float4 AS f4 UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL")
    with any_engine.connect() as con:
        con.exec_driver_sql("SET TIME ZONE 'America/New_York'; SET DateStyle = 'German'")  # no effect on values
        kinds = frames.read_frame(query, con if kind == "connection" else any_engine)
    assert kinds.dtypes.astype(str).tolist() == [
        "date32[day][pyarrow]", "datetime64[us, UTC]", "datetime64[us]", "object", "binary[pyarrow]", "Float32"]
    assert kinds.iloc[0].tolist() == [
        datetime.date(2024, 2, 29), pd.Timestamp("1900-01-01 07:00:00.000001", tz="UTC"),
        pd.Timestamp("0001-01-01"), decimal.Decimal("3.14159265358979323846"), b"\x00\xff", 1.5]
    assert kinds.iloc[1].isna().all()


@pytest.mark.parametrize("kind", ["engine", "connection"])
@pytest.mark.parametrize("value", ["'infinity'::date", "'-infinity'::timestamptz", "'0044-03-15 BC'::timestamp"])
def test_years_pandas_cannot_hold_are_refused(any_engine: Engine, kind: str, value: str) -> None:
    with pytest.raises(FrameError, match=r"column 'x' has .*(infinity|BC).*which pandas cannot hold"):
        read(f"SELECT {value} AS x", any_engine, kind)


@pytest.mark.parametrize("kind", ["engine", "connection"])
def test_round_trip(filled: Engine, kind: str) -> None:
    before = frames.read_frame("SELECT * FROM songs ORDER BY song_id", filled)
    with filled.begin() as con:
        con.exec_driver_sql("DELETE FROM songs")
    if kind == "engine":
        assert frames.write_frame(before, "songs", filled) == 2
    else:
        with filled.connect() as con:
            assert frames.write_frame(before, "songs", con) == 2
            con.commit()
    pd.testing.assert_frame_equal(read("SELECT * FROM songs ORDER BY song_id", filled, kind), before)
    with filled.begin() as con:  # the sequence moved past the ids written
        assert con.exec_driver_sql("INSERT INTO songs (title) VALUES ('x') RETURNING song_id").scalar_one() == 3


def test_a_refused_write_changes_nothing(filled: Engine) -> None:
    with pytest.raises(FrameError, match=r"writing 2 rows to songs failed: duplicate key .*\(Key \(song_id\)=\(1\)"):
        frames.write_frame(pd.DataFrame({"song_id": [7, 1], "title": ["a", "b"]}), "songs", filled)
    with pytest.raises(FrameError, match="table nope does not exist"):
        frames.write_frame(pd.DataFrame({"a": [1]}), "nope", filled, if_exists="replace")
    with pytest.raises(FrameError, match="table songs already has rows"):
        frames.write_frame(pd.DataFrame({"title": ["c"]}), "songs", filled, if_exists="fail")
    assert sorted(frames.read_frame("songs", filled).song_id) == [1, 2]


def test_a_write_in_the_callers_transaction_rolls_back_with_it(filled: Engine) -> None:
    new = pd.DataFrame({"song_id": [10], "title": ["Joined"]})
    with filled.connect() as con:
        con.execute(sa.text("DELETE FROM songs WHERE song_id = 2"))
        frames.write_frame(new, "songs", con)
        with pytest.raises(FrameError, match="already exists"):
            frames.write_frame(new, "songs", con)  # back to its savepoint only
        assert sorted(frames.read_frame("songs", con).song_id) == [1, 10]
        con.rollback()
    assert sorted(frames.read_frame("songs", filled).song_id) == [1, 2]


@pytest.mark.parametrize("kind", ["engine", "connection"])
def test_search_path_from_connect_args(database_url: URL, drivername: str, kind: str) -> None:
    with db.transaction(database_url) as con:
        con.exec_driver_sql("CREATE SCHEMA music; CREATE TABLE music.tunes (n int); INSERT INTO music.tunes VALUES (4)")
    engine = sa.create_engine(database_url.set(drivername=drivername),
                              connect_args={"options": "-c search_path=music"})
    try:
        assert read("tunes", engine, kind).n.tolist() == [4]
    finally:
        engine.dispose()


def test_sample_schema_and_queries(any_engine: Engine) -> None:
    Base.metadata.create_all(any_engine)
    sample.load_sample(any_engine, progress=False)
    assert {"songs", "playlists"} <= set(schema.tables(any_engine).name)
    summary = queries.playlist_summary(any_engine)
    assert len(summary) == len(sample.read_sample()["playlists"])


def test_an_autocommit_connection_and_chunks_stopped_early(filled: Engine) -> None:
    with filled.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
        assert frames.write_frame(pd.DataFrame({"song_id": [3], "title": ["Auto"]}), "songs", con) == 1
        chunks = frames.read_frame("SELECT generate_series(1, 10) AS n", con, chunksize=3)
        assert next(chunks).n.tolist() == [1, 2, 3]
        chunks.close()
        assert frames.read_frame("songs", con).title.tolist() == ["Balls to the Wall", "Último Día", "Auto"]
    assert frames.read_frame("SELECT count(*) AS n FROM songs", filled).n[0] == 3  # committed


@pytest.mark.parametrize("kind", ["engine", "connection"])
def test_a_second_statement_is_refused(filled: Engine, kind: str) -> None:
    for query in ("SELECT 1) AS a; DROP TABLE songs; SELECT (1", sa.text("SELECT 1; DROP TABLE songs")):
        with pytest.raises(FrameError, match="cannot read query .* more than one statement"):
            read(query, filled, kind)  # type: ignore[arg-type]
    assert len(frames.read_frame("songs", filled)) == 2
