"""No step destroys data without consent: upgrades and downgrades, from the plain CLI and the API.

The count is taken inside env.py, after the migration lock, on the migration
connection (playlist_tools.migrations._data_loss); these tests drive it from
every door and prove that a migration holding the lock cannot slip values
in between the count and the run.
"""

from __future__ import annotations

import logging
import threading

import pytest
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, migrations
from playlist_tools.errors import DataLossError
from playlist_tools.migrations import locks
from playlist_tools.workspace import Workspace

from helpers import add_revision, run_cli, snapshot, url_text

DESCRIBED = "INSERT INTO playlists (title, description) VALUES ('a', 'one'), ('b', 'two'), ('c', 'three'), ('d', NULL)"

DROPS_DESCRIPTION = 'op.drop_column("playlists", "description")'


def described(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(DESCRIBED))


def cli(database_url: URL, *args: str):  # noqa: ANN201 - subprocess.CompletedProcess
    return run_cli("alembic", *args, env={"DATABASE_URL": url_text(database_url)})


def version(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def failed_line(result) -> str:  # noqa: ANN001 - subprocess.CompletedProcess
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1, result.stdout
    return failed[0]


# -- the plain alembic CLI ------------------------------------------------------------


def test_cli_refuses_a_lossy_downgrade_and_changes_nothing(database_url: URL, engine: Engine) -> None:
    assert cli(database_url, "upgrade", "head").returncode == 0
    described(engine)
    before = snapshot(engine)
    result = cli(database_url, "downgrade", "0001")
    assert failed_line(result) == (
        "FAILED: downgrade to 0001 would destroy playlists.description (3 non-null values); "
        "run it with -x allow_data_loss=true to go ahead"
    )
    assert "Running downgrade" not in result.stderr  # refused before the first step
    assert snapshot(engine) == before


def test_cli_downgrades_with_consent(database_url: URL, engine: Engine) -> None:
    assert cli(database_url, "upgrade", "head").returncode == 0
    described(engine)
    result = cli(database_url, "-x", "allow_data_loss=true", "downgrade", "0001")
    assert result.returncode == 0, result.stdout + result.stderr
    assert version(engine) == ["0001"]
    assert "description" not in {c["name"] for c in sa.inspect(engine).get_columns("playlists")}


def test_cli_refuses_a_bad_consent_value_in_one_line(database_url: URL, engine: Engine) -> None:
    assert cli(database_url, "upgrade", "head").returncode == 0
    described(engine)
    before = snapshot(engine)
    line = failed_line(cli(database_url, "-x", "allow_data_loss=maybe", "downgrade", "0001"))
    assert line == (
        "FAILED: -x allow_data_loss='maybe' is neither true nor false; "
        "write -x allow_data_loss=true to go ahead despite the loss, or leave it out to be asked"
    )
    assert snapshot(engine) == before


def test_cli_downgrade_without_data_needs_no_consent(database_url: URL, engine: Engine) -> None:
    assert cli(database_url, "upgrade", "head").returncode == 0
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO playlists (title) VALUES ('no description')"))
    assert cli(database_url, "downgrade", "0001").returncode == 0
    assert version(engine) == ["0001"]


def test_sql_output_marks_each_destructive_statement(database_url: URL) -> None:
    down = cli(database_url, "downgrade", "head:base", "--sql")
    assert down.returncode == 0, down.stderr
    lines = down.stdout.splitlines()
    for comment, statement in [
        ("-- destroys the values of playlists.description", "ALTER TABLE playlists DROP COLUMN description;"),
        ("-- destroys the values of playlist_song_association.position",
         "ALTER TABLE playlist_song_association DROP COLUMN position;"),
        ("-- destroys the rows of songs", "DROP TABLE songs;"),
        ("-- destroys the rows of playlists", "DROP TABLE playlists;"),
    ]:
        assert lines[lines.index(statement) - 1] == comment
    assert sum(line.startswith("-- destroys") for line in lines) == 5  # 2 columns, 3 tables; nothing else
    up = cli(database_url, "upgrade", "base:head", "--sql")
    assert up.returncode == 0 and "-- destroys" not in up.stdout


# -- an upgrade that drops a column with data -------------------------------------------


@pytest.fixture
def lossy_upgrade() -> Workspace:
    """A workspace at 0005 with descriptions, and a hand-written 0006 that drops them."""
    with Workspace.open(upto="0005") as ws:
        migrations.upgrade(ws.config)
        described(ws.engine)
        add_revision(ws.directory / "alembic.ini", "dropped_description", "Dropped description", DROPS_DESCRIPTION)
        yield ws


def test_api_refuses_a_lossy_upgrade_then_runs_it_with_consent(lossy_upgrade: Workspace) -> None:
    ws = lossy_upgrade
    loss = migrations.data_loss(ws.config, "head")
    assert loss.values.tolist() == [["0006", "playlists", "description", 3, "non-null values"]]
    before = snapshot(ws.engine)
    with pytest.raises(DataLossError) as caught:
        migrations.upgrade(ws.config)
    assert str(caught.value) == (
        "upgrade to 'head' would destroy playlists.description (3 non-null values); "
        "pass allow_data_loss=True to upgrade anyway"
    )
    assert snapshot(ws.engine) == before
    assert "allow_data_loss" not in ws.config.attributes  # the consent was for that call only
    assert migrations.upgrade(ws.config, allow_data_loss=True)["rev"].tolist() == ["0006"]
    assert version(ws.engine) == ["0006"]


def test_cli_refuses_a_lossy_upgrade(lossy_upgrade: Workspace) -> None:
    ws = lossy_upgrade
    ini = str(ws.directory / "alembic.ini")
    before = snapshot(ws.engine)
    line = failed_line(cli(ws.url, "-c", ini, "upgrade", "head"))
    assert line == (
        "FAILED: upgrade to head would destroy playlists.description (3 non-null values); "
        "run it with -x allow_data_loss=true to go ahead"
    )
    assert snapshot(ws.engine) == before
    assert cli(ws.url, "-c", ini, "-x", "allow_data_loss=true", "upgrade", "head").returncode == 0
    assert version(ws.engine) == ["0006"]


def test_a_step_that_cannot_be_counted_is_refused(lossy_upgrade: Workspace) -> None:
    ws = lossy_upgrade
    add_revision(ws.directory / "alembic.ini", "reads_rows", "Reads rows",
                 "op.get_bind().execute(sa.text('SELECT 1')).scalar_one()", rev="0007")
    with pytest.raises(DataLossError, match=r"^cannot tell what upgrading 0007 destroys: its upgrade\(\) "
                                            r"does not run offline \(\w+\); check it by hand, then pass"):
        migrations.upgrade(ws.config)
    assert version(ws.engine) == ["0005"]


# -- the API's downgrade, and the command from Python -------------------------------------


def test_api_downgrade_both_ways(alembic_config: Config, engine: Engine) -> None:
    cfg = migrations.config(alembic_config.attributes["url"])
    migrations.upgrade(cfg)
    described(engine)
    with pytest.raises(DataLossError, match=r"^downgrade to '-4' would destroy playlists.description \(3 "):
        migrations.downgrade(cfg, "-4")
    assert version(engine) == ["0005"]
    assert migrations.downgrade(cfg, "-4", allow_data_loss=True)["rev"].tolist() == ["0005", "0004", "0003", "0002"]


def test_alembic_command_from_python_asks_too(alembic_config: Config, engine: Engine) -> None:
    from alembic import command
    from alembic.util import CommandError

    command.upgrade(alembic_config, "head")
    described(engine)
    with pytest.raises(CommandError, match="run it with -x allow_data_loss=true") as caught:
        command.downgrade(alembic_config, "0001")
    assert isinstance(caught.value.__cause__, DataLossError)
    alembic_config.attributes["allow_data_loss"] = True
    command.downgrade(alembic_config, "0001")
    assert version(engine) == ["0001"]


# -- count and run under one lock ---------------------------------------------------------


class _Waiting(logging.Handler):
    """Set when a migration logs that it waits for the migration lock."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("waiting for the migration lock"):
            self.event.set()


def test_values_written_while_the_lock_is_held_are_counted(database_url: URL, engine: Engine) -> None:
    """Another migration holds the lock and writes descriptions; our downgrade waits, then counts them.

    Counted before the lock (the old way), the downgrade saw no descriptions,
    waited, and dropped the ones written meanwhile without asking.
    """
    cfg = migrations.config(database_url)
    cfg.attributes["lock_timeout"] = "60s"  # the holder below is idle while it waits for us
    migrations.upgrade(cfg)
    waiting, logger = _Waiting(), logging.getLogger("alembic.env")
    saved_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(waiting)
    holder_engine = db.create_engine(database_url)
    outcome: list[BaseException | object] = []
    try:
        with holder_engine.connect() as holder:
            holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": locks.MIGRATION_LOCK_KEY})
            holder.commit()
            run = threading.Thread(target=lambda: outcome.append(_outcome(cfg)))
            run.start()
            assert waiting.event.wait(60), "the downgrade never waited for the migration lock"
            holder.execute(sa.text(DESCRIBED))  # the other migration's work, under the lock
            holder.commit()
            holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": locks.MIGRATION_LOCK_KEY})
            holder.commit()
            run.join(60)
            assert not run.is_alive()
    finally:
        logger.removeHandler(waiting)
        logger.setLevel(saved_level)
        holder_engine.dispose()
    assert isinstance(outcome[0], DataLossError), outcome
    assert "playlists.description (3 non-null values)" in str(outcome[0])
    assert version(engine) == ["0005"]
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(description) FROM playlists")).scalar_one() == 3


def _outcome(cfg: Config) -> BaseException | object:
    try:
        return migrations.downgrade(cfg, "0001")
    except BaseException as err:  # handed to the test's thread to assert on
        return err


def test_the_refusal_leaves_the_lock_free(database_url: URL, engine: Engine) -> None:
    cfg = migrations.config(database_url)
    migrations.upgrade(cfg)
    described(engine)
    with pytest.raises(DataLossError):
        migrations.downgrade(cfg, "base")
    with engine.connect() as connection:
        taken = connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": locks.MIGRATION_LOCK_KEY})
        assert taken.scalar_one(), "a refused run kept the migration lock"


# -- renames followed through the steps of one run ---------------------------------------------


def _write_step(ini, rev: str, down: str, upgrade: str, downgrade: str) -> None:  # noqa: ANN001 - Path
    (ini.parent / "alembic" / "versions" / f"{rev}_step.py").write_text(
        f'"""Step {rev}\n\nRevision ID: {rev}\nRevises: {down}\n"""\n'
        "from alembic import op\nimport sqlalchemy as sa\n\n"
        f"revision = {rev!r}\ndown_revision = {down!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade() -> None:\n    {upgrade}\n\n\ndef downgrade() -> None:\n    {downgrade}\n"
    )


def test_a_column_renamed_back_then_dropped_in_one_run_is_counted_under_its_name_now() -> None:
    """0007 renames rating to stars; `downgrade 0005` renames it back, then 0006's downgrade drops it."""
    with Workspace.open(upto="0005") as ws:
        ini = ws.directory / "alembic.ini"
        _write_step(ini, "0006", "0005", "op.add_column('songs', sa.Column('rating', sa.SmallInteger()))",
                    "op.drop_column('songs', 'rating')")
        _write_step(ini, "0007", "0006", "op.alter_column('songs', 'rating', new_column_name='stars')",
                    "op.alter_column('songs', 'stars', new_column_name='rating')")
        migrations.upgrade(ws.config, "head")
        with ws.engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO songs (song_id, title, stars) VALUES (1, 'a', 5), (2, 'b', 4)"))
        loss = migrations.data_loss(ws.config, "0005")
        assert loss[loss["lost"] > 0][["rev", "table", "column", "lost"]].values.tolist() == [
            ["0006", "songs", "stars", 2]]
        result = run_cli("alembic", "-c", str(ini), "downgrade", "0005", env={"DATABASE_URL": url_text(ws.url)})
        assert failed_line(result) == (
            "FAILED: downgrade to 0005 would destroy songs.stars (2 non-null values); "
            "run it with -x allow_data_loss=true to go ahead"
        )
        with ws.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(stars) FROM songs")).scalar_one() == 2
