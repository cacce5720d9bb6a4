"""Shared fixtures: a real PostgreSQL, one fresh database per test.

The server is the embedded one, or whatever ``$DATABASE_URL`` names. Each
test that asks for ``database_url`` gets a new, empty database that is
dropped afterwards. Override ``database_url`` in a test module to change
that (pytest-alembic style: fixtures meant to be overridden). Plain
functions that tests share live in ``helpers.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.config import Config
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, history

from helpers import REPO_ROOT


def pytest_configure(config: pytest.Config) -> None:
    """Keep pytest-alembic's ``--test-alembic`` collector out; its tests are imported by name instead.

    That collector (pytest-alembic 0.13.1, and its main branch) binds to this
    file and sets ``self._nodeid``, which pytest 9.2 no longer has: every run
    that collects ``tests/`` would fail with ``AttributeError: 'TestCollector'
    object has no attribute '_nodeid'``. Blocking it by name leaves the
    plugin's fixtures (``alembic_runner``) in place; ``test_pytest_alembic.py``
    imports the built-in tests. A no-op when pytest-alembic is not installed.
    """
    config.pluginmanager.set_blocked("pytest-alembic")


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    """IPython's shell with ``%load_ext playlist_tools`` done: the magics' tests share it."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "playlist_tools")
    return ip


@pytest.fixture(scope="session")
def server_url() -> Iterator[URL]:
    """The server every test database lives on (started once if embedded).

    The schema caches that replays built there during the run are dropped at
    its end, so the suite leaves nothing on the server; caches that were
    there before (a notebook's) stay.
    """
    url = db.resolve_url()
    before = set(replay_caches(url))
    yield url
    made = sorted(set(replay_caches(url)) - before)
    admin = db.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        for name in made:
            db.drop_database(admin, name)
    finally:
        admin.dispose()


def replay_caches(url: URL) -> list[str]:
    """The schema cache databases (``playlist_tools.history``) on the server of ``url``."""
    with db.connection(url) as conn:
        return conn.execute(
            sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)"),
            {"prefix": history.CACHE_PREFIX},
        ).scalars().all()


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
