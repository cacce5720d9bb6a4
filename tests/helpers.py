"""Plain functions the tests share: running the real commands, scratch histories, snapshots.

Fixtures live in ``conftest.py``; everything here is imported by name
(``from helpers import run_cli``), as any module is.
"""

from __future__ import annotations

import contextlib
import decimal
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import URL, Connection, Engine

from playlist_tools import db

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


def revision_source(doc: str, upgrade: str, *, rev: str = "0006", down: str = "0005") -> str:
    """A revision file as ``script.py.mako`` writes one: ``doc`` its message, ``upgrade`` its statements."""
    body = textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")
    return f'''"""{doc}

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
{body}


def downgrade() -> None:
    pass
'''


FAILS_HALFWAY = """
    op.add_column("playlists", sa.Column("rating", sa.Integer()))
    op.execute("UPDATE playlists SET title = title || ' (edited)', rating = 5")
    op.execute("DELETE FROM playlist_song_association")
    op.create_table("half_done", sa.Column("x", sa.Integer()))
    op.execute("SELECT 1 / 0")
"""
"""The upgrade of a revision that changes schema and data, then fails: nothing of it may stay."""


def add_revision(ini: Path, slug: str, doc: str, upgrade: str, *, rev: str = "0006") -> Path:
    """Write revision ``rev`` (after the one before it) into the scratch history of ``ini``; its path."""
    path = ini.parent / "alembic" / "versions" / f"{rev}_{slug}.py"
    path.write_text(revision_source(doc, upgrade, rev=rev, down=f"{int(rev) - 1:04d}"))
    return path


def scratch_history(tmp_path: Path, *, failing: str | None = "0006") -> Path:
    """A scratch copy of alembic/ and alembic.ini, optionally with a failing revision; returns the ini."""
    shutil.copytree(REPO_ROOT / "alembic", tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    ini = tmp_path / "alembic.ini"
    ini.write_text((REPO_ROOT / "alembic.ini").read_text())
    if failing:
        add_revision(ini, "fails_halfway", "Fails halfway, on purpose", FAILS_HALFWAY, rev=failing)
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


BIG = 9007199254740993  # 2**53 + 1: a float64 cannot hold it

SONG_DTYPES = {
    "song_id": "Int32", "title": "string", "artist": "string", "album": "string", "genre": "string",
    "composer": "string", "file_format": "string", "duration_ms": "Int32", "size_bytes": "Int64",
    "unit_price": "decimal128(10, 2)[pyarrow]",
}
"""The dtypes read_frame gives the songs table, whatever the path or driver."""


def fill_two_songs(engine: Engine) -> Engine:
    """The models' tables, with two songs and a playlist; NULL in every nullable column of the second song."""
    from playlist_tools.models import Base, Playlist, Song

    Base.metadata.create_all(engine)
    with engine.begin() as con:
        con.execute(sa.insert(Song), [
            {"song_id": 1, "title": "Balls to the Wall", "artist": "Accept", "album": "Balls to the Wall",
             "genre": "Rock", "composer": "", "file_format": "MPEG audio file", "duration_ms": 342562,
             "size_bytes": BIG, "unit_price": decimal.Decimal("0.99")},
            {"song_id": 2, "title": "Último Día", "artist": None, "album": None, "genre": None,
             "composer": None, "file_format": None, "duration_ms": None, "size_bytes": None, "unit_price": None},
        ])
        con.execute(sa.insert(Playlist), [{"playlist_id": 1, "title": "90’s Music", "description": None}])
    return engine


def assert_faithful_songs(songs: pd.DataFrame) -> None:
    """The two songs of :func:`fill_two_songs`, read back exactly: dtypes, big ints, decimals, '' is not NULL."""
    assert songs.dtypes.astype(str).to_dict() == SONG_DTYPES
    assert songs.size_bytes[0] == BIG and songs.size_bytes.isna()[1]
    assert songs.unit_price[0] == decimal.Decimal("0.99") and songs.unit_price.isna()[1]
    assert songs.composer[0] == "" and songs.composer.isna()[1]  # empty string is not NULL
    assert songs.title[1] == "Último Día"


@contextlib.contextmanager
def session_named(url: URL, application_name: str) -> Iterator[Connection]:
    """A connection that ``pg_stat_activity`` shows as ``application_name``: a notebook's, a dashboard's."""
    engine = db.create_engine(url, connect_args={"application_name": application_name})
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def sql(engine: Engine, statement: str, params: dict | None = None) -> list[tuple]:
    """Run one statement in its own transaction (committed); its rows, if it returns any."""
    with engine.begin() as con:
        result = con.exec_driver_sql(statement, params or {})
        return [tuple(row) for row in result] if result.returns_rows else []


def same_rows(engine: Engine, left: str, right: str, columns: str = "*") -> None:
    """The two tables hold the same rows: SQL EXCEPT ALL both ways is empty."""
    for a, b in ((left, right), (right, left)):
        assert sql(engine, f"SELECT {columns} FROM {a} EXCEPT ALL SELECT {columns} FROM {b}") == [], f"{a} - {b}"
