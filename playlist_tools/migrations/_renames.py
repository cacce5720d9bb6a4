"""Renames in autogenerate: a dropped and an added column (or table) that are one thing renamed.

Private to :mod:`playlist_tools.migrations`. (Being built for issue 12.)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

__all__ = ["apply_renames", "candidates"]


def candidates(dropped: Mapping[str, Hashable], added: Mapping[str, Hashable]) -> list[tuple[str, str]]:
    """Every ``(old, new)`` whose signatures are equal: the one rule of what may be a rename.

    ``dropped`` and ``added`` map a name to its signature (for a column: its
    type and nullability; for a table: its columns). A pair is unambiguous
    when neither of its names appears in another pair.

    Examples
    --------
    >>> candidates({"media_type": ("VARCHAR(120)", True)},
    ...            {"file_format": ("VARCHAR(120)", True), "n": ("INTEGER", True)})
    [('media_type', 'file_format')]
    """
    return sorted((old, new) for old, sig in dropped.items() for new, other in added.items() if sig == other)


def apply_renames(context: Any, revision: Any, directives: list[Any]) -> None:
    """Turn confirmed drop+add pairs in ``directives`` into renames (issue 12; not yet)."""
    return None
