"""The Parquet half of :func:`playlist_tools.frames.to_parquet`: a file that appears whole or not at all.

Private to :mod:`playlist_tools.frames`.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from playlist_tools import db
from playlist_tools.errors import FrameError, PlaylistToolsError, first_line
from playlist_tools.frames import _read


def write(
    query: _read.Query, path: Path, con: db.Connectable, params: Mapping[str, Any] | None, batch_rows: int
) -> int:
    """Stream the result into ``path`` through a hidden ``.partial`` file of ours; the number of rows.

    A file it replaces keeps its permission bits (a 0600 file stays 0600); a new one gets the umask's.
    """
    batch_rows = _read.whole_number("batch_rows", batch_rows, "rows")
    if path.is_dir():
        raise FrameError(f"cannot write {str(path)!r:.80}: it is a folder; name a file in it, e.g. .../result.parquet")
    if not path.parent.is_dir():
        raise FrameError(f"cannot write {str(path)!r:.80}: folder {str(path.parent)!r:.80} does not exist; "
                         "create it first (Path(...).mkdir(parents=True)) or fix the path")
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    rows, ours = 0, False
    try:
        # O_EXCL: a file of that name that we did not create is never overwritten. An existing file's mode carries
        # over from the start (no moment with a wider one); a new file gets 0o666 less the umask, as open() gives.
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 if mode is None else mode & 0o666))
        ours, writer = True, None
        if mode is not None:
            os.chmod(partial, mode)  # exactly, whatever the umask
        for table, _ in _read.arrow_tables(query, con, params, batch_rows, 1):
            writer = writer or pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            rows += table.num_rows
        writer.close()  # type: ignore[union-attr]
        partial.replace(path)
    except PlaylistToolsError:
        raise
    except OSError as err:  # the disk's; the database's arrive as FrameError
        raise FrameError(f"cannot write {str(path)!r:.80}: {first_line(err)}; nothing was written") from err
    finally:
        if ours:
            partial.unlink(missing_ok=True)
    return rows
