"""Blocked migrations: lock_timeout, the blocking session named, the migration lock released."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection, Engine

from playlist_tools import db
from playlist_tools.db import activity
from playlist_tools.errors import LockTimeoutError
from playlist_tools.migrations import locks

from helpers import run_cli, scratch_config, scratch_history, session_named, snapshot, url_text


@pytest.fixture
def notebook(database_url: URL) -> Iterator[Connection]:
    """A connection as a notebook leaves it: a SELECT on playlists, then idle in transaction."""
    with session_named(database_url, "analysis.ipynb") as connection:
        yield connection


def pid_of(connection: Connection) -> int:
    return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def version(engine: Engine) -> str:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()


def advisory_locks(connection: Connection) -> list[int]:
    """pids holding our migration lock on this database."""
    return list(connection.execute(sa.text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :key AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ), {"key": locks.MIGRATION_LOCK_KEY}).scalars())


def test_blocked_migration_names_the_notebook_and_how_to_release_it(
    alembic_config: Config, engine: Engine, notebook: Connection
) -> None:
    command.upgrade(alembic_config, "0001")
    blocker = pid_of(notebook)
    notebook.execute(sa.text("SELECT count(*) FROM playlists")).scalar_one()
    before = snapshot(engine)
    alembic_config.attributes["lock_timeout"] = "300ms"

    with pytest.raises(CommandError) as caught:
        command.upgrade(alembic_config, "0002")

    error = caught.value.__cause__
    assert isinstance(error, LockTimeoutError)
    message = str(error)
    assert "\n" not in message
    for needle in [
        "ALTER TABLE playlists ADD COLUMN description TEXT",
        "waited 300ms",
        f"pid {blocker}",
        "'analysis.ipynb'",
        "idle in transaction for",
        "SELECT count(*) FROM playlists",
        ".rollback()",
        f"pg_terminate_backend(pid) for pid {blocker}",
        "PLAYLIST_TOOLS_LOCK_TIMEOUT",
    ]:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert [b.pid for b in error.blockers] == [blocker]
    assert snapshot(engine) == before

    notebook.rollback()  # what the message says to do
    command.upgrade(alembic_config, "0002")
    assert version(engine) == "0002"


def test_blocked_migration_via_cli_is_one_line(database_url: URL, engine: Engine, notebook: Connection) -> None:
    env = {"DATABASE_URL": url_text(database_url), "PLAYLIST_TOOLS_LOCK_TIMEOUT": "200ms"}
    assert run_cli("alembic", "upgrade", "0001", env=env).returncode == 0
    blocker = pid_of(notebook)
    notebook.execute(sa.text("SELECT * FROM playlists")).all()
    result = run_cli("alembic", "upgrade", "head", env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    last = [line for line in result.stdout.splitlines() if line.strip()][-1]
    assert last.startswith("FAILED: 'ALTER TABLE playlists ADD COLUMN description TEXT' waited 200ms")
    assert f"pid {blocker}" in last and "'SELECT * FROM playlists'" in last
    assert version(engine) == "0001"


def test_lock_timeout_is_set_for_migrations_and_restored(alembic_config: Config, engine: Engine) -> None:
    seen: list[str] = []
    with engine.connect() as connection:
        alembic_config.attributes["connection"] = connection
        alembic_config.attributes["lock_timeout"] = "1500ms"
        original = connection.exec_driver_sql("SHOW lock_timeout").scalar_one()
        connection.commit()

        @sa.event.listens_for(connection, "before_cursor_execute")
        def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if statement.strip().startswith("CREATE TABLE playlists"):
                cursor.execute("SHOW lock_timeout")
                seen.append(cursor.fetchone()[0])

        command.upgrade(alembic_config, "head")
        assert seen == ["1500ms"]
        assert connection.exec_driver_sql("SHOW lock_timeout").scalar_one() == original
        assert advisory_locks(connection) == []


def test_lock_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(locks.LOCK_TIMEOUT_ENV, "2min")
    assert locks.lock_timeout_ms() == 120_000
    monkeypatch.delenv(locks.LOCK_TIMEOUT_ENV)
    assert locks.lock_timeout_ms() == 10_000


def test_stuck_migration_lock_holder_is_named(alembic_config: Config, engine: Engine, notebook: Connection) -> None:
    """Someone holds the migration lock and does nothing: give up after lock_timeout, naming them."""
    notebook.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": locks.MIGRATION_LOCK_KEY})
    notebook.commit()
    alembic_config.attributes["lock_timeout"] = "200ms"
    with pytest.raises(CommandError) as caught:
        command.upgrade(alembic_config, "head")
    message = str(caught.value)
    assert isinstance(caught.value.__cause__, LockTimeoutError)
    assert "holds the migration lock" in message and f"pid {pid_of(notebook)}" in message
    assert "pg_terminate_backend" in message and "\n" not in message
    assert sa.inspect(engine).get_table_names() == []


def test_busy_migration_lock_holder_is_waited_for(alembic_config: Config, engine: Engine, notebook: Connection) -> None:
    """A holder that is working (here: sleeping in a query) is waited for, past lock_timeout."""
    notebook.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": locks.MIGRATION_LOCK_KEY})
    notebook.commit()
    holder = pid_of(notebook)
    notebook.commit()
    worker = threading.Thread(
        target=lambda: notebook.execute(
            sa.text("SELECT pg_sleep(1), pg_advisory_unlock(:key)"), {"key": locks.MIGRATION_LOCK_KEY}
        )
    )
    worker.start()
    with engine.connect() as watcher:
        for _ in range(100):
            state = watcher.execute(
                sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": holder}
            ).scalar()
            watcher.rollback()
            if state == "active":
                break
            time.sleep(0.01)
    alembic_config.attributes["lock_timeout"] = "200ms"
    command.upgrade(alembic_config, "head")  # waits about a second, longer than lock_timeout
    worker.join()
    assert version(engine) == "0005"


def test_migration_lock_released_when_a_migration_fails(tmp_path: Path, database_url: URL, engine: Engine) -> None:
    config = scratch_config(scratch_history(tmp_path), database_url)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        with pytest.raises(CommandError, match="division by zero"):
            command.upgrade(config, "head")
        assert not connection.in_transaction()
        assert advisory_locks(connection) == [], "the failed run kept the migration lock"
        connection.rollback()
    # Another process (here: another connection) can migrate at once.
    other = scratch_config(scratch_history(tmp_path / "again", failing=None), database_url)
    other.attributes["lock_timeout"] = "100ms"
    command.upgrade(other, "head")
    assert version(engine) == "0005"


def test_blocking_sessions_uses_pg_blocking_pids(database_url: URL, engine: Engine, notebook: Connection) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE scratch (x int)"))
    notebook.execute(sa.text("LOCK TABLE scratch IN ACCESS EXCLUSIVE MODE"))
    waiter_engine = db.create_engine(database_url)
    waiter = waiter_engine.connect()
    waiter_pid = pid_of(waiter)
    waiter.commit()
    thread = threading.Thread(target=lambda: waiter.execute(sa.text("SELECT * FROM scratch")).all())
    thread.start()
    try:
        with engine.connect() as probe:
            for _ in range(200):
                found = activity.blocking_sessions(probe, waiter_pid)
                probe.rollback()
                if found:
                    break
                time.sleep(0.01)
        assert [s.pid for s in found] == [pid_of(notebook)]
        assert found[0].application_name == "analysis.ipynb"
        assert found[0].state == "idle in transaction"
    finally:
        notebook.rollback()
        thread.join()
        waiter.close()
        waiter_engine.dispose()


def test_in_a_callers_transaction_the_lock_and_timeout_end_with_it(alembic_config: Config, engine: Engine) -> None:
    """Inside the caller's transaction both are transaction-level: held until COMMIT, then gone."""
    with engine.connect() as observer:
        with engine.connect() as connection:
            original = connection.exec_driver_sql("SHOW lock_timeout").scalar_one()
            connection.commit()
            transaction = connection.begin()
            alembic_config.attributes.update(connection=connection, lock_timeout="2s")
            command.upgrade(alembic_config, "head")
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar_one() == "2s"
            assert advisory_locks(observer) == [pid_of(connection)]
            observer.rollback()
            transaction.commit()
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar_one() == original
            assert advisory_locks(observer) == []
    assert version(engine) == "0005"


def test_a_migration_leaves_no_session_setting_behind(alembic_config: Config, engine: Engine) -> None:
    """lock_timeout is set per transaction, never for the session, so nothing is "restored" afterwards either.

    A session-level restore would leave ``source = 'session'`` (and, behind a
    pooler, land on another server connection than the one it restores).
    """
    setting = "SELECT setting, source FROM pg_settings WHERE name = 'lock_timeout'"
    with engine.connect() as connection:
        before = connection.exec_driver_sql(setting).one()
        connection.commit()
        alembic_config.attributes.update(connection=connection, lock_timeout="1500ms")
        command.upgrade(alembic_config, "head")
        command.downgrade(alembic_config, "-1")
        assert connection.exec_driver_sql(setting).one() == before
        assert tuple(before)[1] != "session"
