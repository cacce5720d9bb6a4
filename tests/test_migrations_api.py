"""playlist_tools.migrations and the scratch workspace, against a real PostgreSQL."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, migrations
from playlist_tools.errors import DatabaseUnavailableError, DataLossError, MigrationError, RevisionError
from playlist_tools.models import Base
from playlist_tools.workspace import Workspace

from helpers import REPO_ROOT


@pytest.fixture
def cfg(database_url: URL) -> Config:
    """The repo's migrations on this test's fresh database."""
    return migrations.config(database_url)


def repo_versions() -> list[str]:
    return sorted(p.name for p in (REPO_ROOT / "alembic" / "versions").glob("*.py"))


def repo_status() -> str:
    """What git sees as changed under alembic/: nothing, after every test here."""
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "alembic/versions"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout


def execute(engine: Engine, statement: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(statement))


def seed(engine: Engine) -> None:
    execute(engine, "INSERT INTO songs (song_id, title) VALUES (10, 'a'), (20, 'b'), (30, 'c')")
    execute(
        engine,
        "INSERT INTO playlists (playlist_id, title, description) VALUES (1, 'one', 'mine'), (2, 'two', NULL)",
    )
    execute(
        engine,
        "INSERT INTO playlist_song_association (playlist_id, song_id) VALUES (1, 10), (1, 20), (1, 30), (2, 20)",
    )


# -- config -------------------------------------------------------------------------


def test_config_points_at_the_repo_and_keeps_the_url_out_of_the_ini(database_url: URL) -> None:
    cfg = migrations.config(database_url)
    assert Path(cfg.get_main_option("script_location")) == REPO_ROOT / "alembic"
    assert cfg.attributes["url"] == database_url
    assert cfg.attributes["skip_logging_config"] is True
    assert cfg.get_main_option("sqlalchemy.url") is None


def test_config_without_an_ini_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no Alembic configuration at .*pass ini="):
        migrations.config(ini=tmp_path / "alembic.ini")


# -- listings -----------------------------------------------------------------------


def test_history_current_heads_as_frames(cfg: Config) -> None:
    history = migrations.history(cfg)
    assert list(history.columns) == migrations.REVISION_COLUMNS
    assert list(history["rev"]) == ["0001", "0002", "0003", "0004", "0005"]
    assert list(history["down_rev"]) == ["base", "0001", "0002", "0003", "0004"]
    assert history.loc[1, "message"] == "Added description to Playlist"
    assert not history["is_current"].any()
    assert list(history["is_head"]) == [False] * 4 + [True]
    assert migrations.current(cfg).empty
    assert list(migrations.current(cfg).columns) == migrations.REVISION_COLUMNS

    migrations.upgrade(cfg, "0002")
    assert migrations.current(cfg)[["rev", "is_current", "is_head"]].values.tolist() == [["0002", True, False]]
    assert list(migrations.history(cfg)["is_current"]) == [False, True, False, False, False]
    assert migrations.heads(cfg)[["rev", "is_current", "is_head"]].values.tolist() == [["0005", False, True]]
    assert list(migrations.history(cfg, "0002:0003")["rev"]) == ["0002", "0003"]


def test_history_without_a_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:1/none")
    assert len(migrations.history(None, indicate_current=False)) == 5


# -- upgrade and downgrade -----------------------------------------------------------


def test_upgrade_returns_what_it_applied(cfg: Config, engine: Engine) -> None:
    applied = migrations.upgrade(cfg, "0002")
    assert list(applied["rev"]) == ["0001", "0002"]
    assert list(applied["is_current"]) == [False, True]
    assert list(migrations.upgrade(cfg)["rev"]) == ["0003", "0004", "0005"]
    assert migrations.upgrade(cfg).empty
    assert migrations.check(cfg).empty


def test_downgrade_without_data_loses_nothing_and_needs_no_permission(cfg: Config) -> None:
    migrations.upgrade(cfg)
    reverted = migrations.downgrade(cfg, "base")
    assert list(reverted["rev"]) == ["0005", "0004", "0003", "0002", "0001"]
    assert migrations.current(cfg).empty


def test_data_loss_counts_what_each_step_drops(cfg: Config, engine: Engine) -> None:
    migrations.upgrade(cfg)
    seed(engine)
    loss = migrations.data_loss(cfg, "base")
    assert list(loss.columns) == ["rev", "table", "column", "lost", "what"]
    assert loss.values.tolist() == [
        ["0003", "playlist_song_association", "position", 0, "entries out of song order"],
        ["0002", "playlists", "description", 1, "non-null values"],
        ["0001", "playlist_song_association", "*", 4, "rows"],
        ["0001", "songs", "*", 3, "rows"],
        ["0001", "playlists", "*", 2, "rows"],
    ]
    # 0004 renames and 0005 drops an index: neither loses data.
    assert migrations.data_loss(cfg, "0003").empty


def test_lossy_downgrade_is_refused_before_anything_runs(cfg: Config, engine: Engine) -> None:
    migrations.upgrade(cfg)
    seed(engine)
    with pytest.raises(DataLossError) as caught:
        migrations.downgrade(cfg, "0001")
    message = str(caught.value)
    assert message == (
        "downgrade to '0001' would destroy playlists.description (1 non-null value); "
        "pass allow_data_loss=True to downgrade anyway"
    )
    assert list(migrations.current(cfg)["rev"]) == ["0005"]  # nothing half-applied
    assert list(migrations.downgrade(cfg, "0002")["rev"]) == ["0005", "0004", "0003"]  # in song order: free


def test_allow_data_loss_downgrades_anyway(cfg: Config, engine: Engine) -> None:
    migrations.upgrade(cfg, "0002")
    seed_0002 = "INSERT INTO playlists (playlist_id, title, description) VALUES (1, 'one', 'mine')"
    execute(engine, seed_0002)
    assert list(migrations.downgrade(cfg, "-1", allow_data_loss=True)["rev"]) == ["0002"]
    assert "description" not in {c["name"] for c in sa.inspect(engine).get_columns("playlists")}


def test_0003_loses_only_entries_moved_out_of_song_order(cfg: Config, engine: Engine) -> None:
    migrations.upgrade(cfg)
    seed(engine)
    # Appended entries get identity values with gaps: same order, nothing lost.
    execute(engine, "DELETE FROM playlist_song_association WHERE playlist_id = 2")
    execute(engine, "INSERT INTO playlist_song_association (playlist_id, song_id) VALUES (2, 20), (2, 30)")
    assert migrations.data_loss(cfg, "0002").loc[0, "lost"] == 0
    # Swapping two entries moves both.
    execute(
        engine,
        "UPDATE playlist_song_association SET position = 100 - position "
        "WHERE playlist_id = 1 AND song_id IN (10, 20)",
    )
    with pytest.raises(DataLossError, match=r"playlist_song_association.position \(2 entries out of song order\)"):
        migrations.downgrade(cfg, "0002")


def test_unknown_revision_names_it_and_lists_the_known_ones(cfg: Config) -> None:
    for call in (
        lambda: migrations.upgrade(cfg, "nope"),
        lambda: migrations.downgrade(cfg, "nope"),
        lambda: migrations.sql(cfg, "base:nope"),
        lambda: migrations.history(cfg, "nope:"),
    ):
        with pytest.raises(RevisionError) as caught:
            call()
        message = str(caught.value)
        assert "'nope'" in message and "0001, 0002, 0003, 0004, 0005" in message, message
        assert "\n" not in message
    assert migrations.current(cfg).empty


def test_unreachable_server_is_database_unavailable() -> None:
    cfg = migrations.config("postgresql://nobody:secret@127.0.0.1:1/none")
    for call in (lambda: migrations.current(cfg), lambda: migrations.upgrade(cfg)):
        with pytest.raises(DatabaseUnavailableError) as caught:
            call()
        assert "secret" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


def test_callers_connection_is_used_and_left_open(database_url: URL) -> None:
    engine = db.create_engine(database_url)
    try:
        with engine.connect() as connection:
            cfg = migrations.config(connection=connection)
            migrations.upgrade(cfg, "0001")
            assert list(migrations.current(cfg)["rev"]) == ["0001"]
            assert not connection.closed
        with engine.connect() as other:  # committed, not left in the caller's transaction
            assert other.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0001"
    finally:
        engine.dispose()


# -- offline SQL ----------------------------------------------------------------------


def test_sql_forward_and_backward_needs_no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:1/none")
    forward = migrations.sql(None, "base:head")
    assert "CREATE TABLE playlists" in forward
    assert "ALTER TABLE songs RENAME media_type TO file_format" in forward
    backward = migrations.sql(None, "head:0002", downgrade=True)
    assert "ALTER TABLE playlist_song_association DROP COLUMN position" in backward
    assert "CREATE TABLE" not in backward and "description" not in backward


# -- autogenerate: preview, check, revision, merge -----------------------------------------


def test_preview_shows_drift_as_rows(cfg: Config, engine: Engine) -> None:
    migrations.upgrade(cfg)
    assert migrations.preview(cfg, Base.metadata).empty
    execute(engine, "ALTER TABLE playlists DROP COLUMN description")
    execute(engine, "DROP INDEX ix_songs_genre")
    drift = migrations.check(cfg)
    assert drift.values.tolist() == [
        ["add_column", "playlists", "description", "TEXT NULL"],
        ["add_index", "songs", "ix_songs_genre", "genre"],
    ]
    assert "target_metadata" not in cfg.attributes  # preview restores the config


def test_preview_behind_head_says_to_upgrade(cfg: Config) -> None:
    migrations.upgrade(cfg, "0001")
    with pytest.raises(MigrationError, match="not up to date.*upgrade"):
        migrations.preview(cfg)


def test_revision_writes_into_the_workspace_only() -> None:
    before = repo_versions()
    with Workspace.open(upto="0001") as ws:
        migrations.upgrade(ws.config)
        # The tutorial's step: the reader adds Playlist.description to the workspace's models.py.
        title = "    title: Mapped[str] = mapped_column(String(120), index=True)\n"
        added = title + "    description: Mapped[Optional[str]] = mapped_column(Text)\n"
        assert title in ws.models.read_text()
        ws.models.write_text(ws.models.read_text().replace(title, added))
        script = migrations.revision(ws.config, "Added description to Playlist")
        assert script.revision == "0002" and script.down_revision == "0001"
        path = Path(script.path)
        assert path.parent == ws.versions and path.name == "0002_added_description_to_playlist.py"
        source = path.read_text()
        assert "op.add_column('playlists', sa.Column('description', sa.Text(), nullable=True))" in source
        assert "Create Date" not in source
        migrations.upgrade(ws.config)
        assert migrations.check(ws.config).empty
    assert repo_versions() == before
    assert repo_status() == ""


def test_two_heads_and_their_merge() -> None:
    with Workspace.open() as ws:
        migrations.upgrade(ws.config)
        migrations.revision(ws.config, "Branch a", autogenerate=False, rev_id="0006")
        migrations.revision(ws.config, "Branch b", autogenerate=False, rev_id="0007", head="0005", splice=True)
        assert list(migrations.heads(ws.config)["rev"]) == ["0006", "0007"]
        with pytest.raises(
            RevisionError,
            match=r"'head' is ambiguous: the history has several heads \(0006, 0007\); use 'heads'",
        ):
            migrations.upgrade(ws.config, "head")
        merged = migrations.merge(ws.config, "heads", "Merge branches a and b")
        assert merged.revision == "0008"
        assert list(migrations.history(ws.config)["down_rev"])[-1] == "0006, 0007"
        assert list(migrations.upgrade(ws.config)["rev"]) == ["0006", "0007", "0008"]
        assert list(migrations.downgrade(ws.config, "0005")["rev"]) == ["0008", "0007", "0006"]


# -- the workspace ----------------------------------------------------------------------


def database_exists(server: URL, name: str) -> bool:
    engine = db.create_engine(server, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return bool(connection.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar_one())
    finally:
        engine.dispose()


def test_workspace_copies_history_up_to_a_revision_and_cleans_up(server_url: URL) -> None:
    ws = Workspace.open(upto="base")
    directory, name = ws.directory, ws.url.database
    assert sorted(p.name for p in ws.versions.iterdir()) == []
    assert (directory / "alembic.ini").is_file() and (directory / "alembic" / "env.py").is_file()
    assert database_exists(server_url, name)
    with ws.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT current_database()")).scalar_one() == name
    assert repr(ws) == "Workspace(upto='base', open)"
    ws.close()
    ws.close()  # twice is fine
    assert ws.closed and repr(ws) == "Workspace(upto='base', closed)"
    assert not directory.exists()
    assert not database_exists(server_url, name)
    with pytest.raises(RuntimeError, match="closed"):
        _ = ws.engine


def test_workspace_cleans_up_when_garbage_collected(server_url: URL) -> None:
    import gc

    ws = Workspace.open(upto="0002")
    assert sorted(p.name for p in ws.versions.glob("*.py")) == [
        "0001_initial_migration.py", "0002_added_description_to_playlist.py"
    ]
    directory, name = ws.directory, ws.url.database
    del ws
    gc.collect()
    assert not directory.exists() and not database_exists(server_url, name)


def test_workspace_with_an_unknown_revision_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(RevisionError, match="unknown revision 'nope'; known revisions: 0001, 0002"):
        Workspace.open(upto="nope")


def test_the_alembic_environment_does_not_import_pandas() -> None:
    # Every `alembic` command imports alembic/env.py; pandas is for the functions that return frames.
    probe = "import sys, playlist_tools.migrations._env; print(sorted({'pandas', 'pyarrow'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_public_names_load_on_first_use_and_unknown_ones_fail() -> None:
    # One list (_WHERE, private: the test reads it to compare) drives __all__; the TYPE_CHECKING imports mirror it.
    assert sorted(migrations.__all__) == sorted(migrations._WHERE)
    tree = ast.parse(Path(migrations.__file__).read_text())
    (checking,) = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    typed = {alias.name for node in checking.body for alias in node.names}  # type: ignore[attr-defined]
    assert typed == set(migrations._WHERE)
    assert sorted(migrations.__all__) == sorted(name for name in dir(migrations) if name in migrations.__all__)
    assert all(callable(getattr(migrations, name)) or name.isupper() for name in migrations.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        migrations.nope  # noqa: B018 - the lookup is the test
