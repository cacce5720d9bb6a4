"""migrations.affected_queries: which saved queries a migration breaks, repairs or changes (issue 13, part 2).

Real PostgreSQL throughout: the queries are described on throwaway replays of the history, and the
test's own database must come out exactly as it went in.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, migrations, models, queries, sample
from playlist_tools.errors import FrameError, RevisionError, SettingError
from playlist_tools.migrations import AFFECTED_COLUMNS

# The package's own saved queries: no public name lists them apart from affected_queries' report itself.
from playlist_tools.migrations._affected import package_queries

from helpers import add_revision, scratch_config, scratch_history, snapshot

OLD_NAME = "SELECT song_id, media_type FROM songs WHERE genre = :genre"
NEW_NAME = "SELECT song_id, file_format FROM songs WHERE genre = :genre"


def by_name(report: pd.DataFrame) -> dict[str, dict[str, object]]:
    return report.set_index("name").to_dict("index")


@pytest.fixture
def at_0003(alembic_config: Config) -> Config:
    migrations.upgrade(alembic_config, "0003")
    return alembic_config


def test_0004s_rename_breaks_the_old_name_and_repairs_the_new(at_0003: Config) -> None:
    report = migrations.affected_queries(at_0003, "0004", {
        "old_name": OLD_NAME, "new_name": NEW_NAME, "every_column": "SELECT * FROM songs;", "broken": "SELECT x FROM y",
    })
    assert list(report.columns) == list(AFFECTED_COLUMNS)
    assert report["name"].tolist() == ["broken", "every_column", "new_name", "old_name"]
    rows = by_name(report)
    assert rows["old_name"]["status"] == "breaks"
    assert rows["old_name"]["reason"] == 'column "media_type" does not exist'
    assert rows["old_name"]["before"] == "song_id Int32, media_type string"
    assert pd.isna(rows["old_name"]["after"])
    assert rows["new_name"]["status"] == "repaired"
    assert rows["new_name"]["reason"] == 'column "file_format" does not exist'  # why it failed before
    assert rows["new_name"]["after"] == "song_id Int32, file_format string"
    assert rows["every_column"]["status"] == "changes"
    assert rows["every_column"]["changes"] == "media_type -> file_format (string)"
    assert rows["broken"]["status"] == "fails"  # not this migration's doing: it fails on both sides
    assert rows["broken"]["reason"] == 'relation "y" does not exist'


def test_a_retyped_column_is_a_dtype_change(tmp_path: Path, database_url: URL) -> None:
    ini = scratch_history(tmp_path, failing=None)
    add_revision(ini, "widen_duration", "Widened duration_ms",
                 'op.alter_column("songs", "duration_ms", type_=sa.BigInteger())')
    cfg = scratch_config(ini, database_url)
    migrations.upgrade(cfg, "0005")
    report = by_name(migrations.affected_queries(cfg, "0006", {
        "durations": "SELECT song_id, duration_ms FROM songs",
        "titles": "SELECT title FROM songs WHERE genre = :genre",
        # Nothing says what type :label or :flag is: they are described as text NULLs.
        "untyped": "SELECT :label AS label, duration_ms FROM songs WHERE :flag IS NULL",
    }))
    assert report["durations"]["status"] == "changes"
    assert report["durations"]["changes"] == "duration_ms: Int32 -> Int64"
    assert (report["durations"]["before"], report["durations"]["after"]) == (
        "song_id Int32, duration_ms Int32", "song_id Int32, duration_ms Int64")
    assert report["titles"]["status"] == "ok" and pd.isna(report["titles"]["changes"])
    assert report["untyped"]["status"] == "changes"
    assert report["untyped"]["after"] == "label string, duration_ms Int64"


def test_the_packages_queries_all_run_at_head_with_the_dtypes_they_return(alembic_config: Config,
                                                                           engine: Engine) -> None:
    migrations.upgrade(alembic_config, "head")
    report = migrations.affected_queries(alembic_config)
    assert report["name"].tolist() == sorted(package_queries()) == [
        "playlist_songs", "playlist_summary", "song_playlists"]
    assert set(report["status"]) == {"ok"}
    sample.load_sample(engine, progress=False)
    songs = queries.playlist_songs("Grunge", engine)
    on = queries.song_playlists(int(songs["song_id"][0]), engine)
    rows = by_name(report)
    for name, frame in (("playlist_songs", songs), ("song_playlists", on)):
        assert rows[name]["after"] == ", ".join(f"{c} {t}" for c, t in frame.dtypes.astype(str).items())


def test_the_packages_queries_against_an_older_schema(at_0003: Config) -> None:
    report = by_name(migrations.affected_queries(at_0003, "0001"))
    # Written for head: file_format is media_type before 0004, on both sides.
    assert report["playlist_songs"]["status"] == "fails"
    # 0003 added position, which a downgrade to 0001 takes away.
    assert (report["song_playlists"]["status"], report["song_playlists"]["reason"]) == (
        "breaks", "column a.position does not exist")
    assert report["playlist_summary"]["status"] == "ok"


def test_a_folder_of_sql_files(at_0003: Config, tmp_path: Path) -> None:
    (tmp_path / "old_name.sql").write_text(OLD_NAME + ";\n")
    (tmp_path / "titles.sql").write_text("-- the titles\nSELECT title FROM songs ORDER BY title\n")
    (tmp_path / "notes.txt").write_text("DROP TABLE songs")
    (tmp_path / "sub.sql").mkdir()
    report = migrations.affected_queries(at_0003, "0004", tmp_path)
    assert report[["name", "status"]].values.tolist() == [["old_name", "breaks"], ["titles", "ok"]]
    assert by_name(migrations.affected_queries(at_0003, "0004", str(tmp_path)))["titles"]["status"] == "ok"


def test_a_select_object_and_a_text_clause(at_0003: Config) -> None:
    report = by_name(migrations.affected_queries(at_0003, "head", {
        "rock": sa.select(models.Song.song_id, models.Song.genre).where(models.Song.genre == "Rock"),
        "text": sa.text("SELECT song_id FROM songs WHERE song_id = :id"),
        "quoted": "SELECT song_id FROM songs WHERE title <> ':no' AND song_id = :id -- :nor",
    }))
    assert report["rock"]["status"] == "ok" and report["rock"]["after"] == "song_id Int32, genre string"
    assert report["text"]["status"] == "ok" and report["text"]["after"] == "song_id Int32"
    assert report["quoted"]["status"] == "ok"  # ':no' and the comment hold no placeholder


@pytest.mark.parametrize(("queries_arg", "error", "words"), [
    ("missing", SettingError, ["is not a folder", "missing"]),
    ("file.sql", SettingError, ["is not a folder", "file.sql"]),
    ("empty", SettingError, ["has no .sql files", "empty"]),
    ({}, SettingError, ["names no query"]),
    (["SELECT 1"], SettingError, ["is a list"]),
    ({"cleanup": "DELETE FROM songs"}, FrameError, ["'cleanup'", "starts with 'DELETE'"]),
    ({"sneaky": "WITH gone AS (DELETE FROM songs RETURNING *) SELECT * FROM gone"}, FrameError,
     ["'sneaky'", "writes (DELETE)"]),
    ({"copy": "SELECT * INTO songs_copy FROM songs"}, FrameError, ["'copy'", "writes (INTO)"]),
    ({"two": "SELECT 1; DROP TABLE songs"}, FrameError, ["'two'", "more than one statement"]),
    ({"blank": "  -- nothing\n"}, FrameError, ["'blank'", "is empty"]),
    ({"n": 42}, SettingError, ["'n'", "is a int"]),
])
def test_bad_queries_are_one_line_naming_them(at_0003: Config, tmp_path: Path, engine: Engine,
                                              queries_arg: object, error: type, words: list[str]) -> None:
    (tmp_path / "file.sql").write_text("SELECT 1")
    (tmp_path / "empty").mkdir()
    if isinstance(queries_arg, str):
        queries_arg = tmp_path / queries_arg
    before = snapshot(engine)
    with pytest.raises(error) as caught:
        migrations.affected_queries(at_0003, "head", queries_arg)
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words), message
    assert snapshot(engine) == before


def test_an_unknown_target_revision(at_0003: Config) -> None:
    with pytest.raises(RevisionError, match=r"unknown revision '9999'"):
        migrations.affected_queries(at_0003, "9999", {"titles": "SELECT title FROM songs"})


def test_the_users_database_is_untouched(at_0003: Config, engine: Engine, server_url: URL) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO songs (song_id, title, media_type) VALUES (1, 'Kept', 'MPEG')"))
    before, copies = snapshot(engine), affected_copies(server_url)
    report = migrations.affected_queries(at_0003, "head", {
        "locks": "SELECT * FROM songs FOR UPDATE",
        "bump": "SELECT setval('songs_song_id_seq', 1000) AS s",
        "slow": "SELECT pg_sleep(30) AS z FROM songs",
    })
    assert set(report["status"]) <= {"ok", "changes"}
    assert snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT last_value FROM songs_song_id_seq")).scalar_one() == 1
    assert affected_copies(server_url) == copies  # every throwaway copy is gone again


def affected_copies(server_url: URL) -> list[str]:
    with db.connection(server_url) as conn:
        return conn.execute(sa.text(
            "SELECT datname FROM pg_database WHERE datname LIKE 'playlist_tools_affected%' ORDER BY 1")).scalars().all()
