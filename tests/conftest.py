"""Shared fixtures: a real PostgreSQL, one fresh database per test.

The server is the embedded one, or whatever ``$DATABASE_URL`` names. Each
test that asks for ``database_url`` gets a new, empty database that is
dropped afterwards. Override ``database_url`` in a test module to change
that (pytest-alembic style: fixtures meant to be overridden).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import URL, Engine

from playlist_tools import db

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def server_url() -> URL:
    """The server every test database lives on (started once if embedded)."""
    return db.resolve_url()


@pytest.fixture
def database_url(server_url: URL) -> Iterator[URL]:
    """A fresh, empty database for this test only."""
    with db.fresh_database(server_url, prefix="pt_test") as url:
        yield url


@pytest.fixture
def engine(database_url: URL) -> Iterator[Engine]:
    """An engine on this test's database, disposed of afterwards."""
    engine = db.create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def alembic_config(database_url: URL) -> Config:
    """The repo's alembic.ini, pointed at this test's database."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["url"] = database_url
    config.attributes["skip_logging_config"] = True
    return config


def run_cli(*argv: str, env: dict[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
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
