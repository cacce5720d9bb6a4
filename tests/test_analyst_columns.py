"""Analysts' columns are theirs: autogenerate never proposes dropping a column the history never created.

The rule (playlist_tools.migrations._env.include_object): a column in the
database but not in the models is proposed for removal only if it exists in
the schema replayed at the database's current revision; one added by hand
is left alone, as are its indexes. ``-x keep_analyst_columns=false`` (or the
ini option) gives Alembic's plain rule back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from playlist_tools import migrations
from playlist_tools.errors import DataLossError
from playlist_tools.workspace import Workspace

from helpers import run_cli, url_text


@pytest.fixture
def ws() -> Iterator[Workspace]:
    """A workspace at head whose songs carry an analyst's own ``my_note`` column (with data and an index)."""
    with Workspace.open() as ws:
        migrations.upgrade(ws.config)
        with ws.engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO songs (title, composer) VALUES ('a', 'Bach'), ('b', NULL)"))
            connection.execute(sa.text("ALTER TABLE songs ADD COLUMN my_note text"))
            connection.execute(sa.text("UPDATE songs SET my_note = 'keep me'"))
            connection.execute(sa.text("CREATE INDEX ix_songs_my_note ON songs (my_note)"))
        yield ws


def alembic(ws: Workspace, *args: str):  # noqa: ANN201 - subprocess.CompletedProcess
    return run_cli("alembic", "-c", str(ws.directory / "alembic.ini"), *args, env={"DATABASE_URL": url_text(ws.url)})


def without_composer(ws: Workspace) -> None:
    """Remove ``Song.composer`` from the workspace's models: a column the history created (0001)."""
    source = ws.models.read_text()
    edited = re.sub(r"\n    composer: .*\n", "\n", source)
    assert edited != source
    ws.models.write_text(edited)


def test_check_and_preview_leave_a_hand_added_column_alone(ws: Workspace) -> None:
    assert migrations.check(ws.config).empty
    assert migrations.preview(ws.config).empty


def test_the_cli_check_and_autogenerate_leave_it_alone(ws: Workspace) -> None:
    check = alembic(ws, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    assert "Running upgrade" not in check.stderr  # the history's replay says nothing of its own
    written = alembic(ws, "revision", "--autogenerate", "-m", "nothing to do")
    assert written.returncode == 0, written.stdout + written.stderr
    source = next(ws.versions.glob("0006_*.py")).read_text()
    assert "my_note" not in source
    assert "drop_column" not in source and "drop_index" not in source


def test_a_column_the_models_removed_is_proposed_and_its_upgrade_needs_consent(ws: Workspace) -> None:
    without_composer(ws)
    drift = migrations.preview(ws.config)
    assert drift[["op", "table", "name"]].values.tolist() == [["remove_column", "songs", "composer"]]
    script = migrations.revision(ws.config, "Dropped composer")
    assert "my_note" not in Path(script.path).read_text()
    with pytest.raises(DataLossError, match=r"^upgrade to 'head' would destroy songs.composer \(1 non-null value\)"):
        migrations.upgrade(ws.config)
    assert migrations.upgrade(ws.config, allow_data_loss=True)["rev"].tolist() == ["0006"]
    with ws.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(my_note) FROM songs")).scalar_one() == 2
    assert migrations.check(ws.config).empty


def test_opting_out_gives_alembics_plain_rule(ws: Workspace) -> None:
    check = alembic(ws, "-x", "keep_analyst_columns=false", "check")
    assert check.returncode != 0
    assert "remove_column" in check.stdout + check.stderr and "my_note" in check.stdout + check.stderr
    ws.config.set_main_option("keep_analyst_columns", "false")
    drift = migrations.preview(ws.config)
    assert sorted(drift[["op", "name"]].itertuples(index=False, name=None)) == [
        ("remove_column", "my_note"), ("remove_index", "ix_songs_my_note"),
    ]


def test_a_bad_opt_out_value_is_one_line(ws: Workspace) -> None:
    check = alembic(ws, "-x", "keep_analyst_columns=sometimes", "check")
    assert check.returncode != 0 and "Traceback" not in check.stderr
    failed = [line for line in check.stdout.splitlines() if line.startswith("FAILED:")]
    assert failed == [
        "FAILED: -x keep_analyst_columns='sometimes' is neither true nor false; "
        "write -x keep_analyst_columns=false for Alembic's plain rule, or leave it out"
    ]
