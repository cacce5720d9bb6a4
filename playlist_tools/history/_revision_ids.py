"""Readable revision ids: ``0006`` after ``0005``, never a random one (the design's decision 4)."""

from __future__ import annotations

from alembic.script import ScriptDirectory

__all__ = ["next_id"]


def next_id(script: ScriptDirectory) -> str:
    """The next readable revision id: one more than the largest numeric id, four digits.

    Examples
    --------
    >>> from playlist_tools import history
    >>> int(next_id(history.script_directory(history.config()))) > 5
    True
    """
    numbers = [int(s.revision) for s in script.walk_revisions() if s.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"
