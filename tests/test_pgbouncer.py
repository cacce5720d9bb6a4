"""Behind PgBouncer in transaction pooling mode: migrations serialised, reads working, no session state left.

These run where ``$PLAYLIST_TOOLS_TEST_PGBOUNCER_URL`` names a database
behind PgBouncer in ``pool_mode = transaction`` that the tests may empty
(``.ci/shared-databases`` starts one:
``.ci/shared-databases .venv/bin/python -m pytest -m shared -p no:nbval tests/test_pgbouncer.py``),
and are skipped elsewhere. ``$PLAYLIST_TOOLS_TEST_PGBOUNCER_DIRECT_URL``,
the same database and role straight to PostgreSQL, lets a test look at
the server connections PgBouncer holds; tests that need it are skipped
without it. The role needs no superuser or CREATEDB: it owns its database.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from playlist_tools import db, frames
from playlist_tools.migrations import locks

from helpers import REPO_ROOT, add_revision, run_cli, scratch_history, url_text

pytestmark = pytest.mark.shared

PGBOUNCER_URL_ENV = "PLAYLIST_TOOLS_TEST_PGBOUNCER_URL"
DIRECT_URL_ENV = "PLAYLIST_TOOLS_TEST_PGBOUNCER_DIRECT_URL"
PROCESSES = 8
HISTORY = [script.revision for script in reversed(list(
    ScriptDirectory.from_config(Config(str(REPO_ROOT / "alembic.ini"))).walk_revisions()))]


def _url(variable: str) -> URL:
    text = os.environ.get(variable, "").strip()
    if not text:
        pytest.skip(f"${variable} is not set: run under .ci/shared-databases, which starts PgBouncer")
    return db.parse_url(text, source=variable)


@pytest.fixture
def pooled_url() -> Iterator[URL]:
    """The database behind PgBouncer, emptied first (its public schema made anew).

    Whatever an earlier test left on PgBouncer's server connections (a
    session-level setting, prepared statement or advisory lock) is cleared first.
    """
    url = _url(PGBOUNCER_URL_ENV)
    direct = _url(DIRECT_URL_ENV) if os.environ.get(DIRECT_URL_ENV) else None
    on_each_server_connection(url, direct, "RESET ALL; DEALLOCATE ALL; SELECT pg_advisory_unlock_all()")
    with db.connection(url) as conn, conn.begin():
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    yield url


@pytest.fixture
def direct_url(pooled_url: URL) -> URL:
    return _url(DIRECT_URL_ENV)


def alembic(url: URL, *argv: str) -> subprocess.CompletedProcess[str]:
    """The plain ``alembic`` CLI from the repo root, DATABASE_URL at ``url``."""
    result = run_cli("alembic", *argv, env={db.DATABASE_URL_ENV: url_text(url)})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result


def versions(url: URL) -> list[str]:
    with db.connection(url) as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def versions_or_none(url: URL) -> list[str] | None:
    with db.connection(url) as conn:
        if conn.exec_driver_sql("SELECT to_regclass('alembic_version')").scalar_one() is None:
            return None
    return versions(url)


def on_each_server_connection(pooled: URL, direct: URL | None, sql: str) -> list[tuple[object, ...]]:
    """``sql``'s row on each server connection PgBouncer holds on the database (on one without ``direct``).

    As many pooled transactions as PgBouncer has server connections, all
    open at once, land one on each: PgBouncer lends an idle connection
    before it opens a new one.
    """
    servers = 1
    if direct is not None:
        with db.connection(direct) as conn:
            servers = max(1, conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND usename = current_user AND pid <> pg_backend_pid()")).scalar_one())
    clients: list[psycopg.Connection[tuple[object, ...]]] = []
    try:
        rows = []
        for _ in range(servers):
            clients.append(psycopg.connect(url_text(pooled), autocommit=True))
            clients[-1].execute("BEGIN")
            cursor = clients[-1].execute(sql)
            rows.append(cursor.fetchone() if cursor.description else ())
        for client in clients:
            client.execute("COMMIT")
        return rows  # type: ignore[return-value]
    finally:
        for client in clients:
            client.close()


def test_a_migration_leaves_no_session_state_on_pooled_connections(pooled_url: URL, direct_url: URL) -> None:
    with db.connection(direct_url) as conn:
        default = conn.exec_driver_sql("SHOW lock_timeout").scalar_one()
    alembic(pooled_url, "upgrade", "head")
    alembic(pooled_url, "current")
    seen = on_each_server_connection(
        pooled_url, direct_url, "SELECT pg_backend_pid(), setting, source FROM pg_settings WHERE name = 'lock_timeout'")
    assert seen, "PgBouncer holds no server connection after a migration"
    assert [(setting, source) for _, setting, source in seen] == [(default, "default")] * len(seen), seen


def test_reads_work_after_a_migration(pooled_url: URL, tmp_path: Path) -> None:
    alembic(pooled_url, "upgrade", "head")
    alembic(pooled_url, "current")
    engine = db.create_engine(pooled_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO songs (title, artist) VALUES ('So What', 'Miles Davis')")
        for _ in range(5):  # more reads than the pool has server connections: every one of them is tried
            for con in (pooled_url, engine):
                assert frames.read_frame("songs", con).title.tolist() == ["So What"]
                assert frames.read_frame("SELECT title FROM songs WHERE artist = :a", con,
                                         params={"a": "Miles Davis"}).title.tolist() == ["So What"]
    finally:
        engine.dispose()


def test_reads_ignore_session_settings_other_clients_left(pooled_url: URL) -> None:
    """Someone's session-level SET stays on a server connection; it is not the reader's, and not sent to ADBC."""
    direct = _url(DIRECT_URL_ENV) if os.environ.get(DIRECT_URL_ENV) else None
    on_each_server_connection(pooled_url, direct, "SELECT set_config('statement_timeout', '7s', false)")
    engine = db.create_engine(pooled_url)
    try:
        for con in (pooled_url, engine):
            assert frames.read_frame("SELECT 1 AS one", con).one.tolist() == [1]
    finally:
        engine.dispose()
        on_each_server_connection(pooled_url, direct, "RESET statement_timeout")


def test_eight_readers_at_once_through_pgbouncer(pooled_url: URL) -> None:
    """ADBC's round trips outside a transaction would land on different server connections under load."""
    alembic(pooled_url, "upgrade", "head")
    engine = db.create_engine(pooled_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO songs (title, artist) SELECT 'Song ' || i, 'Artist ' || mod(i, 7) "
                                 "FROM generate_series(1, 500) i")

        def reads(_: int) -> list[int]:
            return [len(frames.read_frame(*read, params=params))
                    for con in (pooled_url, engine) for _ in range(3)
                    for read, params in (
                        (("songs", con), None),
                        (("SELECT title FROM songs WHERE artist = :a", con), {"a": "Artist 3"}))]

        with concurrent.futures.ThreadPoolExecutor(PROCESSES) as pool:
            counts = list(pool.map(reads, range(PROCESSES)))
        assert counts == [[500, 72] * 6] * PROCESSES
    finally:
        engine.dispose()


def test_our_engines_prepare_no_statements_behind_pgbouncer(pooled_url: URL) -> None:
    """psycopg 3 prepares a statement run five times; a later run may reach a server that never saw it.

    (COMMIT, not ROLLBACK, between the runs: psycopg forgets its prepared statements at a ROLLBACK.)
    """
    query = sa.text("SELECT pg_backend_pid() + :n")
    engine = db.create_engine(pooled_url)
    held: list[psycopg.Connection[tuple[object, ...]]] = []
    try:
        with engine.connect() as conn:
            assert db.behind_pooler(conn)
            conn.commit()
            for _ in range(8):  # prepared on the server connection PgBouncer lends now, were it prepared
                server = conn.execute(query, {"n": 0}).scalar_one()
                conn.commit()
            while not held or held[-1].execute("SELECT pg_backend_pid()").fetchone() != (server,):
                held.append(psycopg.connect(url_text(pooled_url), autocommit=True))  # until one holds that server
                held[-1].execute("BEGIN")
            for other in held[:-1]:
                other.execute("COMMIT")  # the others are free again: the next run lands on one of them
            assert conn.execute(query, {"n": 0}).scalar_one() != server
            for _ in range(3):
                conn.execute(query, {"n": 1})
                conn.commit()
    finally:
        for other in held:
            other.close()
        engine.dispose()


# -- eight at once ----------------------------------------------------------------------------------


def _race(pooled_url: URL, tmp_path: Path) -> tuple[list[subprocess.CompletedProcess[str]], int]:
    """Eight ``alembic upgrade head`` started while the migration lock is held, all released together.

    The gate holds the lock in an open transaction through PgBouncer, as a
    migration behind it does, until every child says it is waiting (or one
    has ended), so they really contend. Returns the results and how many waited.
    """
    env = {**os.environ, db.DATABASE_URL_ENV: url_text(pooled_url), locks.LOCK_TIMEOUT_ENV: "60s"}
    argv = [str(Path(sys.executable).parent / "alembic"), "upgrade", "head"]
    logs = [tmp_path / f"child{i}.log" for i in range(PROCESSES)]
    with db.connection(pooled_url) as gate:
        gate.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": locks.MIGRATION_LOCK_KEY})
        children = []
        for log in logs:
            with log.open("w") as err:
                children.append(subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                                 stderr=err, text=True))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(
                "waiting for the migration lock" in log.read_text() or child.poll() is not None
                for log, child in zip(logs, children, strict=True)):
            time.sleep(0.1)
        waited = sum("waiting for the migration lock" in log.read_text() for log in logs)
        gate.rollback()  # the gate opens
    results = []
    for child, log in zip(children, logs, strict=True):
        child.wait(timeout=180)
        results.append(subprocess.CompletedProcess(child.args, child.returncode, "", log.read_text()))
    return results, waited


def test_eight_simultaneous_upgrades_through_pgbouncer_apply_each_revision_once(
        pooled_url: URL, tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    results, waited = _race(pooled_url, tmp_path)

    errors = [r.stderr for r in results if r.returncode != 0 or "Traceback" in r.stderr or "ERROR" in r.stderr]
    assert errors == [], errors[0] if errors else ""
    assert waited == PROCESSES  # they really contended
    text = "".join(result.stderr for result in results)
    applied = collections.Counter(re.findall(r"Running upgrade \S* ?-> (\w+)", text))
    assert applied == {revision: 1 for revision in HISTORY}
    assert versions(pooled_url) == [HISTORY[-1]]
    record_property("pgbouncer concurrency", {"processes": PROCESSES, "errors": len(errors),
                                              "revisions applied": sum(applied.values()), "waited": waited})


def test_a_stuck_holder_behind_pgbouncer_is_named_in_one_line(pooled_url: URL) -> None:
    with db.connection(pooled_url) as gate:
        gate.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": locks.MIGRATION_LOCK_KEY})
        holder = gate.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        time.sleep(0.3)  # idle in transaction for longer than the lock timeout below
        result = run_cli("alembic", "upgrade", "head",
                         env={db.DATABASE_URL_ENV: url_text(pooled_url), locks.LOCK_TIMEOUT_ENV: "200ms"})
        gate.rollback()
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("FAILED: another migration holds the migration lock"), result.stdout + result.stderr
    assert f"pid {holder}" in last
    assert versions_or_none(pooled_url) is None  # nothing ran


def test_a_failing_migration_behind_pgbouncer_leaves_the_database_as_it_was(pooled_url: URL, tmp_path: Path) -> None:
    """Behind a pooler the run is one transaction: a failure in its last revision undoes the whole run."""
    ini = scratch_history(tmp_path)  # the repo's history plus a revision that fails
    result = run_cli("alembic", "-c", str(ini), "upgrade", "head", env={db.DATABASE_URL_ENV: url_text(pooled_url)})
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("FAILED: the migration failed and was rolled back (the database stays at base)"), \
        result.stdout + result.stderr
    assert versions_or_none(pooled_url) is None
    alembic(pooled_url, "upgrade", "head")  # and the lock was let go
    assert versions(pooled_url) == [HISTORY[-1]]


def test_a_migration_outside_a_transaction_behind_pgbouncer_is_refused_in_one_line(
        pooled_url: URL, tmp_path: Path) -> None:
    """CREATE INDEX CONCURRENTLY cannot run in the one transaction a pooled run is: one line, nothing applied."""
    ini = scratch_history(tmp_path, failing=None)
    add_revision(ini, "concurrent_index", "Index on album, concurrently", """
        with op.get_context().autocommit_block():
            op.create_index("ix_songs_album", "songs", ["album"], postgresql_concurrently=True)
    """, rev=f"{int(HISTORY[-1]) + 1:04d}")
    result = run_cli("alembic", "-c", str(ini), "upgrade", "head", env={db.DATABASE_URL_ENV: url_text(pooled_url)})
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("FAILED: a migration runs statements outside a transaction (autocommit_block"), \
        result.stdout + result.stderr
    assert "straight at PostgreSQL" in last
    assert versions_or_none(pooled_url) is None
