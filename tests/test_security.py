"""Security: a socket-only embedded server, passwords that never show, SQL that is never spliced."""

from __future__ import annotations

import os
import stat
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, frames, migrations, models, queries, sample, schema
from playlist_tools.errors import PlaylistToolsError

from helpers import REPO_ROOT, run_cli, url_text

PASSWORD = "s3cr3t-pw"
CLOSED_PORT = f"postgresql://ann:{PASSWORD}@127.0.0.1:1/music"


# -- the embedded server: a Unix socket in a private directory, no TCP -------------


unix_only = pytest.mark.skipif(os.name != "posix", reason="on Windows the wheel serves on 127.0.0.1 (no Unix sockets)")


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private embedded server (never the shared one), stopped afterwards; yields its data dir."""
    data_dir = tmp_path_factory.mktemp("security") / "pgdata"
    db.start_embedded(data_dir)
    yield data_dir
    db.stop_embedded(data_dir)


def postmaster(data_dir: Path) -> psutil.Process:
    status = db.embedded_status(data_dir)
    assert status.running and status.pid is not None
    return psutil.Process(status.pid)


@unix_only
def test_embedded_server_listens_on_no_address(private_server: Path) -> None:
    engine = db.create_engine(db.embedded_status(private_server).url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW listen_addresses").scalar_one() == ""
            socket_dir = connection.exec_driver_sql("SHOW unix_socket_directories").scalar_one()
    finally:
        engine.dispose()
    assert Path(socket_dir) == private_server.resolve()


@unix_only
def test_embedded_server_has_no_tcp_socket(private_server: Path) -> None:
    server = postmaster(private_server)
    inet = []
    for process in [server, *server.children(recursive=True)]:
        try:
            inet += [(process.pid, c.laddr) for c in process.net_connections(kind="inet")]
        except psutil.NoSuchProcess:
            pass  # a backend that just ended
    assert inet == [], f"TCP/UDP sockets open: {inet}"
    unix = [c.laddr for c in server.net_connections(kind="unix")]
    assert str(private_server.resolve() / ".s.PGSQL.5432") in unix


@unix_only
def test_socket_directory_is_private_to_the_server_user(private_server: Path) -> None:
    import pwd

    server_uid = postmaster(private_server).uids().real
    expected_user = "embedded_postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    info = private_server.stat()
    assert pwd.getpwuid(info.st_uid).pw_name == expected_user
    assert info.st_uid == server_uid
    assert stat.S_IMODE(info.st_mode) == 0o700, oct(info.st_mode)


@unix_only
def test_shared_embedded_server_listens_on_no_address(server_url: URL) -> None:
    if os.environ.get(db.DATABASE_URL_ENV):
        pytest.skip("DATABASE_URL names another server; its network settings are its owner's")
    engine = db.create_engine(server_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW listen_addresses").scalar_one() == ""
    finally:
        engine.dispose()


@unix_only
def test_data_dir_too_long_for_a_private_socket_is_refused(tmp_path: Path) -> None:
    """The wheel would fall back to a shared runtime directory (0777 as root): refuse instead."""
    data_dir = tmp_path / ("x" * (120 - len(str(tmp_path))))
    result = run_cli("playlist-tools", "db", "start", env={"PLAYLIST_TOOLS_PGDATA": str(data_dir), "DATABASE_URL": ""})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "too long for a Unix socket path" in result.stderr and "PLAYLIST_TOOLS_PGDATA" in result.stderr
    assert not data_dir.exists()


# -- passwords never show ------------------------------------------------------------


def everything_shown(err: BaseException) -> str:
    """All a person could see of an error: its message, repr, and full traceback with causes."""
    return str(err) + repr(err) + "".join(traceback.format_exception(err))


def test_reprs_of_urls_and_engines_mask_the_password() -> None:
    url = db.parse_url(CLOSED_PORT)
    engine = db.create_engine(CLOSED_PORT)
    try:
        for shown in [str(url), repr(url), db.mask_url(url), db.mask_url(CLOSED_PORT), repr(engine), str(engine.url)]:
            assert PASSWORD not in shown, shown
    finally:
        engine.dispose()


def _lint_config() -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes.update(url=CLOSED_PORT, skip_logging_config=True)
    return config


def _api_calls() -> dict[str, Callable[[], object]]:
    """Every public entry point that takes a URL, aimed at a closed port with a password."""
    return {
        "db.ping": lambda: db.ping(CLOSED_PORT),
        "db.parse_url(bad scheme)": lambda: db.parse_url(CLOSED_PORT.replace("postgresql", "mysql")),
        "db.parse_url(bad port)": lambda: db.parse_url(CLOSED_PORT.replace(":1/", ":port/")),
        "db.fresh_database": lambda: db.fresh_database(CLOSED_PORT).__enter__(),
        "alembic upgrade": lambda: command.upgrade(_lint_config(), "head"),
        "frames.read_frame": lambda: frames.read_frame("SELECT 1", CLOSED_PORT),
        "frames.write_frame": lambda: frames.write_frame(pd.DataFrame({"x": [1]}), "songs", CLOSED_PORT),
        "sample.load_sample": lambda: sample.load_sample(CLOSED_PORT, progress=False),
        "schema.tables": lambda: schema.tables(CLOSED_PORT),
        "migrations.current": lambda: migrations.current(migrations.config(CLOSED_PORT)),
    }


@pytest.mark.parametrize("name", sorted(_api_calls()))
def test_errors_never_show_the_password(name: str) -> None:
    with pytest.raises(Exception) as caught:
        _api_calls()[name]()
    assert PASSWORD not in everything_shown(caught.value)
    assert "***" in str(caught.value), f"the error should still name the URL: {caught.value}"


def with_a_password(url: URL) -> tuple[URL, str]:
    """``url`` carrying a password, and that password, to look for in what a command shows.

    The embedded server trusts local connections, so any password gets in: PASSWORD.
    A server that checks passwords (``DATABASE_URL`` elsewhere) needs the URL's own.
    """
    if not url.password:
        return url.set(password=PASSWORD), PASSWORD
    secret = str(url.password)
    if len(secret) < 8 or secret in url.render_as_string(hide_password=True):
        pytest.skip("DATABASE_URL's password is too short or plain to tell apart in output; use a longer one")
    return url, secret


def test_alembic_cli_output_never_shows_the_password(database_url: URL) -> None:
    url, password = with_a_password(database_url)
    env = {"DATABASE_URL": url_text(url)}
    for args in (["upgrade", "head"], ["current", "--verbose"], ["history", "--verbose"], ["upgrade", "head", "--sql"]):
        result = run_cli("alembic", *args, env=env)
        assert result.returncode == 0, result.stderr
        assert password not in result.stdout + result.stderr, args
    for args in (["db", "status"], ["db", "url"]):
        result = run_cli("playlist-tools", *args, env=env)
        assert result.returncode == 0 and password not in result.stdout + result.stderr


@unix_only
def test_psql_gets_the_password_outside_its_command_line(database_url: URL) -> None:
    """Any local user can read /proc/PID/cmdline; only the owner can read /proc/PID/environ."""
    url, password = with_a_password(database_url)
    env = {"DATABASE_URL": url_text(url)}
    shell = r'\! tr "\0" " " < /proc/$PPID/cmdline; echo; tr "\0" "\n" < /proc/$PPID/environ | grep ^PGPASSWORD='
    result = run_cli("playlist-tools", "db", "psql", "-At", "-c", shell, env=env)
    assert result.returncode == 0, result.stderr
    cmdline, environ = result.stdout.strip().splitlines()
    assert "psql" in cmdline and password not in cmdline
    assert environ == f"PGPASSWORD={password}"


# -- identifiers quoted, values bound -----------------------------------------------------


HOSTILE = "x'); DROP TABLE songs; --"


@pytest.fixture
def songs_engine(engine: Engine) -> Engine:
    models.Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO songs (song_id, title) VALUES (1, 'O''Brien’s Song')"))
    return engine


def songs_survive(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT title FROM songs")).scalars().all() == ["O'Brien’s Song"]


def test_fresh_database_refuses_a_hostile_prefix(server_url: URL) -> None:
    with pytest.raises(ValueError, match="lower-case identifier"):
        with db.fresh_database(server_url, prefix='x"; DROP DATABASE postgres; --'):
            pass


def test_values_are_bound(songs_engine: Engine) -> None:
    found = frames.read_frame("SELECT title FROM songs WHERE title = :t", songs_engine, params={"t": "O'Brien’s Song"})
    assert found["title"].tolist() == ["O'Brien’s Song"]
    assert frames.read_frame("SELECT title FROM songs WHERE title = :t", songs_engine, params={"t": HOSTILE}).empty
    with pytest.raises(PlaylistToolsError, match="no playlist is titled"):
        queries.playlist_songs(HOSTILE, songs_engine)
    frames.write_frame(pd.DataFrame({"song_id": [2], "title": [HOSTILE]}), "songs", songs_engine)
    with songs_engine.begin() as connection:
        assert connection.execute(sa.text("SELECT title FROM songs WHERE song_id = 2")).scalar_one() == HOSTILE
        connection.execute(sa.text("DELETE FROM songs WHERE song_id = 2"))
    songs_survive(songs_engine)


@pytest.mark.parametrize(
    "attempt",
    [
        lambda e: frames.write_frame(pd.DataFrame({"title": ["t"]}), "songs; DROP TABLE songs", e),
        lambda e: frames.read_frame("SELECT 1; DROP TABLE songs", e),
        lambda e: schema.columns("songs; DROP TABLE songs", e),
    ],
    ids=["write_frame-table", "read_frame-two-statements", "schema.columns-table"],
)
def test_identifiers_are_never_spliced(songs_engine: Engine, attempt: Callable[[Engine], object]) -> None:
    with pytest.raises(PlaylistToolsError):
        attempt(songs_engine)
    songs_survive(songs_engine)


@unix_only
@pytest.mark.skipif(os.name == "posix" and os.geteuid() != 0, reason="only root runs the server as another user")
def test_stop_works_when_the_server_user_cannot_reach_its_data_dir(tmp_path: Path) -> None:
    """pytest (and careful admins) chmod 0700 dirs the wheel had opened for the server's user."""
    data_dir = tmp_path / "pgdata"
    db.start_embedded(data_dir)
    pid = db.embedded_status(data_dir).pid
    try:
        tmp_path.chmod(0o700)
        assert db.stop_embedded(data_dir) is True
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        db.stop_embedded(data_dir)
