"""The revision history drawn as a Mermaid graph: revisions, branches and merges.

Private to :mod:`playlist_tools.migrations`. (Being built for issue 13.)
"""

from __future__ import annotations

from alembic.config import Config

__all__ = ["history_diagram"]


def history_diagram(config: Config | None = None) -> object:
    """The history as a Mermaid flowchart (issue 13; not yet)."""
    raise NotImplementedError("migrations.history_diagram is being built (issue 13)")
