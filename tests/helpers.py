"""Plain functions the tests share: running the real commands, scratch histories, snapshots.

Fixtures live in ``conftest.py``; everything here is imported by name
(``from helpers import run_cli``), as any module is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import URL, Engine

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *argv: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a console command of the venv from the repo root, as a user would."""
    bin_dir = Path(sys.executable).parent
    full_env = {**os.environ, **(env or {})}
    for key, value in (env or {}).items():
        if value is None:  # pragma: no cover - explicit unset
            full_env.pop(key, None)
    return subprocess.run(
        [str(bin_dir / argv[0]), *argv[1:]],
        cwd=REPO_ROOT,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


def url_text(url: URL) -> str:
    """A URL as a string with its password, for DATABASE_URL in a child process."""
    return url.render_as_string(hide_password=False)


def table_rows(engine: Engine, table: str) -> list[tuple[object, ...]]:
    """All rows of a table, ordered, for before/after comparisons."""
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY 1, 2'))]


FAILING_REVISION = '''\
"""Fails halfway, on purpose

Revision ID: {rev}
Revises: {down}
"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("playlists", sa.Column("rating", sa.Integer()))
    op.execute("UPDATE playlists SET title = title || ' (edited)', rating = 5")
    op.execute("DELETE FROM playlist_song_association")
    op.create_table("half_done", sa.Column("x", sa.Integer()))
    op.execute("SELECT 1 / 0")


def downgrade() -> None:
    pass
'''


def scratch_history(tmp_path: Path, *, failing: str | None = "0006") -> Path:
    """A scratch copy of alembic/ and alembic.ini, optionally with a failing revision; returns the ini."""
    shutil.copytree(REPO_ROOT / "alembic", tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    ini = tmp_path / "alembic.ini"
    ini.write_text((REPO_ROOT / "alembic.ini").read_text())
    if failing:
        down = f"{int(failing) - 1:04d}"
        (tmp_path / "alembic" / "versions" / f"{failing}_fails_halfway.py").write_text(
            FAILING_REVISION.format(rev=failing, down=down)
        )
    return ini


def scratch_config(ini: Path, url: URL) -> Config:
    config = Config(str(ini))
    config.attributes["url"] = url
    config.attributes["skip_logging_config"] = True
    return config


def snapshot(engine: Engine) -> dict[str, object]:
    """Every table's columns, indexes and rows, and the version: enough to see any change."""
    inspector = sa.inspect(engine)
    state: dict[str, object] = {}
    with engine.connect() as connection:
        for table in sorted(inspector.get_table_names()):
            columns = [c["name"] for c in inspector.get_columns(table)]
            indexes = sorted(ix["name"] for ix in inspector.get_indexes(table))
            rows = connection.execute(sa.text(f'SELECT * FROM "{table}"')).all()
            state[table] = (columns, indexes, sorted(map(tuple, rows), key=repr))
    return state
