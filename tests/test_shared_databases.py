"""Shared databases as teams have them (issue 18): least privilege, TLS, PgBouncer, a hot standby.

These tests need the servers ``.ci/shared-databases`` starts (``.ci/run``
runs them that way)::

    .ci/shared-databases .venv/bin/python -m pytest -m shared -p no:nbval tests/test_shared_databases.py

Without its ``PLAYLIST_TOOLS_TEST_*_URL`` variables they are skipped, saying
so. Each setup runs the issue's twelve steps, as a team pointing
``DATABASE_URL`` at its database would (the ``alembic`` CLI as a user types
it, the rest from Python). Every role here is an owner without superuser,
CREATEDB or CREATEROLE. On the standby, every step that writes must be
refused in one line that says it is a read-only standby and to use the
primary; the others must work.

The focused tests below them each pin one failure of the issue's "What
broke" list.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from playlist_tools import db, frames, migrations, sample, schema
from playlist_tools.errors import FrameError, MigrationError, SampleError

from helpers import REPO_ROOT

# server_url (conftest): the schema caches these runs leave on the embedded server are dropped at the end.
pytestmark = [pytest.mark.shared, pytest.mark.usefixtures("server_url")]

_HOW = "run under .ci/shared-databases (it starts the servers and sets the PLAYLIST_TOOLS_TEST_*_URL variables)"
_STANDBY_SAYS = "is a read-only standby (in recovery); point DATABASE_URL (or the URL you pass) at the primary"
_NO_CREATEDB = "may not create databases there (no CREATEDB)"


def _env_url(name: str) -> str:
    value = os.environ.get(f"PLAYLIST_TOOLS_TEST_{name}_URL", "").strip()
    if not value:
        pytest.skip(f"PLAYLIST_TOOLS_TEST_{name}_URL is not set: {_HOW}")
    return value


def _alembic(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """The ``alembic`` CLI from the repo root with ``DATABASE_URL`` at ``url``, as a user runs it."""
    return subprocess.run(
        [str(os.path.join(os.path.dirname(sys.executable), "alembic")), *argv],
        cwd=REPO_ROOT, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True, timeout=300,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def _refused_on_standby(done: subprocess.CompletedProcess[str]) -> None:
    """One ``FAILED:`` line (Alembic prints it on stdout) naming the standby and the fix; no traceback."""
    assert done.returncode != 0
    failed = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and _STANDBY_SAYS in failed[0], done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def _reset(url: str) -> None:
    """Drop what the role owns in its database (the tables of an earlier run), and nothing else.

    ``public`` comes back if it went too: another test may have made it anew, owned by this role.
    """
    with db.connection(url) as conn:
        conn.exec_driver_sql("DROP OWNED BY current_user")
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS public")
        conn.commit()


def _heads(url: str) -> str:
    return _ok(_alembic(url, "current")).strip()


def _songs(count: int = 2) -> pd.DataFrame:
    return pd.DataFrame({"title": [f"shared {i}" for i in range(count)], "artist": ["Ann"] * count})


# --- the twelve steps ------------------------------------------------------------------------------------


# Reads behind PgBouncer after a migration are issue 18's item 1, built on another branch that adds
# db.behind_pooler; until it is merged here, the PgBouncer run is an expected failure. Strict, and
# conditional on that function, so the mark goes away by itself with the fix.
_POOLER_FIXED = hasattr(db, "behind_pooler")


@pytest.mark.parametrize("setup", [
    "LEAST_PRIVILEGE", "TLS", "TLS_REQUIRE",
    pytest.param("PGBOUNCER", marks=pytest.mark.xfail(
        not _POOLER_FIXED, reason="issue 18 item 1: reads behind PgBouncer after a migration", strict=True)),
])
def test_twelve_steps_on_a_writable_setup(setup: str) -> None:
    url = _env_url(setup)
    _reset(url)
    _ok(_alembic(url, "upgrade", "head"))                                    # 1
    assert _heads(url) == "0005 (head)"                                      # 2
    _ok(_alembic(url, "downgrade", "-1"))                                    # 3
    assert _heads(url) == "0004"
    _ok(_alembic(url, "upgrade", "head"))                                    # 4
    assert frames.read_frame("SELECT 6 * 7 AS answer", url)["answer"].tolist() == [42]  # 5
    assert frames.read_frame("songs", url).empty                             # 6
    loaded = sample.load_sample(url, progress=False)                         # 7
    assert loaded.loc["songs", "total"] == 3503
    assert frames.write_frame(_songs(), "songs", url) == 2                   # 8
    assert frames.read_frame("SELECT count(*) AS n FROM songs", url)["n"].tolist() == [3505]
    _ok(_alembic(url, "downgrade", "-1"))                                    # 9
    plan = migrations.impact(migrations.config(url), "head")                 # 10
    assert plan[["revision", "operation", "table", "lock"]].values.tolist() == [
        ["0005", "create_index", "songs", "SHARE"]
    ]
    assert plan["rows"].tolist() == [3505]  # from the live database, not the replay
    assert _NO_CREATEDB in plan.attrs["measured_elsewhere"]
    _ok(_alembic(url, "upgrade", "head"))                                    # 11
    first = schema.at("0001", migrations.config(url))                        # 12
    assert "description" not in first.columns("playlists")["name"].tolist()
    assert _heads(url) == "0005 (head)"


@pytest.fixture(scope="module")
def standby() -> Iterator[str]:
    """The standby's URL, its database brought to head with the sample on the primary and replayed here."""
    url, primary = _env_url("STANDBY"), _env_url("STANDBY_PRIMARY")
    _reset(primary)
    _ok(_alembic(primary, "upgrade", "head"))
    sample.load_sample(primary, progress=False)
    with db.connection(primary) as conn:
        wanted = conn.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar_one()
    deadline = time.monotonic() + 60
    with db.connection(url) as conn:
        while not conn.exec_driver_sql("SELECT pg_last_wal_replay_lsn() >= %(lsn)s::pg_lsn", {"lsn": wanted}).scalar():
            conn.rollback()
            assert time.monotonic() < deadline, "the standby did not replay the primary's changes in 60 s"
            time.sleep(0.1)
    yield url


def test_twelve_steps_on_a_standby(standby: str) -> None:
    url = standby
    _refused_on_standby(_alembic(url, "upgrade", "head"))                    # 1
    assert _heads(url) == "0005 (head)"                                      # 2
    _refused_on_standby(_alembic(url, "downgrade", "-1"))                    # 3
    _refused_on_standby(_alembic(url, "upgrade", "head"))                    # 4
    assert frames.read_frame("SELECT count(*) AS n FROM songs", url)["n"].tolist() == [3503]  # 5
    assert len(frames.read_frame("playlists", url)) == 18                    # 6
    with pytest.raises(SampleError, match=_STANDBY_SAYS.replace("(", r"\(").replace(")", r"\)")):  # 7
        sample.load_sample(url, progress=False)
    with pytest.raises(FrameError, match=r"cannot write to songs: .* is a read-only standby \(in recovery\)"):  # 8
        frames.write_frame(_songs(), "songs", url)
    _refused_on_standby(_alembic(url, "downgrade", "-1"))                    # 9
    plan = migrations.impact(migrations.config(url), "0004")                 # 10: foresight works on a standby
    assert plan[["revision", "operation", "table"]].values.tolist() == [["0005", "drop_index", "songs"]]
    assert plan["rows"].tolist() == [3503]
    assert "it is a read-only standby (in recovery)" in plan.attrs["measured_elsewhere"]
    _refused_on_standby(_alembic(url, "upgrade", "head"))                    # 11
    assert "description" not in schema.at("0001", migrations.config(url)).columns("playlists")["name"].tolist()  # 12
    assert _heads(url) == "0005 (head)"
    assert _ok(_alembic(url, "history")).startswith("0004 -> 0005 (head)")


# --- each failure of "What broke" that is ours -------------------------------------------------------------


def test_standby_superuser_is_not_told_it_needs_createdb() -> None:
    """Before: impact and schema.at on a standby said the role "needs CREATEDB", also to the superuser."""
    url = _env_url("STANDBY_SUPERUSER")
    tables = schema.at("0001", migrations.config(url)).tables()["name"].tolist()
    assert "songs" in tables


def test_least_privilege_foresight_replays_on_the_embedded_server() -> None:
    """Before: impact, schema.at and affected_queries said "permission denied to create database"."""
    url = _env_url("LEAST_PRIVILEGE")
    _reset(url)
    _ok(_alembic(url, "upgrade", "0003"))
    cfg = migrations.config(url)
    where = db.scratch_server(url)
    assert where.url != sa.make_url(url) and _NO_CREATEDB in (where.elsewhere or "")
    assert "file_format" in schema.at("0004", cfg).columns("songs")["name"].tolist()
    affected = migrations.affected_queries(cfg, "head", {"formats": "SELECT media_type FROM songs"})
    assert affected.loc[affected["name"] == "formats", "status"].tolist() == ["breaks"]
    with db.connection(url) as conn:  # nothing was created on the user's server
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'playlist_tools%%'"
        ).scalar_one() == 0


def test_least_privilege_autogenerate_keeps_the_analysts_column_rule(tmp_path: object) -> None:
    """Autogenerate's analysts'-column rule replays the history; without CREATEDB it must still work."""
    url = _env_url("LEAST_PRIVILEGE")
    _reset(url)
    _ok(_alembic(url, "upgrade", "head"))
    with db.connection(url) as conn:
        conn.exec_driver_sql("ALTER TABLE songs ADD COLUMN analyst_note text")
        conn.commit()
    done = _alembic(url, "check")
    assert done.returncode == 0, done.stderr  # the analyst's column is not proposed for dropping
    assert "No new upgrade operations detected" in done.stdout + done.stderr


def test_standby_write_frame_is_not_called_a_lost_connection() -> None:
    """Before: "the connection was lost (cannot execute COPY during recovery) ... write again"."""
    url = _env_url("STANDBY")
    for driver_url in (url, url.replace("postgresql://", "postgresql+psycopg2://", 1)):
        with pytest.raises(FrameError) as refused:
            frames.write_frame(_songs(), "songs", driver_url)
        assert "connection was lost" not in str(refused.value) and "write again" not in str(refused.value)
        assert "read-only standby" in str(refused.value)


def test_standby_refuses_before_starting() -> None:
    """Before: the downgrade ran until DROP INDEX and said "fix the migration"; load_sample said "load again"."""
    url = _env_url("STANDBY")
    done = _alembic(url, "downgrade", "-1")
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "fix the migration" not in said and "Running downgrade" not in said
    with pytest.raises(SampleError) as refused:
        sample.load_sample(url, progress=False)
    assert "load again" not in str(refused.value)
    with db.connection(url) as conn:  # the API with the caller's own connection is refused the same way
        with pytest.raises(MigrationError, match="read-only standby"):
            migrations.downgrade(migrations.config(connection=conn), "-1")
        assert not conn.in_transaction()
