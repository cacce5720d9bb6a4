"""A workspace's models.py matches its revision, env.py reads it, and `alembic revision` ids stay readable."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from playlist_tools import db, migrations
from playlist_tools.workspace import Workspace

from helpers import REPO_ROOT, run_cli, url_text

COMMITTED = sorted(path.name.split("_", 1)[0] for path in (REPO_ROOT / "alembic" / "versions").glob("[0-9]*.py"))
DESCRIPTION = "    description: Mapped[Optional[str]] = mapped_column(Text)\n"


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "playlist_tools")
    return ip


@pytest.mark.parametrize("rev", COMMITTED)
def test_models_match_each_committed_revision(rev: str, shell: InteractiveShell) -> None:
    with Workspace.open(upto=rev) as ws, capture_output() as captured:
        migrations.upgrade(ws.config)
        shell.run_line_magic("alembic", "check")
        drift = migrations.check(ws.config)
    assert "No new upgrade operations detected." in captured.stdout
    assert drift.empty


def test_editing_models_py_is_what_autogenerate_sees() -> None:
    with Workspace.open(upto="0001") as ws:
        migrations.upgrade(ws.config)
        source = ws.models.read_text()
        assert DESCRIPTION not in source
        anchor = "    title: Mapped[str] = mapped_column(String(120), index=True)\n"
        ws.models.write_text(source.replace(anchor, anchor + DESCRIPTION))
        drift = migrations.preview(ws.config)
    assert drift[["op", "table", "name", "detail"]].values.tolist() == [
        ["add_column", "playlists", "description", "TEXT NULL"]
    ]


def test_base_workspace_autogenerates_the_committed_initial_migration(shell: InteractiveShell) -> None:
    def reviewed(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.strip().startswith("# ###")]

    with Workspace.open(upto="base") as ws, capture_output() as captured:
        shell.run_line_magic("alembic", 'revision --autogenerate -m "Initial migration"')
        written = [path.name for path in ws.versions.glob("*.py")]
        source = (ws.versions / "0001_initial_migration.py").read_text() if written else ""
    assert written == ["0001_initial_migration.py"], captured.stdout
    assert reviewed(source) == reviewed((REPO_ROOT / "alembic/versions/0001_initial_migration.py").read_text())


def test_plain_cli_gives_autogenerate_the_next_readable_id() -> None:
    """`alembic revision --autogenerate` in a terminal: env.py's hook numbers it; a typed --rev-id wins."""
    with Workspace.open(upto="0005") as ws:
        migrations.upgrade(ws.config)
        env = {db.DATABASE_URL_ENV: url_text(ws.url)}
        ini = str(ws.directory / "alembic.ini")
        plain = run_cli("alembic", "-c", ini, "revision", "--autogenerate", "-m", "Plain step", env=env)
        migrations.upgrade(ws.config)
        typed = run_cli("alembic", "-c", ini, "revision", "--autogenerate", "-m", "Typed", "--rev-id", "abc1", env=env)
        names = sorted(path.name for path in ws.versions.glob("*.py"))[5:]
    assert plain.returncode == typed.returncode == 0, plain.stdout + typed.stdout
    assert names == ["0006_plain_step.py", "abc1_typed.py"]


def test_magic_gives_revision_and_merge_the_next_readable_id(shell: InteractiveShell) -> None:
    with Workspace.open(upto="0005") as ws, capture_output() as captured:
        shell.run_line_magic("alembic", 'revision -m "Ann"')
        shell.run_line_magic("alembic", 'revision -m "Bob" --head 0005 --splice')
        shell.run_line_magic("alembic", 'merge heads -m "Joined"')
        script = migrations.revision(ws.config, "Api step", autogenerate=False, rev_id="0042")
        names = sorted(path.name for path in ws.versions.glob("*.py"))[5:]
    assert script.revision == "0042", captured.stdout
    assert names == ["0006_ann.py", "0007_bob.py", "0008_joined.py", "0042_api_step.py"]


def test_given_metadata_still_wins() -> None:
    from playlist_tools.models import Base

    with Workspace.open(upto="0001", metadata=Base.metadata) as ws:
        migrations.upgrade(ws.config)
        drift = migrations.check(ws.config)
    assert "description" in drift["name"].tolist()
