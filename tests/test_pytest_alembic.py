"""pytest-alembic's built-in checks on our migration history (issue 11).

The four default checks of pytest-alembic are imported by name, the way its
docs describe for projects that do not pass ``--test-alembic``: one head,
base to head, models match the DDL at head, and every revision down and up
again. Each runs on a fresh database (``database_url`` in conftest.py).

The two fixtures pytest-alembic reads are ours:

* ``alembic_config`` is conftest.py's alembic :class:`~alembic.config.Config`
  (the repo's alembic.ini on this test's database), which pytest-alembic
  accepts as it is;
* ``alembic_engine`` (below) is conftest.py's engine on the same database.
  pytest-alembic puts that Engine into ``config.attributes["connection"]``,
  and env.py borrows one connection from it for each run.

The tests after the imported ones check what the imported ones take on
trust: that env.py really gets the Engine and migrates on it with our
migration lock and ``lock_timeout``, and that the model and up/down checks
fail when they should.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_alembic
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from pytest_alembic.plugin.error import AlembicTestFailure
from pytest_alembic.runner import MigrationContext
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from pytest_alembic.tests.experimental import test_all_models_register_on_metadata, test_downgrade_leaves_no_trace
from sqlalchemy.engine import URL, Connection, Engine

from playlist_tools import models
from playlist_tools.migrations import locks

from helpers import scratch_config, scratch_history

# Imported to be collected here: pytest-alembic's own tests, run against our history. The two experimental
# ones need env.py to look like Alembic's template: `target_metadata` at module level (found by a clean
# import in a subprocess), and `.connect()` called on a connectable that is not a Connection (pytest-alembic
# passes a wrapper whose connect() yields the connection it holds in a transaction).
__all__ = [
    "test_all_models_register_on_metadata",
    "test_downgrade_leaves_no_trace",
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]

IS_MIGRATION_LOCK = "locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = :key AND objsubid = 1"
"""A pg_locks row of the migration lock: a bigint advisory key is split into classid and objid, objsubid 1."""


@pytest.fixture
def alembic_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """pytest-alembic's database handle: this test's engine (conftest.py disposes of it).

    On a Unix socket (the embedded server), the socket directory goes to ``$PGHOST`` instead of the URL:
    ``test_all_models_register_on_metadata`` writes the URL into an ini in a subprocess, whose
    interpolation refuses the ``%2F`` of ``?host=%2Ftmp...``; libpq reads ``$PGHOST`` there and here alike.
    """
    host = engine.url.query.get("host")
    if not (isinstance(host, str) and host.startswith("/")):
        yield engine
        return
    monkeypatch.setenv("PGHOST", host)
    hostless = sa.create_engine(engine.url.difference_update_query(["host"]))
    try:
        yield hostless
    finally:
        hostless.dispose()


def _head(config: Config) -> str:
    return ScriptDirectory.from_config(config).get_current_head() or "base"


def _version(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def _lock_holders(engine: Engine) -> int:
    """Sessions holding the migration lock on this test's database (advisory locks are per database)."""
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks JOIN pg_database ON pg_database.oid = pg_locks.database "
                f"WHERE datname = current_database() AND {IS_MIGRATION_LOCK}"
            ),
            {"key": locks.MIGRATION_LOCK_KEY},
        ).scalar_one()


def test_runner_migrates_on_the_engine_under_our_lock(
    alembic_runner: MigrationContext, alembic_engine: Engine, alembic_config: Config
) -> None:
    seen: list[tuple[str, str, int]] = []

    def record(*, ctx: object, step: object, heads: object, run_args: object) -> None:
        connection: Connection = ctx.connection  # type: ignore[attr-defined]
        timeout = connection.exec_driver_sql("SHOW lock_timeout").scalar_one()
        held = connection.execute(
            sa.text(f"SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND granted AND {IS_MIGRATION_LOCK}"),
            {"key": locks.MIGRATION_LOCK_KEY},
        ).scalar_one()
        seen.append((step.up_revision_id, timeout, held))  # type: ignore[attr-defined]

    given = alembic_runner.command_executor.alembic_config
    assert given is alembic_config  # pytest-alembic kept our Config, so env.py reads our attributes
    assert given.attributes["connection"] is alembic_engine  # an Engine, not a Connection (issue 11)
    given.attributes["on_version_apply"] = [record]
    given.attributes["lock_timeout"] = "1500ms"  # not the default, so seeing it proves env.py set it

    alembic_runner.migrate_up_to("heads", return_current=False)

    history = [rev for rev in alembic_runner.history.revisions if rev not in ("base", "heads")]
    assert seen == [(rev, "1500ms", 1) for rev in history]
    assert _version(alembic_engine) == [_head(alembic_config)]  # committed, seen from another connection
    assert _lock_holders(alembic_engine) == 0  # released after the run
    assert alembic_engine.pool.checkedout() == 0  # the lent connection went back to the pool


def test_model_check_notices_a_table_the_history_lacks(alembic_runner: MigrationContext) -> None:
    metadata = sa.MetaData()
    for table in models.Base.metadata.tables.values():
        table.to_metadata(metadata)
    sa.Table("pytest_alembic_probe", metadata, sa.Column("id", sa.Integer, primary_key=True))
    # pytest-alembic set target_metadata to None (env.py then uses the models); give it ours with one table more.
    alembic_runner.command_executor.alembic_config.attributes["target_metadata"] = metadata

    with pytest.raises(AlembicTestFailure, match="out of sync") as failure:
        test_model_definitions_match_ddl(alembic_runner)
    assert "create_table('pytest_alembic_probe'" in str(failure.value)


def test_up_down_check_notices_a_broken_downgrade(tmp_path: Path, database_url: URL, alembic_engine: Engine) -> None:
    ini = scratch_history(tmp_path, failing=None)
    (script,) = (tmp_path / "alembic" / "versions").glob("0003_*.py")
    good = "op.drop_column('playlist_song_association', 'position')"
    assert good in script.read_text(), "0003's downgrade changed; update this test's broken copy of it"
    script.write_text(script.read_text().replace(good, "op.drop_column('playlist_song_association', 'no_such')"))
    config = scratch_config(ini, database_url)

    with pytest_alembic.runner(config=pytest_alembic.Config.from_raw_config(config), engine=alembic_engine) as runner:
        with pytest.raises(AlembicTestFailure, match="Failed to downgrade") as failure:
            test_up_down_consistency(runner)
    assert "Failing Revision:\n    0002" in str(failure.value)  # downgrading to 0002 runs 0003's downgrade
    assert "no_such" in str(failure.value)
    assert _version(alembic_engine) == ["0003"]  # the failed downgrade was rolled back, nothing half-done
    assert _lock_holders(alembic_engine) == 0  # and the migration lock released despite the failure


def test_env_migrates_the_connection_it_is_given(alembic_config: Config, alembic_engine: Engine) -> None:
    """A Connection in ``config.attributes["connection"]`` is the one migrated: no second session of env.py's own."""
    heard: list[tuple[int, bool]] = []

    def record(*, ctx: object, step: object, heads: object, run_args: object) -> None:
        used: Connection = ctx.connection  # type: ignore[attr-defined]
        heard.append((used.exec_driver_sql("SELECT pg_backend_pid()").scalar_one(), used is given))

    with alembic_engine.connect() as given:
        pid = given.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        given.rollback()
        alembic_config.attributes["connection"] = given
        alembic_config.attributes["on_version_apply"] = [record]
        command.upgrade(alembic_config, "0002")
        assert not given.closed  # the caller's: left open
    assert heard == [(pid, True), (pid, True)]
    assert _version(alembic_engine) == ["0002"]
