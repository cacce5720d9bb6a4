"""Edge cases of issue 9: odd revision arguments, odd query arguments, busy blockers, long messages.

Each one used to end in a traceback (AssertionError, SQLAlchemy's
ProgrammingError), a lie ("no findings" for SQL never linted, "the session
in the way has gone" while it runs), or an unbounded message.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection, Engine

from playlist_tools import db, errors, history, migrations, queries
from playlist_tools.errors import (
    LockTimeoutError,
    MigrationError,
    QueryError,
    RevisionError,
    SchemaError,
    SettingError,
)

from helpers import add_revision, run_cli, scratch_config, scratch_history, session_named, snapshot, url_text

LIMIT = errors.MESSAGE_LIMIT


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing printed"
    return lines[-1]


# -- 1. revision arguments ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "needles"),
    [
        (":", ["':'", "neither start nor end", "'base:head'"]),
        ("", ["empty revision ''", "base:head"]),
        ("0003:", ["'0003:'", "no end", "'0003:head'"]),
        (":0003", ["':0003'", "no start", "'base:0003'"]),
        ("0005:0001", ["'0005:0001'", "runs backwards", "'0001:0005'"]),
        ("0005:0005", ["'0005:0005'", "holds no migration", "'0005'"]),
    ],
    ids=["colon", "empty", "no-end", "no-start", "reversed", "empty-range"],
)
def test_lint_refuses_a_bad_range_in_one_line(typed: str, needles: list[str]) -> None:
    result = run_cli("playlist-tools", "lint", typed)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr and "no findings" not in result.stdout
    line = last_line(result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert line.startswith("playlist-tools: error: ")
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"


def test_lint_names_the_range_to_write_instead_of_a_reversed_one() -> None:
    refused = run_cli("playlist-tools", "lint", "0005:0001")
    suggested = re.search(r"lint those migrations with '([^']+)'", refused.stderr)
    assert refused.returncode == 1 and suggested, refused.stderr
    result = run_cli("playlist-tools", "lint", suggested[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"no findings in {suggested[1]}"


def test_lint_with_a_file_that_is_not_an_ini_does_not_print_it(tmp_path: Path) -> None:
    secret = tmp_path / "notes.txt"
    secret.write_text("root:x:0:0:the-first-line-of-the-file:/root:/bin/bash\nmore\n")
    result = run_cli("playlist-tools", "lint", "-c", str(secret))
    assert result.returncode == 1
    assert "the-first-line-of-the-file" not in result.stdout + result.stderr
    line = last_line(result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert repr(str(secret)) in line and "is not an alembic.ini" in line and "pass the path of an alembic.ini" in line
    with pytest.raises(SettingError, match="is not an alembic.ini") as caught:  # the same from Python
        migrations.upgrade(migrations.config(ini=secret))
    assert "the-first-line-of-the-file" not in str(caught.value)


def test_lint_with_an_ini_that_is_not_alembics(tmp_path: Path) -> None:
    other = tmp_path / "setup.ini"
    other.write_text("[metadata]\nname = other\n")
    result = run_cli("playlist-tools", "lint", "-c", str(other))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "has no script_location" in last_line(result.stderr)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["upgrade", ""], ["empty revision ''"]),
        (["downgrade", ""], ["empty revision ''"]),
        (["stamp", ""], ["empty revision ''"]),
        (["upgrade", "0003:", "--sql"], ["'0003:'", "no end", "'0003:head'"]),
        # Alembic's revision map asserts for a step past the end too: the line names what was typed.
        (["upgrade", "head+1"], ["revision 'head+1'", "steps past the end", "0001, 0002"]),
    ],
    ids=["upgrade", "downgrade", "stamp", "sql-range", "past-head"],
)
def test_alembic_cli_refuses_an_empty_revision(database_url: URL, args: list[str], needles: list[str]) -> None:
    result = run_cli("alembic", *args, env={"DATABASE_URL": url_text(database_url)})
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr and "AssertionError" not in result.stderr
    line = last_line(result.stdout)
    assert line.startswith("FAILED: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    engine = db.create_engine(database_url)
    try:
        assert sa.inspect(engine).get_table_names() == [], "a refused command changed the database"
    finally:
        engine.dispose()


def test_the_api_gets_a_revision_error_for_an_empty_revision(alembic_config: Config) -> None:
    """The verbs name the empty value; below them, the revision map's AssertionError is translated by type."""
    with pytest.raises(RevisionError, match=r"^empty revision ''; name one"):
        migrations.upgrade(alembic_config, "")
    with pytest.raises(RevisionError, match=r"^revision range '0003:' has no end; .*'0003:head'"):
        migrations.sql(alembic_config, "0003:")
    script = ScriptDirectory.from_config(alembic_config)
    empty = pytest.raises(RevisionError, match=r"^a revision id is empty .*base:head")
    with empty, history.alembic_errors(alembic_config):
        list(script.iterate_revisions("", "base"))
    with pytest.raises(RevisionError, match=r"steps past the end of the history .*'head\+1'"):
        migrations.upgrade(alembic_config, "head+1")
    # Only that one: any other AssertionError is a bug, and keeps its traceback.
    with pytest.raises(AssertionError, match="a real bug"), history.alembic_errors(alembic_config):
        raise AssertionError("a real bug")


# -- 2. query arguments ------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_only(server_url: URL) -> Iterator[Engine]:
    """A database at head with no rows: enough to reach the queries' own checks."""
    with db.fresh_database(server_url, prefix="pt_test") as url:
        config = migrations.config(url)
        migrations.upgrade(config)
        engine = db.create_engine(url)
        yield engine
        engine.dispose()


@pytest.mark.parametrize(
    ("call", "needles"),
    [
        (lambda e: queries.playlist_songs(True, e), ["playlist True is a bool", "17 or 'Grunge'"]),
        (lambda e: queries.playlist_songs(17.0, e), ["playlist 17.0 is a float"]),
        (lambda e: queries.playlist_songs(None, e), ["playlist None is a NoneType"]),
        (lambda e: queries.song_playlists(False, e), ["song_id False is a bool", "song_id=1"]),
        (lambda e: queries.song_playlists("1", e), ["song_id '1' is a str"]),
        (lambda e: queries.song_playlists(2**40, e), ["song_id 1099511627776 is beyond PostgreSQL's integer range"]),
        (lambda e: queries.playlist_summary(e, playlist=True), ["playlist True is a bool"]),
        (lambda e: queries.playlist_songs(17, True), ["con=True is a bool, not a database"]),
    ],
    ids=["bool", "float", "none", "song-bool", "song-str", "song-too-big", "summary-bool", "con-bool"],
)
def test_query_arguments_are_checked(schema_only: Engine, call, needles: list[str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QueryError) as caught:
        call(schema_only)
    message = str(caught.value)
    assert "\n" not in message and "[SQL:" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_a_numpy_integer_is_an_id(schema_only: Engine) -> None:
    import numpy as np

    with pytest.raises(QueryError, match=r"^no playlist has id 17;"):
        queries.playlist_songs(np.int64(17), schema_only)


def test_queries_on_a_database_without_the_schema(engine: Engine) -> None:
    with pytest.raises(SchemaError) as caught:
        queries.song_playlists(1, engine)
    message = str(caught.value)
    assert "\n" not in message and "[SQL:" not in message and "parameters" not in message
    assert '"songs" does not exist' in message and "alembic upgrade head" in message


# -- 3. a busy blocker -------------------------------------------------------------------


@pytest.fixture
def dashboard(database_url: URL) -> Iterator[Connection]:
    with session_named(database_url, "dashboard") as connection:
        yield connection


def busy(connection: Connection, table: str, watcher: Engine) -> Callable[[], None]:
    """Hold ACCESS SHARE on ``table`` in a transaction, then run a long query: a dashboard at work.

    Returns what ends it: cancel the query, roll the transaction back.
    """
    pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    connection.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS SHARE MODE")

    def work() -> None:
        with contextlib.suppress(sa.exc.DBAPIError):  # cancelled when the test is done
            connection.exec_driver_sql("SELECT pg_sleep(60)").all()

    worker = threading.Thread(target=work)
    worker.start()
    with watcher.connect() as probe:
        for _ in range(500):
            state = probe.execute(sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar()
            probe.rollback()
            if state == "active":
                break
            time.sleep(0.01)

    def stop() -> None:
        with watcher.connect() as probe:
            probe.execute(sa.text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
        worker.join()
        connection.rollback()

    return stop


def unclocked(text: str) -> str:
    return re.sub(r" for \d+(\.\d+)?(s|min|h),", " for N,", text)


def assert_names_the_busy_dashboard(message: str, pid: int) -> None:
    assert "\n" not in message and "has gone" not in message
    for needle in [f"pid {pid}", "'dashboard'", "active for", "query 'SELECT pg_sleep(60)'", "pg_terminate_backend"]:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_a_busy_blocker_is_named_and_db_locks_agrees(
    database_url: URL, alembic_config: Config, engine: Engine, dashboard: Connection
) -> None:
    """DROP INDEX names an index but locks its table, which the dashboard reads."""
    command.upgrade(alembic_config, "head")
    pid = dashboard.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    stop = busy(dashboard, "songs", engine)
    try:
        before = snapshot(engine)
        alembic_config.attributes["lock_timeout"] = "200ms"
        with pytest.raises(CommandError) as caught:
            command.downgrade(alembic_config, "0004")
        error = caught.value.__cause__
        assert isinstance(error, LockTimeoutError)
        assert str(error).startswith("'DROP INDEX ix_songs_genre' waited 200ms for a lock and gave up: blocked by")
        assert_names_the_busy_dashboard(str(error), pid)
        assert [b.pid for b in error.blockers] == [pid]
        assert snapshot(engine) == before
        locks = run_cli("playlist-tools", "db", "locks", env={"DATABASE_URL": url_text(database_url)})
        assert locks.returncode == 0, locks.stderr
        holding = [line for line in locks.stdout.splitlines() if line.startswith(f"pid {pid} ")]
        assert len(holding) == 1, locks.stdout
        # The same description as the error's, but for the seconds, which go on counting.
        assert unclocked(holding[0]) == unclocked(error.blockers[0].describe()) + " holds table locks"
        assert_names_the_busy_dashboard(locks.stdout.replace("\n", " "), pid)
    finally:
        stop()


def test_a_busy_blocker_of_a_table_the_statement_does_not_name(
    tmp_path: Path, database_url: URL, engine: Engine, dashboard: Connection
) -> None:
    """TRUNCATE ... CASCADE locks the tables that reference the one it names."""
    ini = scratch_history(tmp_path, failing=None)
    add_revision(ini, "truncate", "Empties the playlists", 'op.execute("TRUNCATE playlists CASCADE")')
    config = scratch_config(ini, database_url)
    command.upgrade(config, "0005")
    pid = dashboard.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    stop = busy(dashboard, "playlist_song_association", engine)
    try:
        config.attributes["lock_timeout"] = "200ms"
        with pytest.raises(CommandError) as caught:
            command.upgrade(config, "0006")
        error = caught.value.__cause__
        assert isinstance(error, LockTimeoutError)
        assert_names_the_busy_dashboard(str(error), pid)
    finally:
        stop()




# -- 5. bounded messages -----------------------------------------------------------------

SHOUTS = """
    op.execute(sa.text("INSERT INTO playlists (title) VALUES (:title)").bindparams(title="param-value-never-shown"))
    op.execute("DO $$ BEGIN RAISE EXCEPTION '%', repeat('x', 5000); END $$")
"""



def test_a_failed_migration_message_is_short_and_has_no_sql(tmp_path: Path, database_url: URL) -> None:
    ini = scratch_history(tmp_path, failing=None)
    add_revision(ini, "shouts", "Fails with a long message, after binding a parameter", SHOUTS)
    config = scratch_config(ini, database_url)
    with pytest.raises(MigrationError) as caught:
        migrations.upgrade(config)
    message = str(caught.value)
    assert message.startswith("the migration failed and was rolled back (the database stays at 0005): xxx")
    assert len(message) <= LIMIT and "\n" not in message
    assert "param-value-never-shown" not in message and "[SQL:" not in message and "RAISE" not in message


def test_translate_caps_what_it_quotes() -> None:
    script = history.script_directory(history.config())
    long = CommandError("something went wrong\n" + "with details " * 500)
    message = str(history.translate(long, script))
    assert len(message) <= LIMIT and "\n" not in message and message.startswith("something went wrong with")
    huge = "n" * 5000
    with pytest.raises(RevisionError) as caught:
        migrations.history(None, f"{huge}:head")
    assert len(str(caught.value)) <= LIMIT and "known revisions" in str(caught.value)
