"""Eight processes run ``alembic upgrade head`` on one fresh database at the same moment.

Exactly one applies each revision; the others wait for the migration lock,
then find the database at head. Each test first holds the migration lock
itself until all eight processes are connected, so they really contend
instead of finishing one by one while the next is still importing.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from playlist_tools import db
from playlist_tools.migrations import locks

from helpers import REPO_ROOT, scratch_history, url_text

PROCESSES = 8
HISTORY = ["0001", "0002", "0003", "0004", "0005"]

# The API way in a child process: alembic.command with a Config, as a notebook would.
API_SCRIPT = """
import sys
from alembic import command
from alembic.config import Config
command.upgrade(Config(sys.argv[1]), "head")
"""

# The notebook API: playlist_tools.migrations keeps INFO logs out of notebook
# outputs, so the child turns them on to show what it ran; it also prints the
# revisions the call says it applied.
MIGRATIONS_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s [%(name)s] %(message)s")
from playlist_tools import migrations
applied = migrations.upgrade(migrations.config(ini=sys.argv[1]), "head")
print("reported:", " ".join(applied["rev"]))
"""

Launcher = Callable[[Path], list[str]]
LAUNCHERS: dict[str, Launcher] = {
    "cli": lambda ini: [str(Path(sys.executable).parent / "alembic"), "-c", str(ini), "upgrade", "head"],
    "api": lambda ini: [sys.executable, "-c", API_SCRIPT, str(ini)],
    "migrations": lambda ini: [sys.executable, "-c", MIGRATIONS_SCRIPT, str(ini)],
}


def migration_sessions(connection: sa.Connection) -> int:
    return connection.execute(
        sa.text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = :name"
        ),
        {"name": f"{db.APPLICATION_NAME} migrations"},
    ).scalar_one()


def race(
    database_url: URL, engine: Engine, argv: list[str], processes: int
) -> tuple[list[subprocess.CompletedProcess[str]], float, float]:
    """Start ``processes`` copies of argv together.

    Returns their results, the wall time from start to the last exit, and
    the part of it after the gate opened (the migrations themselves).
    """
    env = {
        **os.environ,
        "DATABASE_URL": url_text(database_url),
        # The gate below holds the lock while idle, which waiters would take for a
        # stuck migration after lock_timeout; give slow process start-up room.
        locks.LOCK_TIMEOUT_ENV: "60s",
    }
    with engine.connect() as gate:
        gate.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": locks.MIGRATION_LOCK_KEY})
        gate.commit()
        started = time.perf_counter()
        children = [
            subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(processes)
        ]
        deadline = time.monotonic() + 60
        while migration_sessions(gate) < processes and time.monotonic() < deadline:
            gate.rollback()
            if any(child.poll() is not None for child in children):
                break  # one died early: let the assertions below show why
            time.sleep(0.05)
        gate.rollback()
        gate.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": locks.MIGRATION_LOCK_KEY})
        gate.commit()
        released = time.perf_counter()
        results = []
        for child in children:
            out, err = child.communicate(timeout=120)
            results.append(subprocess.CompletedProcess(child.args, child.returncode, out, err))
    finished = time.perf_counter()
    return results, finished - started, finished - released


def applied(results: list[subprocess.CompletedProcess[str]]) -> collections.Counter[str]:
    """How many times each revision was applied, from the "Running upgrade a -> b" log lines."""
    text = "".join(result.stderr for result in results)
    return collections.Counter(re.findall(r"Running upgrade \S* ?-> (\w+)", text))


@pytest.mark.parametrize("way", sorted(LAUNCHERS))
def test_eight_simultaneous_upgrades_apply_each_revision_once(
    way: str, database_url: URL, engine: Engine, record_property: Callable[[str, object], None]
) -> None:
    results, wall, migrating = race(database_url, engine, LAUNCHERS[way](REPO_ROOT / "alembic.ini"), PROCESSES)

    errors = [r.stderr for r in results if r.returncode != 0 or "Traceback" in r.stderr or "ERROR" in r.stderr]
    assert errors == [], errors[0] if errors else ""
    assert applied(results) == {revision: 1 for revision in HISTORY}
    waited = sum(r.stderr.count("waiting for the migration lock") for r in results)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == ["0005"]
        assert migration_sessions(connection) == 0
    figures = {
        "way": way, "processes": PROCESSES, "revisions applied": sum(applied(results).values()),
        "errors": len(errors), "processes that waited": waited,
        "wall seconds": round(wall, 2), "after the gate opened": round(migrating, 2),
    }
    record_property("concurrency", figures)
    print(figures)


def test_each_process_reports_only_what_it_applied(database_url: URL, engine: Engine) -> None:
    """migrations.upgrade's frame lists what this call applied (via on_version_apply), not what others did."""
    results, _, _ = race(database_url, engine, LAUNCHERS["migrations"](REPO_ROOT / "alembic.ini"), 3)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    reported = collections.Counter(
        rev
        for r in results
        for line in r.stdout.splitlines()
        if line.startswith("reported:")
        for rev in line.split()[1:]
    )
    assert reported == applied(results) == {revision: 1 for revision in HISTORY}


def test_simultaneous_failing_upgrades_all_fail_cleanly(tmp_path: Path, database_url: URL, engine: Engine) -> None:
    """A revision that fails: each process in turn gets the lock, fails, releases it; none hangs."""
    ini = scratch_history(tmp_path)
    results, _, _ = race(database_url, engine, LAUNCHERS["cli"](ini), 3)
    for result in results:
        assert result.returncode != 0
        assert "Traceback" not in result.stderr + result.stdout
        assert (
            "FAILED: the migration failed and was rolled back (the database stays at 0005): division by zero"
            in result.stdout
        )
    assert applied(results) == {**{revision: 1 for revision in HISTORY}, "0006": 3}
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == ["0005"]
        held = connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"key": locks.MIGRATION_LOCK_KEY},
        ).scalar_one()
    assert held == 0
