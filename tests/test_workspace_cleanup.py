"""Workspaces of killed kernels are swept by the next Workspace.open; live and foreign ones are not."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

# _orphans: another process's owner record is written by hand; no public path writes one for another process.
from playlist_tools import _orphans, db, workspace
from playlist_tools.workspace import OWNER_FILE, Workspace

from helpers import url_text

KERNEL = """
import sys
from playlist_tools.workspace import Workspace
ws = Workspace.open("base", url=sys.argv[1])
print(ws.url.database, ws.directory, flush=True)
sys.stdin.readline()  # a kernel at work, until told to finish
ws.close()
"""


class Kernel:
    """A child Python process holding an open Workspace, as a notebook kernel does."""

    def __init__(self, server_url: URL) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", KERNEL, url_text(server_url)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        database, directory = self.process.stdout.readline().split()
        self.database, self.directory = database, Path(directory)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def finish(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)


def databases(server_url: URL) -> set[str]:
    with db.connection(server_url) as connection:
        return set(connection.execute(sa.text("SELECT datname FROM pg_database")).scalars())


@pytest.fixture
def kernels(server_url: URL) -> Iterator[list[Kernel]]:
    started: list[Kernel] = []
    yield started
    for kernel in started:
        kernel.finish()


def test_a_killed_kernels_workspace_is_dropped_by_the_next_open(server_url: URL, kernels: list[Kernel]) -> None:
    killed, alive = Kernel(server_url), Kernel(server_url)
    kernels += [killed, alive]
    killed.kill()
    # What the issue saw: the killed kernel's database and folder stay behind.
    assert {killed.database, alive.database} <= databases(server_url)
    assert (killed.directory / OWNER_FILE).is_file() and (alive.directory / OWNER_FILE).is_file()

    with Workspace.open("base", url=server_url) as mine:
        left = databases(server_url)
        assert killed.database not in left and not killed.directory.exists()
        assert alive.database in left and (alive.directory / "alembic.ini").is_file()
        assert mine.url.database in left

    alive.finish()  # a live kernel still cleans up after itself
    assert alive.database not in databases(server_url) and not alive.directory.exists()


def test_foreign_and_unrecorded_workspaces_are_left_alone(server_url: URL, kernels: list[Kernel]) -> None:
    """Owned by a process on another host, or with no owner recorded: we cannot know, so we keep them."""
    gone = Kernel(server_url)
    kernels.append(gone)
    gone.kill()  # its pid is free now: only the host tells the records below apart from gone's
    elsewhere = {"host": "elsewhere.invalid", "pid": gone.process.pid, "started": 0.0}
    foreign = Path(tempfile.mkdtemp(prefix="playlist-tools-workspace-"))
    unrecorded = Path(tempfile.mkdtemp(prefix="playlist-tools-workspace-"))
    (foreign / OWNER_FILE).write_text(json.dumps(elsewhere))
    (unrecorded / "alembic.ini").write_text("[alembic]\n")
    try:
        with db.fresh_database(server_url, prefix="pt_workspace") as foreign_url, \
                db.fresh_database(server_url, prefix="pt_workspace") as unrecorded_url:
            with _orphans.admin(server_url) as connection:
                _orphans.record_owner(connection, str(foreign_url.database), elsewhere)
            removed = workspace.sweep(server_url)
            # Gone, by this sweep or by any other process's Workspace.open that ran first.
            assert gone.database not in databases(server_url) and not gone.directory.exists(), removed
            left = databases(server_url)
            assert {foreign_url.database, unrecorded_url.database} <= left
            assert (foreign / OWNER_FILE).is_file() and (unrecorded / "alembic.ini").is_file()
    finally:
        shutil.rmtree(foreign)
        shutil.rmtree(unrecorded)
