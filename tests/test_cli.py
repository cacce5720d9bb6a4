"""The command lines a user types: playlist-tools and the plain alembic CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from playlist_tools import db

from helpers import add_revision, run_cli, scratch_history, url_text

CLOSED_PORT_URL = "postgresql://ann:s3cr3t-pw@127.0.0.1:1/music"
BAD_SCHEME_URL = "mysql://ann:s3cr3t-pw@localhost/music"


def assert_one_clear_line(stderr: str, *needles: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert "s3cr3t-pw" not in stderr, "password leaked"
    assert lines, "no error printed"
    for needle in needles:
        assert needle in lines[-1], f"{needle!r} not in {lines[-1]!r}"


# -- playlist-tools db ---------------------------------------------------------


def test_db_url_and_status_follow_database_url(database_url: URL) -> None:
    env = {"DATABASE_URL": url_text(database_url)}
    url = run_cli("playlist-tools", "db", "url", env=env)
    assert url.returncode == 0, url.stderr
    assert url.stdout.strip().endswith(database_url.render_as_string().split("/")[-1])
    status = run_cli("playlist-tools", "db", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "from DATABASE_URL" in status.stdout
    assert f"server: PostgreSQL {db.ping(database_url)}" in status.stdout  # the server DATABASE_URL names


def test_db_url_masks_password() -> None:
    result = run_cli("playlist-tools", "db", "url", env={"DATABASE_URL": CLOSED_PORT_URL})
    assert result.returncode == 0
    assert result.stdout.strip() == "postgresql://ann:***@127.0.0.1:1/music"
    shown = run_cli("playlist-tools", "db", "url", "--show-password", env={"DATABASE_URL": CLOSED_PORT_URL})
    assert "s3cr3t-pw" in shown.stdout


@pytest.fixture
def own_embedded(tmp_path: Path) -> dict[str, str]:
    """Environment for a private embedded server in tmp_path, stopped afterwards."""
    env = {"PLAYLIST_TOOLS_PGDATA": str(tmp_path / "pgdata"), "DATABASE_URL": ""}
    yield env
    db.stop_embedded(tmp_path / "pgdata")


@pytest.mark.once  # a private embedded server, whatever DATABASE_URL says
def test_db_start_status_stop_reset(own_embedded: dict[str, str]) -> None:
    data_dir = Path(own_embedded["PLAYLIST_TOOLS_PGDATA"])
    before = run_cli("playlist-tools", "db", "status", env=own_embedded)
    assert "not created yet" in before.stdout

    started = run_cli("playlist-tools", "db", "start", env=own_embedded)
    assert started.returncode == 0, started.stderr
    assert (data_dir / "PG_VERSION").exists()
    running = run_cli("playlist-tools", "db", "status", env=own_embedded)
    assert "server: running" in running.stdout
    assert db.ping(db.embedded_status(data_dir).url).startswith("18.")

    refused = run_cli("playlist-tools", "db", "reset", env=own_embedded, input="")
    assert refused.returncode == 1
    assert_one_clear_line(refused.stderr, "--yes")
    assert (data_dir / "PG_VERSION").exists(), "reset without --yes deleted data"

    stopped = run_cli("playlist-tools", "db", "stop", env=own_embedded)
    assert stopped.stdout.strip() == "stopped"
    assert "server: stopped" in run_cli("playlist-tools", "db", "status", env=own_embedded).stdout

    reset = run_cli("playlist-tools", "db", "reset", "--yes", env=own_embedded)
    assert reset.returncode == 0, reset.stderr
    assert not data_dir.exists()


def test_db_psql_runs_a_query(database_url: URL) -> None:
    result = run_cli(
        "playlist-tools", "db", "psql", "-At", "-c", "SELECT 6 * 7",
        env={"DATABASE_URL": url_text(database_url)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


@pytest.mark.parametrize(
    ("url", "needles"),
    [
        (CLOSED_PORT_URL, ["cannot connect to postgresql://ann:***@127.0.0.1:1/music", "Connection refused"]),
        (BAD_SCHEME_URL, ["'mysql'", "postgresql://user:password@host:port/dbname"]),
        ("postgresql://ann:s3cr3t-pw@host:notaport/db", ["is not a URL", "postgresql://user:password@host:port/dbname"]),
    ],
    ids=["closed-port", "bad-scheme", "unparsable"],
)
def test_db_status_bad_database_url(url: str, needles: list[str]) -> None:
    result = run_cli("playlist-tools", "db", "status", env={"DATABASE_URL": url})
    assert result.returncode == 1
    assert_one_clear_line(result.stderr, *needles)


def test_cli_usage_error_exits_2() -> None:
    result = run_cli("playlist-tools", "db", "explode")
    assert result.returncode == 2
    assert "invalid choice: 'explode'" in result.stderr


# -- the plain alembic CLI, from the repo root -----------------------------------


def test_alembic_cli_walkthrough(database_url: URL) -> None:
    env = {"DATABASE_URL": url_text(database_url)}
    steps = [
        (["upgrade", "head"], "Running upgrade 0001 -> 0002"),
        (["current"], "0005 (head)"),
        (["history"], "0001 -> 0002, Added description to Playlist"),
        (["check"], "No new upgrade operations detected."),
        (["downgrade", "-1"], "Running downgrade 0005 -> 0004"),
        (["current"], "0004"),
        (["downgrade", "0002"], "Running downgrade 0003 -> 0002"),
        (["current"], "0002"),
        (["downgrade", "-1"], "Running downgrade 0002 -> 0001"),
        (["downgrade", "base"], "Running downgrade 0001 -> , Initial migration"),
    ]
    for args, expected in steps:
        result = run_cli("alembic", *args, env=env)
        assert result.returncode == 0, f"alembic {' '.join(args)}: {result.stderr}"
        assert expected in result.stdout + result.stderr, f"alembic {' '.join(args)}"
    engine = db.create_engine(database_url)
    try:
        assert sa.inspect(engine).get_table_names() == ["alembic_version"]
    finally:
        engine.dispose()


def test_alembic_revision_autogenerate(database_url: URL, tmp_path: Path) -> None:
    """Autogenerate into a scratch copy of the history, never into the repo."""
    import shutil

    from conftest import REPO_ROOT

    scratch = tmp_path / "alembic"
    shutil.copytree(REPO_ROOT / "alembic", scratch, ignore=shutil.ignore_patterns("__pycache__"))
    for later in (scratch / "versions").glob("*.py"):
        if not later.name.startswith("0001_"):
            later.unlink()  # back to the tutorial's starting point
    ini = tmp_path / "alembic.ini"
    ini.write_text((REPO_ROOT / "alembic.ini").read_text())
    env = {"DATABASE_URL": url_text(database_url)}
    assert run_cli("alembic", "-c", str(ini), "upgrade", "0001", env=env).returncode == 0
    result = run_cli(
        # safe=false: at 0001 the models also add 0003's identity column, which lock-safe autogenerate refuses
        "alembic", "-c", str(ini), "-x", "safe=false", "revision", "--autogenerate", "-m",
        "Added description to Playlist", "--rev-id", "0099", env=env,
    )
    assert result.returncode == 0, result.stderr
    written = scratch / "versions" / "0099_added_description_to_playlist.py"
    text = written.read_text()
    assert "op.add_column('playlists', sa.Column('description', sa.Text(), nullable=True))" in text
    assert "Create Date" not in text, "revision files must not carry timestamps"


@pytest.mark.parametrize(
    ("env", "args", "needles"),
    [
        (
            {"DATABASE_URL": CLOSED_PORT_URL},
            ["upgrade", "head"],
            ["cannot connect to postgresql://ann:***@127.0.0.1:1/music"],
        ),
        (
            {"DATABASE_URL": BAD_SCHEME_URL},
            ["upgrade", "head"],
            ["DATABASE_URL 'mysql://ann:***@localhost/music'", "'mysql'"],
        ),
        ({}, ["upgrade", "nope"], ["'nope'", "alembic history"]),
    ],
    ids=["closed-port", "bad-scheme", "unknown-revision"],
)
def test_alembic_cli_bad_input(database_url: URL, env: dict[str, str], args: list[str], needles: list[str]) -> None:
    env = {"DATABASE_URL": url_text(database_url), **env}
    result = run_cli("alembic", *args, env=env)
    assert result.returncode != 0
    # alembic logs the message on stderr and repeats it as "FAILED: ..." on stdout.
    assert_one_clear_line(result.stderr, *needles)
    assert_one_clear_line(result.stdout, "FAILED:", *needles)
    if "closed" not in str(env.get("DATABASE_URL")):
        engine = db.create_engine(database_url)
        try:
            assert sa.inspect(engine).get_table_names() == [], "a failed command changed the database"
        finally:
            engine.dispose()


# -- playlist-tools db locks / lint ---------------------------------------------------


def test_db_locks_names_waiters_and_holders(database_url: URL) -> None:
    import threading

    engine = db.create_engine(database_url, connect_args={"application_name": "analysis.ipynb"})
    holder, waiter = engine.connect(), engine.connect()
    try:
        holder.execute(sa.text("CREATE TABLE scratch (x int)"))
        holder.commit()
        holder_pid = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        holder.execute(sa.text("LOCK TABLE scratch IN ACCESS EXCLUSIVE MODE"))
        thread = threading.Thread(target=lambda: waiter.execute(sa.text("SELECT * FROM scratch")).all())
        thread.start()
        env = {"DATABASE_URL": url_text(database_url)}
        for _ in range(50):  # until the waiter is seen waiting
            result = run_cli("playlist-tools", "db", "locks", env=env)
            if "waits for" in result.stdout:
                break
        assert result.returncode == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        waits = [line for line in lines if "query 'SELECT * FROM scratch') waits for" in line]
        assert len(waits) == 1, lines
        assert f"waits for pid {holder_pid} (application_name 'analysis.ipynb', idle in transaction for " in waits[0]
        assert waits[0].endswith("query 'LOCK TABLE scratch IN ACCESS EXCLUSIVE MODE')")
        assert lines[-1].endswith(f"pg_terminate_backend(pid) for pid {holder_pid}")
    finally:
        holder.rollback()
        thread.join()
        holder.close()
        waiter.close()
        engine.dispose()
    quiet = run_cli("playlist-tools", "db", "locks", env=env)
    assert quiet.stdout.strip() == "no session waits for a lock, and none holds one while idle in a transaction"


def test_lint_command(tmp_path: Path) -> None:
    clean = run_cli("playlist-tools", "lint")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.strip() == "no findings in base:head"
    ini = scratch_history(tmp_path, failing=None)
    add_revision(ini, "dropped_album", "Dropped album", 'op.drop_column("songs", "album")')
    found = run_cli("playlist-tools", "lint", "0005:head", "-c", str(ini))
    assert found.returncode == 1
    assert found.stdout.splitlines()[0].startswith("0006:")
    assert "ban-drop-column" in found.stdout
    assert found.stdout.strip().endswith("1 finding(s) in 0005:head")


def test_db_start_with_a_broken_data_dir_says_how_to_recover(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    data_dir.mkdir()
    (data_dir / "PG_VERSION").write_text("18\n")  # looks initialised, holds nothing
    (data_dir / ".playlist-tools-pgdata").write_text("")  # and made by us: broken, not foreign
    env = {"PLAYLIST_TOOLS_PGDATA": str(data_dir), "DATABASE_URL": ""}
    result = run_cli("playlist-tools", "db", "start", env=env)
    assert result.returncode == 1
    assert_one_clear_line(result.stderr, f"the embedded PostgreSQL in {data_dir} did not start", "db reset --yes")
    assert (data_dir / "PG_VERSION").exists(), "a failed start must not delete anything"
