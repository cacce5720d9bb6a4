"""The embedded server deletes, executes, opens and believes nothing it should not (issue 9).

Every test runs its own server in its own data directory under tmp_path,
never the shared one, and stops it afterwards.
"""

from __future__ import annotations

import ctypes
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from playlist_tools import db
from playlist_tools.errors import DatabaseUnavailableError

from helpers import run_cli

# once: about the embedded server itself (a private one, whatever DATABASE_URL says): CI's first run covers it.
pytestmark = [pytest.mark.skipif(os.name != "posix", reason="the embedded server is POSIX only"), pytest.mark.once]
as_root = pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="the server runs as another user as root")


@pytest.fixture
def stop_after() -> Iterator[Callable[[Path], Path]]:
    """Register data directories whose servers are stopped after the test, whatever happened."""
    dirs: list[Path] = []

    def register(path: Path) -> Path:
        dirs.append(path)
        return path

    yield register
    for path in dirs:
        db.stop_embedded(path)  # also continues a SIGSTOP-ed postmaster first


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    return {"PLAYLIST_TOOLS_PGDATA": str(data_dir), "DATABASE_URL": "", **extra}


OPENED = "can now traverse (not list)"


def one_line(text: str) -> str:
    """The one error line; a notice of folders made traversable may come before it, nothing else."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text, text
    assert lines and all(OPENED in line for line in lines[:-1]), text
    return lines[-1]


def tree(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Owner, group and mode of a folder and everything in it."""
    return {str(p.relative_to(folder)): (p.stat().st_uid, p.stat().st_gid, p.stat().st_mode) for p in
            [folder, *folder.rglob("*")]}  # fmt: skip


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


# -- 1. reset deletes, and start uses, only data directories we made -----------------


def not_a_database(folder: Path, kind: str) -> Path:
    folder.mkdir()
    (folder / "thesis.tex").write_text("three years of work\n")
    if kind == "someone-elses-cluster":  # looks like PostgreSQL, but no marker of ours
        (folder / "PG_VERSION").write_text("18\n")
        (folder / "postgresql.conf").write_text("# theirs\n")
    return folder


FOLDERS = ["plain-folder", "someone-elses-cluster"]


@pytest.mark.parametrize("kind", FOLDERS)
def test_reset_refuses_a_folder_we_did_not_make(tmp_path: Path, kind: str) -> None:
    folder = not_a_database(tmp_path / "pgdata", kind)
    before = tree(folder)
    result = run_cli("playlist-tools", "db", "reset", "--yes", env=env_for(folder))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"refusing to delete {folder}" in line and "nothing deleted" in line, line
    assert tree(folder) == before


@pytest.mark.parametrize("kind", FOLDERS)
def test_start_refuses_a_folder_we_did_not_make_and_changes_nothing(tmp_path: Path, kind: str) -> None:
    folder = not_a_database(tmp_path / "pgdata", kind)
    before = tree(folder)
    result = run_cli("playlist-tools", "db", "start", env=env_for(folder))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert str(folder) in line and "PLAYLIST_TOOLS_PGDATA" in line, line
    assert "reset" not in line, "must not suggest deleting a folder we did not make"
    assert tree(folder) == before, "owner, mode or contents changed"
    status = db.embedded_status(folder)
    assert not status.running and status.problem is not None and "refuses" in status.problem


def test_reset_deletes_a_data_directory_we_made(tmp_path: Path, stop_after: Callable[[Path], Path]) -> None:
    data_dir = stop_after(tmp_path / "pgdata")
    db.start_embedded(data_dir)
    assert (data_dir / ".playlist-tools-pgdata").is_file()
    assert db.reset_embedded(data_dir) is True
    assert not data_dir.exists()


def test_a_data_directory_of_earlier_versions_is_adopted(tmp_path: Path, stop_after: Callable[[Path], Path]) -> None:
    data_dir = stop_after(tmp_path / "pgdata")
    db.start_embedded(data_dir)
    db.stop_embedded(data_dir)
    (data_dir / ".playlist-tools-pgdata").unlink()  # as earlier versions left it: the wheel's pid list, no marker
    (data_dir / ".handle_pids.json").write_text("[]")
    db.start_embedded(data_dir)
    assert (data_dir / ".playlist-tools-pgdata").is_file()


def test_failed_initdb_names_no_missing_log(tmp_path: Path, stop_after: Callable[[Path], Path]) -> None:
    data_dir = stop_after(tmp_path / "pgdata")
    result = run_cli("playlist-tools", "db", "start", env=env_for(data_dir, LC_ALL="xx_XX.bogus"))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "initdb" in line and "invalid locale settings" in line, line
    assert str(data_dir / "log") not in line or (data_dir / "log").exists(), f"names a log that does not exist: {line}"
    assert db.reset_embedded(data_dir) is False, "initdb left something behind"
    db.start_embedded(data_dir)  # the folder it left is usable as it is


def test_failed_start_names_the_log_and_its_reason(tmp_path: Path, stop_after: Callable[[Path], Path]) -> None:
    data_dir = stop_after(tmp_path / "pgdata")
    db.start_embedded(data_dir)
    db.stop_embedded(data_dir)
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'plenty'\n")
    with pytest.raises(DatabaseUnavailableError) as caught:
        db.start_embedded(data_dir)
    line = one_line(str(caught.value))
    log = data_dir / "log"
    assert f"read {log}," in line and "postgresql.conf" in line, line  # the reason: the log's FATAL line
    assert 'invalid value for parameter "shared_buffers"' in log.read_text()


# -- 2. a data directory's name is never shell code --------------------------------


@pytest.mark.parametrize("name", ["pg$(touch $PT_PWND)data", "pg`touch $PT_PWND`data"], ids=["dollar", "backquote"])
def test_shell_code_in_pgdata_is_never_run(tmp_path: Path, stop_after: Callable[[Path], Path], name: str) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    drop.chmod(0o777)  # so that the server's user could write the marker if anything ran
    marker = drop / "pwnd"
    data_dir = stop_after(tmp_path / name)
    env = env_for(data_dir, PT_PWND=str(marker))
    started = run_cli("playlist-tools", "db", "start", env=env)
    status = run_cli("playlist-tools", "db", "status", env=env)
    assert not marker.exists(), "a command in PLAYLIST_TOOLS_PGDATA was executed"
    assert started.returncode == 0, started.stderr
    assert "server: running" in status.stdout
    assert db.ping(db.embedded_status(data_dir).url).startswith("18.")


def test_a_path_with_spaces_and_quotes_works(tmp_path: Path, stop_after: Callable[[Path], Path]) -> None:
    data_dir = stop_after(tmp_path / """it's a "pg" dir""")
    engine = db.create_engine(db.start_embedded(data_dir))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW data_directory").scalar_one() == str(data_dir)
    finally:
        engine.dispose()
    assert (data_dir / ".s.PGSQL.5432").is_socket()
    assert db.stop_embedded(data_dir) is True
    assert db.reset_embedded(data_dir) is True
    assert not data_dir.exists()


# -- 3. private parents become traversable, never readable -------------------------


@as_root
def test_private_parents_are_made_traversable_only(tmp_path: Path, stop_after: Callable[[Path], Path]) -> None:
    private = tmp_path / "private"
    private.mkdir()
    private.chmod(0o700)
    data_dir = stop_after(private / "pgdata")
    started = run_cli("playlist-tools", "db", "start", env=env_for(data_dir))
    assert started.returncode == 0, started.stderr
    assert stat.S_IMODE(private.stat().st_mode) == 0o701, oct(private.stat().st_mode)
    told = [line for line in started.stderr.splitlines() if line.strip()]
    assert len(told) == 1 and OPENED in told[0] and f"{private}," in told[0], started.stderr
    again = run_cli("playlist-tools", "db", "start", env=env_for(data_dir))
    assert again.returncode == 0 and again.stderr == "", "told of a change it did not make"


# -- 4. running means answering ----------------------------------------------------


def test_a_stopped_postmaster_is_not_running(tmp_path: Path, stop_after: Callable[[Path], Path]) -> None:
    data_dir = stop_after(tmp_path / "pgdata")
    db.start_embedded(data_dir)
    postmaster = psutil.Process(db.embedded_status(data_dir).pid)
    postmaster.send_signal(signal.SIGSTOP)  # alive, with its pid file and socket, but answering nothing
    try:
        status = db.embedded_status(data_dir)
        assert not status.running and status.problem is not None and f"kill -CONT {postmaster.pid}" in status.problem
        with pytest.raises(DatabaseUnavailableError) as caught:
            db.start_embedded(data_dir)
        assert f"process {postmaster.pid} does not answer" in one_line(str(caught.value))
        assert db.stop_embedded(data_dir) is True
        assert not postmaster.is_running() or postmaster.status() == psutil.STATUS_ZOMBIE
    finally:
        if postmaster.is_running():
            postmaster.send_signal(signal.SIGCONT)


def _subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, int(on), 0, 0, 0) == 0, os.strerror(ctypes.get_errno())  # PR_SET_CHILD_SUBREAPER


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="PR_SET_CHILD_SUBREAPER is Linux only")
def test_a_crashed_postmaster_left_a_zombie_is_restarted(tmp_path: Path, stop_after: Callable[[Path], Path]) -> None:
    data_dir = stop_after(tmp_path / "pgdata")
    env = env_for(data_dir)
    # This test plays a container's init that never reaps: the server, orphaned when
    # `db start` exits, becomes our child, and stays a zombie once killed.
    _subreaper(True)
    try:
        started = run_cli("playlist-tools", "db", "start", env=env)
    finally:
        _subreaper(False)
    assert started.returncode == 0, started.stderr
    postmaster = psutil.Process(db.embedded_status(data_dir).pid)
    assert postmaster.ppid() == os.getpid()
    helpers = postmaster.children()
    postmaster.kill()
    try:
        wait_until(lambda: postmaster.status() == psutil.STATUS_ZOMBIE, "the postmaster is a zombie")
        wait_until(lambda: all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in helpers),
                   "its helper processes have exited")  # fmt: skip
        status = db.embedded_status(data_dir)
        assert not status.running and status.problem is not None and "zombie" in status.problem
        assert "server: running" not in run_cli("playlist-tools", "db", "status", env=env).stdout
        restarted = run_cli("playlist-tools", "db", "start", env=env)
        assert restarted.returncode == 0, restarted.stderr
        now = db.embedded_status(data_dir)
        assert now.running and now.pid != postmaster.pid
        assert db.ping(now.url).startswith("18.")
    finally:
        os.waitpid(postmaster.pid, 0)


def test_a_pid_file_naming_another_program_is_stale(tmp_path: Path, stop_after: Callable[[Path], Path]) -> None:
    data_dir = stop_after(tmp_path / "pgdata")
    db.start_embedded(data_dir)
    lines = (data_dir / "postmaster.pid").read_text().split("\n")
    db.stop_embedded(data_dir)
    # After a crash and a reboot, the pid in postmaster.pid belongs to whatever runs now.
    other = subprocess.Popen(["sleep", "300"])
    try:
        (data_dir / "postmaster.pid").write_text("\n".join([str(other.pid), *lines[1:]]))
        status = db.embedded_status(data_dir)
        assert not status.running and status.problem is not None and "another program" in status.problem
        assert db.ping(db.start_embedded(data_dir)).startswith("18.")
        assert other.poll() is None, "the unrelated process was signalled"
    finally:
        other.kill()
        other.wait()
