"""Issue 20: a command line that meets the habits of CLI users (and `alembic` messages that name what to do)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from playlist_tools import db
from playlist_tools.cli import FOR_THE_COMMAND_LINE, build_parser

from helpers import run_cli, url_text


@pytest.fixture
def at_head(database_url: URL) -> Iterator[dict[str, str]]:
    env = {"DATABASE_URL": url_text(database_url)}
    assert run_cli("alembic", "upgrade", "head", env=env).returncode == 0
    yield env


def execute(url: URL, statement: str) -> None:
    engine = db.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def test_version() -> None:
    done = run_cli("playlist-tools", "--version")
    assert done.returncode == 0
    assert done.stdout.strip().startswith("playlist-tools 0.")


def test_help_has_examples_and_the_environment_variables() -> None:
    done = run_cli("playlist-tools", "--help")
    assert done.returncode == 0
    assert "examples:\n  playlist-tools db status" in done.stdout
    for name in ("DATABASE_URL", "PLAYLIST_TOOLS_PGDATA", "PLAYLIST_TOOLS_LOCK_TIMEOUT"):
        assert f"\n  {name} " in done.stdout


@pytest.mark.parametrize("group", ["db", "migrate", "sample"])
def test_every_group_has_a_description_and_examples(group: str) -> None:
    parser = build_parser()
    (commands,) = [action for action in parser._actions if action.dest == "command"]
    sub = commands.choices[group]
    assert sub.description and len(sub.description) > 60
    assert sub.epilog and sub.epilog.startswith("examples:\n")


def test_db_psql_help_says_arguments_go_to_psql() -> None:
    done = run_cli("playlist-tools", "db", "psql", "--help")
    assert done.returncode == 0
    assert "usage: playlist-tools db psql [-h] [PSQL_ARGUMENT ...]" in done.stdout
    assert "Every other argument is passed on to psql" in " ".join(done.stdout.split())


def test_sample_load_names_its_tables(at_head: dict[str, str]) -> None:
    first = run_cli("playlist-tools", "sample", "load", "--quiet", env=at_head)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].split() == ["table", "sample", "inserted", "total"]
    assert [line.split()[0] for line in lines[1:4]] == ["playlists", "songs", "playlist_song_association"]
    assert lines[-1] == "12236 row(s) inserted"
    again = run_cli("playlist-tools", "sample", "load", "--quiet", env=at_head)
    assert again.stdout.splitlines()[-1] == "nothing to insert: the sample was already loaded"


def test_sample_load_error_suggests_commands_not_python(at_head: dict[str, str], database_url: URL) -> None:
    execute(database_url, "INSERT INTO playlists (playlist_id, title) VALUES (1, 'Mine')")
    done = run_cli("playlist-tools", "sample", "load", "--quiet", env=at_head)
    assert done.returncode == 1
    assert "playlist_tools." not in done.stderr
    assert "`playlist-tools db reset --yes`" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_no_fix_for_the_command_line_speaks_python() -> None:
    for command in FOR_THE_COMMAND_LINE.values():
        assert "playlist_tools." not in command and "(config" not in command and "=True" not in command


def test_alembic_check_behind_head_says_upgrade(database_url: URL) -> None:
    env = {"DATABASE_URL": url_text(database_url)}
    assert run_cli("alembic", "upgrade", "0002", env=env).returncode == 0
    done = run_cli("alembic", "check", env=env)
    assert done.returncode != 0
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED:")]
    assert failed == [
        "FAILED: the database is not up to date (it is at 0002, head is 0005), and autogenerate compares the "
        "models with head; run `alembic upgrade head` (migrations.upgrade(config)) first, then this command again"
    ]
    assert "Traceback" not in done.stdout + done.stderr


def test_relative_downgrade_refusal_names_the_revision(at_head: dict[str, str], database_url: URL) -> None:
    execute(database_url, "INSERT INTO playlists (title, description) VALUES ('x', 'kept')")
    assert run_cli("alembic", "downgrade", "0002", env=at_head).returncode == 0
    done = run_cli("alembic", "downgrade", "-1", env=at_head)
    assert done.returncode != 0
    assert "FAILED: downgrade to 0001 (-1) would destroy playlists.description (1 non-null value)" in done.stdout


def test_migrate_plan_fits_its_sql_to_columns(database_url: URL) -> None:
    """08 showed `migrate plan` wrapping at 1280 px: the SQL column takes what $COLUMNS leaves."""
    env = {"DATABASE_URL": url_text(database_url), "COLUMNS": "150"}
    assert run_cli("alembic", "upgrade", "0001", env=env).returncode == 0
    done = run_cli("playlist-tools", "migrate", "plan", env=env)
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()[:-1]
    assert len(table) > 3 and max(len(line) for line in table) <= 150
    assert any(line.endswith("...") for line in table)
