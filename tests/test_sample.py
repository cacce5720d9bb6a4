"""The sample data: the synthetic generator, and the real Chinook playlists."""

from __future__ import annotations

import decimal
import importlib.util
import re
from importlib import resources
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Engine

from playlist_tools import frames, models, sample
from playlist_tools.sample import TABLES, SampleError

from helpers import REPO_ROOT, table_rows

FRAMES = ("songs", "playlists", "playlist_song_association")


# -- synthetic -----------------------------------------------------------------


def test_synthetic_columns_match_the_tables() -> None:
    made = sample.synthetic(200, 7, seed=3)
    assert list(made) == list(FRAMES)
    for name in FRAMES:
        table = models.Base.metadata.tables[name]
        assert made[name].columns.tolist() == [column.name for column in table.columns]


def test_synthetic_is_deterministic_per_seed() -> None:
    first, again = sample.synthetic(500, 9, seed=42), sample.synthetic(500, 9, seed=42)
    for name in FRAMES:
        pd.testing.assert_frame_equal(first[name], again[name])


def test_synthetic_differs_across_seeds() -> None:
    one, two = sample.synthetic(500, 9, seed=1), sample.synthetic(500, 9, seed=2)
    for name in ("songs", "playlist_song_association"):
        assert not one[name].equals(two[name])


def test_synthetic_keys_and_positions_are_consistent() -> None:
    made = sample.synthetic(2_000, 30, seed=0)
    songs, playlists, links = made["songs"], made["playlists"], made["playlist_song_association"]
    assert songs["song_id"].is_unique and playlists["playlist_id"].is_unique
    assert len(links) == 5_000
    assert not links.duplicated(["playlist_id", "song_id"]).any()
    assert links["song_id"].isin(songs["song_id"]).all()
    assert links["playlist_id"].isin(playlists["playlist_id"]).all()
    # Positions are 1..n in song_id order within each playlist (migration 0003's rule).
    ordered = links.sort_values(["playlist_id", "song_id"])
    expected = ordered.groupby("playlist_id").cumcount() + 1
    assert (ordered["position"] == expected).all()


def test_synthetic_dtypes_are_faithful() -> None:
    songs = sample.synthetic(300, 3, seed=0)["songs"]
    assert songs["song_id"].dtype == "Int32"
    assert songs["size_bytes"].dtype == "Int64"
    assert songs["title"].dtype == pd.StringDtype("pyarrow")
    assert songs["unit_price"].dtype == pd.ArrowDtype(pa.decimal128(10, 2))
    assert {type(value) for value in songs["unit_price"].astype(object)} == {decimal.Decimal}
    assert songs["composer"].isna().any() and songs["composer"].notna().any()


def test_synthetic_round_trips_through_the_database(engine: Engine) -> None:
    models.Base.metadata.create_all(engine)
    made = sample.synthetic(2_000, 12, seed=5)
    for name in TABLES:
        frames.write_frame(made[name], name, engine)
    for name in TABLES:
        pd.testing.assert_frame_equal(frames.read_frame(f"SELECT * FROM {name} ORDER BY 1, 2", engine), made[name])


def test_synthetic_caps_links_at_every_pair() -> None:
    links = sample.synthetic(4, 3, n_links=100)["playlist_song_association"]
    assert len(links) == 12


@pytest.mark.parametrize("n_songs, n_playlists", [(0, 5), (5, 0), (0, 0)])
def test_synthetic_handles_empty_sizes(n_songs: int, n_playlists: int) -> None:
    made = sample.synthetic(n_songs, n_playlists)
    assert len(made["songs"]) == n_songs and len(made["playlists"]) == n_playlists
    assert made["playlist_song_association"].empty


def test_synthetic_refuses_negative_sizes() -> None:
    with pytest.raises(ValueError, match="n_songs=-1"):
        sample.synthetic(-1, 2)


# -- the shipped sample ----------------------------------------------------------

DATA = REPO_ROOT / "playlist_tools" / "data"
CHINOOK = REPO_ROOT.parent / "shared" / "data" / "chinook"


def _converter():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("convert_chinook", REPO_ROOT / "tools" / "convert_chinook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (CHINOOK / "Chinook_Sqlite.sqlite").exists(), reason=f"the Chinook source is not at {CHINOOK}")
def test_conversion_is_reproducible(tmp_path: Path) -> None:
    counts = _converter().convert(CHINOOK, tmp_path)
    assert counts == {"songs": 3503, "playlists": 18, "playlist_song_association": 8715}
    shipped = sorted(path.name for path in DATA.iterdir() if path.is_file())
    assert sorted(path.name for path in tmp_path.iterdir()) == shipped
    recorded = re.search(r"with pyarrow (\S+)\.", (DATA / "PROVENANCE.md").read_text(encoding="utf-8"))
    assert recorded is not None
    if recorded[1] == pa.__version__:
        for name in shipped:
            assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
    else:  # another pyarrow writes another "created_by": compare contents instead
        for name in shipped:
            if name.endswith(".parquet"):
                assert pq.read_table(tmp_path / name).equals(pq.read_table(DATA / name)), name


@pytest.mark.skipif(not (CHINOOK / "SHA256SUMS").exists(), reason=f"the Chinook source is not at {CHINOOK}")
def test_provenance_names_the_source_checksums() -> None:
    provenance = (DATA / "PROVENANCE.md").read_text(encoding="utf-8")
    sums = dict(line.split()[::-1] for line in (CHINOOK / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert sums["Chinook_Sqlite.sqlite"] in provenance
    assert sums["LICENSE.md"] in provenance
    assert (DATA / "LICENSE.md").read_bytes() == (CHINOOK / "LICENSE.md").read_bytes()


def test_the_licence_travels_with_the_data() -> None:
    shipped = resources.files("playlist_tools") / "data"
    licence = (shipped / "LICENSE.md").read_text(encoding="utf-8")
    assert "Copyright (c) 2008-2024 Luis Rocha" in licence and "Permission is hereby granted" in licence
    assert "Chinook" in (shipped / "PROVENANCE.md").read_text(encoding="utf-8")


def test_read_sample_keeps_the_quirks() -> None:
    made = sample.read_sample()
    songs, playlists, links = made["songs"], made["playlists"], made["playlist_song_association"]
    assert (len(songs), len(playlists), len(links)) == (3503, 18, 8715)
    assert playlists["title"].value_counts()[["Music", "Movies", "TV Shows", "Audiobooks"]].tolist() == [2, 2, 2, 2]
    assert (~playlists["playlist_id"].isin(links["playlist_id"])).sum() == 4
    assert "90’s Music" in set(playlists["title"])
    assert songs["composer"].isna().sum() == 977
    assert (songs["file_format"] == "Protected MPEG-4 video file").sum() == 214
    assert songs["unit_price"].astype(str).value_counts().to_dict() == {"0.99": 3290, "1.99": 213}
    assert playlists["description"].isna().all()
    assert "created_at" not in playlists


# -- loading ---------------------------------------------------------------------


@pytest.fixture
def schema(alembic_config: Config, engine: Engine) -> Engine:
    """This test's database, upgraded to head by the real migrations."""
    command.upgrade(alembic_config, "head")
    return engine


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {name: connection.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one() for name in TABLES}


def test_load_sample_counts(schema: Engine) -> None:
    loaded = sample.load_sample(schema, progress=False)
    assert loaded.to_dict("index") == {
        "playlists": {"sample": 18, "inserted": 18, "total": 18},
        "songs": {"sample": 3503, "inserted": 3503, "total": 3503},
        "playlist_song_association": {"sample": 8715, "inserted": 8715, "total": 8715},
    }
    with schema.connect() as connection:
        def scalar(sql: str) -> object:
            return connection.execute(sa.text(sql)).scalar_one()

        assert scalar("SELECT count(*) FROM playlists p WHERE NOT EXISTS "
                      "(SELECT 1 FROM playlist_song_association a WHERE a.playlist_id = p.playlist_id)") == 4
        assert scalar("SELECT count(*) FROM playlists WHERE title = 'Music'") == 2
        assert scalar("SELECT title FROM playlists WHERE playlist_id = 5") == "90’s Music"
        assert scalar("SELECT composer IS NULL FROM songs WHERE song_id = 63") is True
        assert scalar("SELECT count(*) FROM playlists WHERE created_at IS NULL") == 0
        assert scalar("SELECT unit_price FROM songs WHERE song_id = 2819") == decimal.Decimal("1.99")
        # Positions: 1..n in song order within each playlist.
        assert scalar("SELECT count(*) FROM (SELECT position, row_number() OVER "
                      "(PARTITION BY playlist_id ORDER BY song_id) AS n FROM playlist_song_association) t "
                      "WHERE position <> n") == 0


def test_loaded_rows_read_back_as_the_shipped_frames(schema: Engine) -> None:
    sample.load_sample(schema, progress=False)
    shipped = sample.read_sample()
    for name in TABLES:
        loaded = frames.read_frame(f"SELECT * FROM {name} ORDER BY 1, 2", schema)
        pd.testing.assert_frame_equal(loaded[shipped[name].columns], shipped[name])


def test_load_sample_twice_changes_nothing(schema: Engine) -> None:
    sample.load_sample(schema, progress=False)
    before = {name: table_rows(schema, name) for name in TABLES}
    again = sample.load_sample(schema, progress=False)
    assert again["inserted"].tolist() == [0, 0, 0]
    assert {name: table_rows(schema, name) for name in TABLES} == before


def test_the_comparison_sends_a_few_parameters_however_many_rows(schema: Engine) -> None:
    # The second load compares all 12236 rows with the database. As an IN list that was one
    # parameter per key column per row (17430 for the entries), which PostgreSQL 15 cannot plan.
    sample.load_sample(schema, progress=False)
    sent: list[tuple[str, int]] = []

    @sa.event.listens_for(schema, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        sent.append((statement, len(parameters or ())))

    try:
        assert sample.load_sample(schema, progress=False)["inserted"].tolist() == [0, 0, 0]
    finally:
        sa.event.remove(schema, "before_cursor_execute", count)
    # Reads of the sample's tables (not the catalogue queries that check the schema first).
    reads = [n for statement, n in sent if statement.lstrip().startswith("SELECT")
             and any(f"FROM {name} " in statement for name in TABLES)]
    assert reads and max(reads) <= 10  # a few per statement, not one per row


def test_a_server_error_is_one_line_without_parameters(schema: Engine) -> None:
    # An analyst's own constraint that the sample breaks: the server refuses the INSERT.
    with schema.begin() as connection:
        connection.execute(sa.text(
            "ALTER TABLE songs ADD CONSTRAINT songs_under_ten_minutes CHECK (duration_ms < 600000)"
        ))
    with pytest.raises(SampleError) as caught:
        sample.load_sample(schema, progress=False)
    message = str(caught.value)
    assert message.startswith('loading the sample into songs failed: new row for relation "songs" '
                              'violates check constraint "songs_under_ten_minutes"; nothing was loaded')
    assert "\n" not in message and "INSERT" not in message and "parameters" not in message
    assert _counts(schema) == {"playlists": 0, "songs": 0, "playlist_song_association": 0}


def test_load_sample_advances_the_sequences(schema: Engine) -> None:
    sample.load_sample(schema, progress=False)
    with schema.begin() as connection:
        song_id = connection.execute(sa.text("INSERT INTO songs (title) VALUES ('New') RETURNING song_id")).scalar_one()
        playlist_id = connection.execute(
            sa.text("INSERT INTO playlists (title) VALUES ('New') RETURNING playlist_id")
        ).scalar_one()
        position = connection.execute(
            sa.text("INSERT INTO playlist_song_association (playlist_id, song_id) VALUES (1, :s) RETURNING position"),
            {"s": song_id},
        ).scalar_one()
    assert (song_id, playlist_id) == (3504, 19)
    assert position > 3290  # after every loaded position: the new entry goes last


def test_load_sample_fills_in_what_is_missing(schema: Engine) -> None:
    sample.load_sample(schema, progress=False)
    with schema.begin() as connection:
        connection.execute(sa.text("DELETE FROM playlists WHERE playlist_id = 17"))
    loaded = sample.load_sample(schema, progress=False)
    assert loaded["inserted"].tolist() == [1, 0, 26]
    assert _counts(schema) == {"playlists": 18, "songs": 3503, "playlist_song_association": 8715}


def test_a_conflicting_row_loads_nothing(schema: Engine) -> None:
    with schema.begin() as connection:
        connection.execute(sa.text("INSERT INTO songs (song_id, title) VALUES (3000, 'Not in Chinook')"))
    with pytest.raises(SampleError, match=r"songs row song_id=3000 already exists with title='Not in Chinook'"):
        sample.load_sample(schema, progress=False)
    assert _counts(schema) == {"playlists": 0, "songs": 1, "playlist_song_association": 0}


def test_a_failure_in_the_last_table_rolls_back_the_first_ones(schema: Engine) -> None:
    # Song 1 and playlist 1 exactly as in the sample, but the entry at another position:
    # the load fails after playlists and songs went in, and must take them back out.
    songs = sample.read_sample()["songs"]
    first = {k: (None if v is pd.NA else v) for k, v in songs.iloc[0].astype(object).items()}
    with schema.begin() as connection:
        connection.execute(sa.insert(models.Song.__table__), first)
        connection.execute(sa.text("INSERT INTO playlists (playlist_id, title) VALUES (1, 'Music')"))
        connection.execute(sa.text("INSERT INTO playlist_song_association VALUES (1, 1, 99)"))
    before = {name: table_rows(schema, name) for name in TABLES}
    with pytest.raises(SampleError, match="position=99, but the sample has 1"):
        sample.load_sample(schema, progress=False)
    assert {name: table_rows(schema, name) for name in TABLES} == before


def test_a_schema_behind_head_is_refused(alembic_config: Config, engine: Engine) -> None:
    command.upgrade(alembic_config, "0003")  # file_format is still called media_type
    with pytest.raises(SampleError, match="table 'songs' has no column 'file_format'; upgrade"):
        sample.load_sample(engine, progress=False)


def test_no_schema_is_refused(engine: Engine) -> None:
    with pytest.raises(SampleError, match="table 'playlists' does not exist; create the schema first"):
        sample.load_sample(engine, progress=False)


def test_inside_a_transaction_the_caller_decides(schema: Engine) -> None:
    with schema.connect() as connection:
        connection.begin()
        sample.load_sample(connection, progress=False)
        assert connection.execute(sa.text("SELECT count(*) FROM songs")).scalar_one() == 3503
        connection.rollback()
    assert _counts(schema)["songs"] == 0


def test_load_sample_from_a_url_disposes_of_its_engine(schema: Engine, database_url) -> None:  # type: ignore[no-untyped-def]
    sample.load_sample(database_url, progress=False)
    assert _counts(schema)["songs"] == 3503
    with schema.connect() as connection:
        others = connection.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).scalar_one()
    assert others == 0


def test_progress_bar_goes_to_stderr(schema: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    sample.load_sample(schema, progress=True)
    captured = capsys.readouterr()
    assert "loading sample" in captured.err and "12236/12236" in captured.err
    sample.load_sample(schema, progress=False)
    assert capsys.readouterr().err == ""


def test_a_connection_outside_a_transaction_is_committed_and_left_open(schema: Engine) -> None:
    with schema.connect() as connection:
        sample.load_sample(connection, progress=False)
        assert not connection.closed and not connection.in_transaction()
    assert _counts(schema)["songs"] == 3503


def test_a_role_that_may_not_create_temporary_tables_gets_one_line(schema: Engine, database_url: URL) -> None:
    role, password = "pt_no_temp", "s3cret-Sample"
    with schema.begin() as connection:
        connection.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        connection.exec_driver_sql(f'REVOKE TEMPORARY ON DATABASE "{database_url.database}" FROM PUBLIC')
        connection.exec_driver_sql(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        with pytest.raises(SampleError) as caught:
            sample.load_sample(database_url.set(username=role, password=password), progress=False)
        message = str(caught.value)
        assert "permission denied to create temporary tables" in message and "nothing was loaded" in message
        assert "\n" not in message and password not in message
        assert _counts(schema) == {"playlists": 0, "songs": 0, "playlist_song_association": 0}
    finally:
        with schema.begin() as connection:
            connection.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
            connection.exec_driver_sql(f"DROP ROLE {role}")


def test_a_column_changed_by_hand_is_one_line_naming_it_and_nothing_is_loaded(schema: Engine) -> None:
    with schema.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE songs ALTER COLUMN composer TYPE varchar(3)")
    with pytest.raises(SampleError) as caught:
        sample.load_sample(schema, progress=False)
    message = str(caught.value)
    assert message.startswith("cannot load the sample into songs, whose columns differ from the models' (column ")
    assert "playlist_tools_sample" not in message and "composer" in message and "varchar(3)" in message
    assert "alembic upgrade head" in message
    assert "\n" not in message
    assert _counts(schema) == {"playlists": 0, "songs": 0, "playlist_song_association": 0}
