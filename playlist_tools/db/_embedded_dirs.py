"""Which folders the embedded server may use, and which ``db reset`` may delete.

Private to :mod:`playlist_tools.db.embedded`, whose docstring states the
rules. Nothing here changes anything on disk but :func:`write_marker`.

Examples
--------
>>> import tempfile, pathlib
>>> kind_of(pathlib.Path(tempfile.mkdtemp()))
'empty'
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playlist_tools.errors import SettingError

PGDATA_ENV = "PLAYLIST_TOOLS_PGDATA"
"""Environment variable overriding where the embedded server keeps its data."""

MARKER = ".playlist-tools-pgdata"
"""File we write into a data directory after ``initdb`` made it: what ``db reset`` may delete."""

LEGACY_MARKER = ".handle_pids.json"
"""What the wheel's ``get_server`` (this project until the marker existed) leaves in every data directory."""

_SOCKET_FILE = ".s.PGSQL.5432"
_SUN_PATH_MAX = 104 if sys.platform == "darwin" else 108  # bytes in sockaddr_un.sun_path, NUL included


def check_data_dir(data_dir: Path) -> None:
    """Refuse a data directory path the server could not use safely, before touching anything.

    A path too long for a Unix socket name would make the socket go to a
    shared directory, where anyone could connect as superuser (trust
    authentication): the socket must stay inside the data directory, which
    only the server's user can enter. libpq splits its ``host`` at commas,
    and ``postmaster.pid`` is one value a line.
    """
    if os.name != "posix":
        raise SettingError("the embedded PostgreSQL needs Linux or macOS; set DATABASE_URL to a PostgreSQL server")
    if data_dir.exists() and not data_dir.is_dir():
        raise SettingError(
            f"the embedded server's data directory {data_dir} is a file; "
            f"set {PGDATA_ENV} to a directory (it is created if missing)"
        )
    for bad, name in ((",", "a comma"), ("\n", "a line break")):
        if bad in str(data_dir):
            raise SettingError(
                f"the embedded server's data directory {str(data_dir)!r} contains {name}, which a PostgreSQL "
                f"socket path cannot; set {PGDATA_ENV} to a path without one"
            )
    socket = os.fsencode(data_dir.expanduser().resolve() / _SOCKET_FILE)
    if len(socket) >= _SUN_PATH_MAX:
        limit = _SUN_PATH_MAX - 1 - len(_SOCKET_FILE) - 1
        raise SettingError(
            f"the embedded server's data directory {data_dir} is too long for a Unix socket path "
            f"({len(socket) - len(_SOCKET_FILE) - 1} bytes, at most {limit}); set {PGDATA_ENV} to a shorter path"
        )


def kind_of(data_dir: Path) -> str:
    """``"missing"``, ``"empty"``, ``"ours"``, ``"legacy"`` (ours, unmarked), ``"foreign"`` or ``"other"``."""
    try:
        names = {entry.name for entry in data_dir.iterdir()} if data_dir.exists() else None
    except OSError as err:
        raise SettingError(
            f"cannot read the embedded server's data directory {data_dir} ({err.strerror}); set {PGDATA_ENV} "
            "to a folder you can read"
        ) from err
    if names is None:
        return "missing"
    if not names:
        return "empty"
    if MARKER in names:
        return "ours"
    if "PG_VERSION" in names:
        return "legacy" if LEGACY_MARKER in names else "foreign"
    return "other"


NOT_OURS = {
    "other": "is not empty and holds no PostgreSQL data (no PG_VERSION)",
    "foreign": f"holds a PostgreSQL data directory that playlist-tools did not make (no {MARKER})",
}


def write_marker(data_dir: Path) -> None:
    """Mark ``data_dir`` as made by playlist-tools (O_EXCL|O_NOFOLLOW: the folder belongs to the server's user)."""
    fd = os.open(data_dir / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as marker:
        marker.write("made by playlist-tools: `playlist-tools db reset` may delete this data directory\n")
