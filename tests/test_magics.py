"""The IPython extension: %sql binds notebook variables and never pastes them; %alembic is the real CLI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from sqlalchemy.engine import Engine

from playlist_tools import sample
from playlist_tools.models import Base
from playlist_tools.workspace import Workspace


@pytest.fixture
def songs(engine: Engine, shell: InteractiveShell) -> Iterator[Engine]:
    Base.metadata.create_all(engine)
    sample.load_sample(engine, progress=False)
    shell.user_ns["engine"] = engine
    yield engine
    shell.user_ns.pop("engine", None)


def count_songs(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM songs")).scalar_one()


def test_sql_binds_a_notebook_variable(shell: InteractiveShell, songs: Engine) -> None:
    shell.user_ns["genre"] = "Jazz"
    frame = shell.run_line_magic("sql", "--con engine SELECT song_id, title FROM songs WHERE genre = :genre ORDER BY 1")
    with songs.connect() as connection:
        expected = connection.execute(sa.text("SELECT count(*) FROM songs WHERE genre = 'Jazz'")).scalar_one()
    assert len(frame) == expected > 0
    assert frame.dtypes.astype(str).tolist() == ["Int32", "string"]


@pytest.mark.parametrize("hostile", ["x' OR '1'='1", "'; DELETE FROM songs; --", "Jazz' --"])
def test_sql_cannot_be_injected_through_a_variable(shell: InteractiveShell, songs: Engine, hostile: str) -> None:
    before = count_songs(songs)
    shell.user_ns["genre"] = hostile
    frame = shell.run_line_magic("sql", "--con engine SELECT song_id FROM songs WHERE genre = :genre")
    assert frame.empty
    assert count_songs(songs) == before


def test_cell_magic_returns_or_stores_the_frame(shell: InteractiveShell, songs: Engine) -> None:
    shell.user_ns["n"] = 3
    returned = shell.run_cell_magic("sql", "--con engine", "SELECT song_id FROM songs\nORDER BY song_id LIMIT :n")
    assert returned["song_id"].tolist() == [1, 2, 3]
    assert shell.run_cell_magic("sql", "top << --con engine", "SELECT song_id FROM songs ORDER BY 1 LIMIT 2") is None
    assert shell.user_ns["top"]["song_id"].tolist() == [1, 2]


def test_sql_defaults_to_the_current_workspace(shell: InteractiveShell) -> None:
    with Workspace.open(upto="0001") as ws:
        with ws.engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE only_here (x int)"))
        frame = shell.run_line_magic("sql", "SELECT count(*) AS n FROM only_here")
    assert frame["n"].tolist() == [0]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("SELECT :nowhere_defined AS x", "no notebook variable 'nowhere_defined'"),
        ("--con no_such_engine SELECT 1", "no notebook variable named 'no_such_engine'"),
        ("", "needs a query"),
        ("--con engine SELECT * FROM no_such_table", "no_such_table"),
    ],
)
def test_sql_errors_are_one_line(shell: InteractiveShell, songs: Engine, line: str, needle: str) -> None:
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("sql", line)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_alembic_runs_the_cli_on_the_workspace(shell: InteractiveShell) -> None:
    with Workspace.open(upto="0002") as ws, capture_output() as captured:
        shell.run_line_magic("alembic", "upgrade head")
        shell.run_line_magic("alembic", "current")
        shell.run_line_magic("alembic", "history")
        with ws.engine.connect() as connection:
            version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        directory = str(ws.directory)
    assert version == "0002"
    assert "0002 (head)" in captured.stdout
    assert "0001 -> 0002 (head), Added description to Playlist" in captured.stdout
    assert "Running upgrade 0001 -> 0002" in captured.stdout  # the log line, where the cell shows text
    assert captured.stderr == ""
    assert directory not in captured.stdout + captured.stderr


def test_alembic_failure_is_what_the_cli_prints(shell: InteractiveShell) -> None:
    """As `alembic upgrade nope` in a terminal: one FAILED line, no traceback."""
    with Workspace.open(upto="0002"), capture_output() as captured:
        shell.run_line_magic("alembic", "upgrade nope")
    failed = [line for line in captured.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and "unknown revision 'nope'" in failed[0]
    assert "Traceback" not in captured.stdout + captured.stderr


def test_alembic_writes_a_revision_with_a_relative_path(shell: InteractiveShell) -> None:
    with Workspace.open(upto="0001") as ws, capture_output() as captured:
        shell.run_line_magic("alembic", 'revision -m "Empty step" --rev-id 0002')
        written = sorted(path.name for path in ws.versions.glob("*.py"))
    assert written == ["0001_initial_migration.py", "0002_empty_step.py"]
    assert "Generating alembic/versions/0002_empty_step.py" in captured.stdout
