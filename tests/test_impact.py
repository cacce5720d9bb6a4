"""migrations.impact and ``playlist-tools migrate plan``: what a migration locks, rewrites, scans, measured.

The facts asserted are PostgreSQL's (ALTER TYPE text -> integer rewrites the
table, ADD COLUMN nullable does not, CREATE INDEX takes SHARE, ...): the code
reads them from the server, so a wrong measurement fails here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import URL

from playlist_tools import migrations
from playlist_tools.errors import RevisionError

from helpers import add_revision, run_cli, scratch_config, scratch_history, session_named, url_text

COMMON_KINDS = """
    op.add_column("playlists", sa.Column("note", sa.Text(), nullable=True))
    op.add_column("playlists", sa.Column("stamped", sa.DateTime(timezone=True),
                                         server_default=sa.text("clock_timestamp()")))
    op.alter_column("playlists", "note", nullable=False)
    op.alter_column("songs", "album", type_=sa.Integer(), postgresql_using="album::integer")
    op.add_column("playlists", sa.Column("favourite_song_id", sa.Integer(), nullable=True))
    op.create_foreign_key("fk_favourite", "playlists", "songs", ["favourite_song_id"], ["song_id"])
    op.create_index("ix_songs_composer", "songs", ["composer"])
"""

CONCURRENT_INDEX = """
    with op.get_context().autocommit_block():
        op.create_index("ix_songs_title", "songs", ["title"], postgresql_concurrently=True)
"""


@pytest.fixture
def history(tmp_path: Path, database_url: URL) -> tuple[Path, Config]:
    ini = scratch_history(tmp_path, failing=None)
    return ini, scratch_config(ini, database_url)


def _one(plan: pd.DataFrame, revision: str, operation: str, table: str, nth: int = 0) -> pd.Series:
    rows = plan[(plan["revision"] == revision) & (plan["operation"] == operation) & (plan["table"] == table)]
    return rows.iloc[nth]


def test_each_statement_of_the_history_is_measured(history: tuple[Path, Config]) -> None:
    _, config = history
    plan = migrations.impact(config)  # from base: 0001's tables too
    assert list(plan.columns) == list(migrations.IMPACT_COLUMNS)
    created = _one(plan, "0001", "create_table", "playlist_song_association")
    assert created["lock"] == "ACCESS EXCLUSIVE" and not created["rewrites"]
    # its foreign keys lock the tables they reference against writes
    assert _one(plan, "0001", "create_table", "songs", nth=1)["lock"] == "SHARE ROW EXCLUSIVE"
    migrations.upgrade(config, "0001")
    plan = migrations.impact(config)
    assert plan["revision"].drop_duplicates().tolist() == ["0002", "0003", "0004", "0005"]
    added = _one(plan, "0002", "add_column", "playlists")
    assert (added["lock"], added["rewrites"], added["scans"]) == ("ACCESS EXCLUSIVE", False, False)
    backfill = _one(plan, "0003", "execute", "playlist_song_association")
    assert backfill["sql"].lstrip().startswith("UPDATE") and backfill["lock"] == "ROW EXCLUSIVE"
    assert backfill["scans"] and not backfill["rewrites"]
    not_null = _one(plan, "0003", "alter_column", "playlist_song_association")
    assert (not_null["lock"], not_null["rewrites"], not_null["scans"]) == ("ACCESS EXCLUSIVE", False, True)
    renamed = _one(plan, "0004", "alter_column", "songs")
    assert "RENAME" in renamed["sql"] and (renamed["lock"], renamed["scans"]) == ("ACCESS EXCLUSIVE", False)
    index = _one(plan, "0005", "create_index", "songs")
    assert (index["lock"], index["rewrites"], index["scans"]) == ("SHARE", False, True)
    assert index["lint"] == "" and plan["blocked_by"].eq("").all()


def test_common_statement_kinds_the_history_does_not_use(history: tuple[Path, Config]) -> None:
    ini, config = history
    add_revision(ini, "common_kinds", "Common kinds", COMMON_KINDS, rev="0006")
    add_revision(ini, "concurrent_index", "Concurrent index", CONCURRENT_INDEX, rev="0007")
    migrations.upgrade(config, "0005")
    plan = migrations.impact(config)
    nullable = _one(plan, "0006", "add_column", "playlists")
    assert (nullable["rewrites"], nullable["scans"]) == (False, False)
    volatile = _one(plan, "0006", "add_column", "playlists", nth=1)
    assert "clock_timestamp()" in volatile["sql"] and volatile["rewrites"]
    not_null = _one(plan, "0006", "alter_column", "playlists")
    assert (not_null["lock"], not_null["rewrites"], not_null["scans"]) == ("ACCESS EXCLUSIVE", False, True)
    retyped = _one(plan, "0006", "alter_column", "songs")
    assert "TYPE INTEGER" in retyped["sql"] and retyped["rewrites"] and retyped["lock"] == "ACCESS EXCLUSIVE"
    foreign = plan[plan["operation"] == "create_foreign_key"].set_index("table")
    assert foreign["lock"].to_dict() == {"playlists": "SHARE ROW EXCLUSIVE", "songs": "SHARE ROW EXCLUSIVE"}
    assert foreign.loc["playlists", "scans"] and not foreign["rewrites"].any()  # validating reads the table
    plain = _one(plan, "0006", "create_index", "songs")
    assert (plain["lock"], plain["scans"]) == ("SHARE", True)
    concurrent = _one(plan, "0007", "create_index", "songs")
    assert "CONCURRENTLY" in concurrent["sql"]
    assert (concurrent["lock"], concurrent["rewrites"], concurrent["scans"]) == ("SHARE UPDATE EXCLUSIVE", False, True)
    assert pd.isna(concurrent["note"])


def test_a_session_holding_a_conflicting_lock_is_named(history: tuple[Path, Config], database_url: URL) -> None:
    _, config = history
    migrations.upgrade(config, "0003")
    with session_named(database_url, "dashboard") as reader:
        reader.execute(sa.text("SELECT count(*) FROM songs")).all()  # ACCESS SHARE until it commits
        pid = reader.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        plan = migrations.impact(config)
    renamed = _one(plan, "0004", "alter_column", "songs")  # ACCESS EXCLUSIVE: waits for any reader
    assert f"pid {pid} (application_name 'dashboard', idle in transaction" in renamed["blocked_by"]
    assert _one(plan, "0005", "create_index", "songs")["blocked_by"] == ""  # SHARE lets readers be


def test_rows_are_counted_on_the_real_database(history: tuple[Path, Config], database_url: URL) -> None:
    _, config = history
    migrations.upgrade(config, "0004")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO songs (title) VALUES ('a'), ('b'), ('c')"))
    engine.dispose()
    assert _one(migrations.impact(config), "0005", "create_index", "songs")["rows"] == 3


def test_a_target_behind_the_database_plans_the_downgrade(history: tuple[Path, Config], database_url: URL) -> None:
    _, config = history
    migrations.upgrade(config)
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO playlists (title, description) VALUES ('a', 'mine')"))
    engine.dispose()
    plan = migrations.impact(config, "0001")
    assert plan["revision"].drop_duplicates().tolist() == ["0005", "0004", "0003", "0002"]
    assert _one(plan, "0005", "drop_index", "songs")["lock"] == "ACCESS EXCLUSIVE"
    dropped = _one(plan, "0002", "drop_column", "playlists")
    assert dropped["destroys"] == "playlists.description (1 non-null value)"
    assert "ban-drop-column" in dropped["lint"]
    assert migrations.impact(config, "head").empty


def test_a_range_or_unknown_target_is_one_line(history: tuple[Path, Config]) -> None:
    _, config = history
    with pytest.raises(RevisionError, match="not a range"):
        migrations.impact(config, "0001:0002")
    with pytest.raises(RevisionError, match="unknown revision 'nope'"):
        migrations.impact(config, "nope")


def test_migrate_plan_prints_a_table_with_markers(history: tuple[Path, Config], database_url: URL) -> None:
    ini, config = history
    migrations.upgrade(config, "0003")
    env = {"DATABASE_URL": url_text(database_url)}
    with session_named(database_url, "notebook") as reader:
        reader.execute(sa.text("SELECT 1 FROM songs")).all()
        pid = reader.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        done = run_cli("playlist-tools", "migrate", "plan", "-c", str(ini), env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["revision", "operation", "table"]
    rename = next(line for line in lines if "RENAME" in line)
    assert rename.startswith("!") and f"pid {pid}" in rename
    index = next(line for line in lines if "CREATE INDEX" in line)
    assert not index.startswith("!")
    assert any(line.startswith(f"! waits for pid {pid} (application_name 'notebook'") for line in lines)
    bad = run_cli("playlist-tools", "migrate", "plan", "nope", "-c", str(ini), env=env)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "unknown revision 'nope'" in bad.stderr and "Traceback" not in bad.stderr


def test_two_threads_measure_side_by_side_and_agree(history: tuple[Path, Config]) -> None:
    # Alembic's op and context proxies are module globals; the measuring runs take turns on them.
    _, config = history
    alone = migrations.impact(config)
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: migrations.impact(config), range(2)))
    for plan in both:
        pd.testing.assert_frame_equal(plan, alone)
