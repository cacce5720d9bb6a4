"""Nothing half-applied: failing migrations, and up/down/up round trips with data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy.engine import URL, Engine

from playlist_tools import frames, sample
from playlist_tools.errors import MigrationError

from helpers import run_cli, scratch_config, scratch_history, snapshot, url_text


def seed(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO songs (song_id, title, artist, file_format) VALUES "
            "(1, 'Balls to the Wall', 'Accept', 'MPEG audio file'), (2, 'Garota de Ipanema', NULL, NULL)"
        ))
        connection.execute(sa.text(
            "INSERT INTO playlists (playlist_id, title, description) VALUES "
            "(1, '90’s Music', 'nostalgia'), (2, 'Music', NULL)"
        ))
        connection.execute(sa.text(
            "INSERT INTO playlist_song_association (playlist_id, song_id) VALUES (1, 2), (1, 1), (2, 1)"
        ))


# -- a migration that fails halfway ------------------------------------------------


def test_failing_migration_leaves_schema_and_data_as_they_were(
    tmp_path: Path, database_url: URL, engine: Engine
) -> None:
    config = scratch_config(scratch_history(tmp_path), database_url)
    command.upgrade(config, "0005")
    seed(engine)
    before = snapshot(engine)
    config.attributes["allow_data_loss"] = True  # its UPDATE and DELETE would destroy data: consent, to see it fail
    with pytest.raises(CommandError) as caught:
        command.upgrade(config, "head")
    assert isinstance(caught.value.__cause__, MigrationError)
    message = str(caught.value)
    assert "division by zero" in message and "stays at 0005" in message and "\n" not in message
    assert snapshot(engine) == before


def test_failing_revision_rolls_back_alone(tmp_path: Path, database_url: URL, engine: Engine) -> None:
    """One transaction per migration: revisions before the failing one stay applied."""
    config = scratch_config(scratch_history(tmp_path), database_url)
    command.upgrade(config, "0004")
    seed_at_0004 = "INSERT INTO songs (song_id, title, file_format) VALUES (7, 'x', 'AAC audio file')"
    with engine.begin() as connection:
        connection.execute(sa.text(seed_at_0004))
    with pytest.raises(CommandError, match="stays at 0005"):
        command.upgrade(config, "head")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0005"
    assert "ix_songs_genre" in {ix["name"] for ix in sa.inspect(engine).get_indexes("songs")}
    assert "rating" not in {c["name"] for c in sa.inspect(engine).get_columns("playlists")}
    assert not sa.inspect(engine).has_table("half_done")


def test_failing_migration_in_callers_transaction_undoes_everything(
    tmp_path: Path, database_url: URL, engine: Engine
) -> None:
    """A caller's transaction spans the whole run: its ROLLBACK leaves the database untouched."""
    config = scratch_config(scratch_history(tmp_path), database_url)
    command.upgrade(config, "0004")
    before = snapshot(engine)
    with engine.connect() as connection:
        transaction = connection.begin()
        config.attributes["connection"] = connection
        with pytest.raises(CommandError, match="division by zero; roll back your transaction"):
            command.upgrade(config, "head")
        transaction.rollback()
    assert snapshot(engine) == before


def test_failing_migration_via_cli_is_one_line(tmp_path: Path, database_url: URL, engine: Engine) -> None:
    ini = scratch_history(tmp_path)
    env = {"DATABASE_URL": url_text(database_url)}
    assert run_cli("alembic", "-c", str(ini), "upgrade", "0005", env=env).returncode == 0
    seed(engine)
    before = snapshot(engine)
    result = run_cli("alembic", "-c", str(ini), "-x", "allow_data_loss=true", "upgrade", "head", env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    last = [line for line in result.stdout.splitlines() if line.strip()][-1]
    assert last.startswith(
        "FAILED: the migration failed and was rolled back (the database stays at 0005): division by zero"
    )
    assert snapshot(engine) == before


# -- up, down, up with data ------------------------------------------------------


CANONICAL = {"media_type": "file_format"}  # 0004 renames it; the values are the same
LOSSY = {"0002": ("playlists", "description"), "0003": ("playlist_song_association", "position")}


def rows_by_key(engine: Engine) -> dict[str, dict[tuple[int, ...], dict[str, object]]]:
    """Each table's rows keyed by primary key, columns under their head-revision names."""
    keys = {"songs": ["song_id"], "playlists": ["playlist_id"], "playlist_song_association": ["playlist_id", "song_id"]}
    found: dict[str, dict[tuple[int, ...], dict[str, object]]] = {}
    with engine.connect() as connection:
        for table, key in keys.items():
            rows = connection.execute(sa.text(f'SELECT * FROM "{table}"')).mappings()
            found[table] = {
                tuple(row[k] for k in key): {CANONICAL.get(c, c): v for c, v in row.items()} for row in rows
            }
    return found


def assert_kept(now: dict, reference: dict, dropped: set[tuple[str, str]]) -> None:
    for table, rows in reference.items():
        assert now[table].keys() == rows.keys(), f"{table}: rows lost or added"
        for key, row in rows.items():
            kept = {c: v for c, v in row.items() if c in now[table][key] and (table, c) not in dropped}
            assert {c: now[table][key][c] for c in kept} == kept, f"{table} {key} changed"


def test_every_revision_down_and_up_keeps_the_sample(alembic_config: Config, engine: Engine) -> None:
    command.upgrade(alembic_config, "head")
    sample.load_sample(engine, progress=False)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE playlists SET description = 'about ' || title WHERE playlist_id % 2 = 0"))
    reference = rows_by_key(engine)
    assert all(reference.values()), "the sample loaded nothing"

    dropped: set[tuple[str, str]] = set()
    alembic_config.attributes["allow_data_loss"] = True  # the lossy downgrades drop data on purpose here
    for revision, parent in [("0005", "0004"), ("0004", "0003"), ("0003", "0002"), ("0002", "0001")]:
        command.downgrade(alembic_config, parent)
        dropped |= {LOSSY[revision]} if revision in LOSSY else set()
        assert_kept(rows_by_key(engine), reference, dropped)
    for revision in ["0002", "0003", "0004", "0005"]:
        command.upgrade(alembic_config, revision)
        assert_kept(rows_by_key(engine), reference, dropped)

    # What the lossy downgrades dropped by design comes back as the upgrades define it.
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(description) FROM playlists")).scalar_one() == 0
        renumbered = connection.execute(sa.text(
            "SELECT count(*) FROM playlist_song_association AS e JOIN ("
            " SELECT playlist_id, song_id, row_number() OVER (PARTITION BY playlist_id ORDER BY song_id) AS n"
            " FROM playlist_song_association) AS o USING (playlist_id, song_id) WHERE e.position <> o.n"
        )).scalar_one()
    assert renumbered == 0, "0003 must number entries in song order on the way up"


# -- loads that fail leave nothing ------------------------------------------------------


def test_failed_sample_load_leaves_nothing(alembic_config: Config, engine: Engine) -> None:
    command.upgrade(alembic_config, "head")
    with engine.begin() as connection:
        # A song id the sample uses, with other values: the load must refuse as a whole.
        connection.execute(sa.text("INSERT INTO songs (song_id, title) VALUES (3503, 'not the sample''s song')"))
    before = snapshot(engine)
    with pytest.raises(sample.SampleError, match="3503"):
        sample.load_sample(engine, progress=False)
    assert snapshot(engine) == before


def test_failed_frame_write_leaves_nothing(alembic_config: Config, engine: Engine) -> None:
    """A constraint violation deep inside a big COPY: none of the rows before it stay."""
    command.upgrade(alembic_config, "head")
    seed(engine)
    before = snapshot(engine)
    n = 20_000
    songs = pd.DataFrame({"song_id": range(100, 100 + n), "title": [f"song {i}" for i in range(n)]})
    songs.loc[n - 5, "song_id"] = 1  # already in the table: fails near the end
    with pytest.raises(frames.FrameError, match="nothing was written"):
        frames.write_frame(songs, "songs", engine)
    assert snapshot(engine) == before


def test_failed_frame_replace_keeps_the_old_rows(alembic_config: Config, engine: Engine) -> None:
    """if_exists='replace' deletes, then copies: a failing copy must bring the deleted rows back."""
    command.upgrade(alembic_config, "head")
    seed(engine)
    before = snapshot(engine)
    links = pd.DataFrame({"playlist_id": [1, 2, 99], "song_id": [1, 1, 1]})  # playlist 99 does not exist
    with pytest.raises(frames.FrameError):
        frames.write_frame(links, "playlist_song_association", engine, if_exists="replace")
    assert snapshot(engine) == before
