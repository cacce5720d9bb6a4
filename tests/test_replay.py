"""The history replayed elsewhere: one cache database per revision and content, copies, and cleanup."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from playlist_tools import db, history, migrations
from playlist_tools.errors import MigrationError, RevisionError

from helpers import scratch_config, scratch_history, snapshot, url_text


def _columns(url: URL, table: str) -> list[str]:
    with db.connection(url) as conn:
        return [c["name"] for c in sa.inspect(conn).get_columns(table)]


def _oid(server: URL, name: str) -> int | None:
    with db.connection(server) as conn:
        return conn.execute(sa.text("SELECT oid FROM pg_database WHERE datname = :n"), {"n": name}).scalar()


def test_each_revision_has_its_own_schema_and_the_cache_is_reused(alembic_config, server_url):
    at_0001 = history.template(alembic_config, "0001")
    at_0002 = history.template(alembic_config, "0002")
    assert "description" not in _columns(at_0001, "playlists")
    assert "description" in _columns(at_0002, "playlists")
    built = _oid(server_url, at_0002.database)
    assert history.template(alembic_config, "0002") == at_0002
    assert _oid(server_url, at_0002.database) == built  # read again, not rebuilt


def test_head_names_the_same_cache_as_its_id(alembic_config):
    head = migrations.heads(alembic_config)["rev"].item()
    assert history.template(alembic_config, "head") == history.template(alembic_config, head)


def test_the_users_database_and_run_are_untouched(alembic_config, engine):
    heard: list[object] = []
    alembic_config.attributes["on_version_apply"] = [lambda **kw: heard.append(kw)]
    before = snapshot(engine)
    with history.replayed(alembic_config, "head") as url:
        assert url.database != engine.url.database
    assert snapshot(engine) == before
    assert heard == []  # the caller's hooks hear only the caller's own runs
    assert "connection" not in alembic_config.attributes


def test_a_copy_is_writable_dropped_after_and_leaves_the_cache_as_it_was(alembic_config, server_url):
    source = history.template(alembic_config, "0002")
    with history.replayed(alembic_config, "0002") as url, db.transaction(url) as conn:
        conn.exec_driver_sql("INSERT INTO playlists (title) VALUES ('mine')")
        conn.exec_driver_sql("ALTER TABLE playlists DROP COLUMN description")
    assert _oid(server_url, url.database) is None
    assert "description" in _columns(source, "playlists")
    with db.connection(source) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM playlists").scalar_one() == 0


def test_an_edited_revision_file_means_another_cache(tmp_path, database_url):
    ini = scratch_history(tmp_path, failing=None)
    same = scratch_config(ini, database_url)
    repo = migrations.config(database_url)
    assert history.template(same, "0002") == history.template(repo, "0002")
    [path] = (tmp_path / "alembic" / "versions").glob("0002_*.py")
    path.write_text(path.read_text().replace("sa.Text()", "sa.String(length=500)"))
    edited = history.template(same, "0002")
    assert edited != history.template(repo, "0002")
    with db.connection(edited) as conn:
        [column] = [c for c in sa.inspect(conn).get_columns("playlists") if c["name"] == "description"]
    assert isinstance(column["type"], sa.String) and column["type"].length == 500


def test_base_is_an_empty_database(alembic_config):
    with history.replayed(alembic_config, "base") as url, db.connection(url) as conn:
        assert sa.inspect(conn).get_table_names() == []


def test_an_unknown_revision_is_one_line(alembic_config):
    with pytest.raises(RevisionError, match="unknown revision 'nope'") as caught:
        history.template(alembic_config, "nope")
    assert "\n" not in str(caught.value)


def test_two_processes_building_the_same_cache_end_with_one(tmp_path, database_url, server_url):
    ini = scratch_history(tmp_path, failing=None)
    [path] = (tmp_path / "alembic" / "versions").glob("0003_*.py")
    path.write_text(path.read_text() + "\n# a new content: a cache no one has built yet\n")
    build = (
        "import sys; from playlist_tools import migrations; from playlist_tools import history; "
        "print(history.template(migrations.config(sys.argv[1], ini=sys.argv[2]), '0003').database)"
    )
    both = [subprocess.Popen([sys.executable, "-c", build, url_text(database_url), str(ini)],
                             stdout=subprocess.PIPE, text=True) for _ in range(2)]
    built = [process.communicate(timeout=120)[0].strip() for process in both]
    assert [process.returncode for process in both] == [0, 0]
    assert built[0] == built[1] == history.template(scratch_config(ini, database_url), "0003").database
    with db.connection(server_url) as conn:
        leftovers = conn.execute(sa.text("SELECT count(*) FROM pg_database WHERE datname LIKE :n"),
                                 {"n": built[0][:48] + "_b%"}).scalar_one()
    assert leftovers == 0  # the loser's half-built copy is gone


def test_drop_replays_drops_only_the_caches_it_made(alembic_config, server_url):
    made = history.template(alembic_config, "0001").database
    lookalike = history.CACHE_PREFIX + "not_ours"
    admin = db.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{lookalike}"')
        try:
            dropped = migrations.drop_replays(alembic_config)
            assert made in dropped and lookalike not in dropped
            assert _oid(server_url, made) is None
            assert _oid(server_url, lookalike) is not None
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{lookalike}"')
    finally:
        admin.dispose()


def test_a_role_without_createdb_gets_one_line_without_its_password(server_url, database_url):
    role, password = "pt_no_createdb", "s3cret-Replay"
    admin = db.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD '{password}'")
        try:
            as_role = database_url.set(username=role, password=password)
            cfg = migrations.config(as_role)
            # A content no one has cached, so the replay has to create a database.
            with pytest.raises(MigrationError) as caught:
                with history.replayed(cfg, "0001"):
                    pass
            message = str(caught.value)
            assert "CREATEDB" in message and "\n" not in message and password not in message
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
    finally:
        admin.dispose()


def test_a_caller_connection_is_replayed_on_its_own_server(engine):
    with engine.connect() as conn:
        cfg = migrations.config(connection=conn)
        assert history.server_url(cfg) == engine.url
        with history.replayed(cfg, "0001") as url:
            assert url.database.startswith("playlist_tools_replay") and url.host == engine.url.host


def test_a_copy_left_by_a_killed_process_is_dropped_by_the_next_copy(alembic_config, database_url, server_url):
    # The process dies inside the block, before it can drop its copy (a kernel killed mid-impact).
    dies = (
        "import os, sys; from playlist_tools import migrations; from playlist_tools import history\n"
        "with history.replayed(migrations.config(sys.argv[1]), '0001', prefix='playlist_tools_impact') as url:\n"
        "    print(url.database, flush=True); os._exit(0)"
    )
    left = subprocess.run([sys.executable, "-c", dies, url_text(database_url)], capture_output=True, text=True,
                          check=True).stdout.strip()
    with db.fresh_database(server_url, prefix="playlist_tools_impact") as unrecorded:  # no owner: never swept
        assert {left, unrecorded.database} <= names(server_url)
        with history.replayed(alembic_config, "0001") as mine:
            now = names(server_url)
            assert left not in now  # its owner is gone
            assert {unrecorded.database, mine.database} <= now  # no owner recorded; alive


def names(server_url) -> set[str]:
    with db.connection(server_url) as conn:
        return set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
