"""The revision history drawn as a Mermaid flowchart: revisions, branches and merges.

Private to :mod:`playlist_tools.migrations`, which re-exports :func:`history_diagram`.
"""

from __future__ import annotations

import re

from alembic.config import Config

from playlist_tools._mermaid import MermaidDiagram, quoted
from playlist_tools.migrations._history import history

__all__ = ["history_diagram"]

_STYLES = {
    "head": "fill:#e8f0fe,stroke:#1a73e8",
    "current": "fill:#e6f4ea,stroke:#1e8e3e,stroke-width:3px",
}


def _node(rev: str) -> str:
    # A Mermaid node id: letters, digits and _ only, and never a keyword such as "end".
    return "r_" + re.sub(r"\W", "_", rev)


def history_diagram(config: Config | None = None, *, current: bool = False) -> MermaidDiagram:
    """The history as a Mermaid flowchart, base at the top, rendered inline by JupyterLab.

    Each revision is a node ``0002: Added description to Playlist``, with an
    arrow from each revision it revises: a branch point has several arrows
    out, a merge several in. Heads are marked ``(head)``. Nodes come in
    history order (base first; parallel branches by revision id) and arrows
    sorted, so the text is the same on every run for the same history.

    Parameters
    ----------
    config : alembic.config.Config or None
        As everywhere in :mod:`playlist_tools.migrations`.
    current : bool
        Also mark the revision(s) the config's database is at ``(current)``.
        Off by default: the history alone needs no database, and the diagram
        then depends only on the revision files.

    Raises
    ------
    DatabaseUnavailableError
        With ``current=True``, when the database cannot be reached.

    Examples
    --------
    >>> print(history_diagram())  # doctest: +ELLIPSIS
    flowchart TB
        r_0001["0001: Initial migration"]
        r_0002["0002: Added description to Playlist"]
        ...
        r_0005["0005: Added index on song genre (head)"]:::head
        r_0001 --> r_0002
        r_0002 --> r_0003
        ...
        classDef head fill:#e8f0fe,stroke:#1a73e8
    """
    listing = history(config, indicate_current=current)
    lines, arrows = ["flowchart TB"], []
    for row in listing.itertuples():
        marks = ["head"] * bool(row.is_head) + ["current"] * bool(row.is_current)
        label = (f"{row.rev}: {row.message}" if row.message else row.rev) + "".join(f" ({m})" for m in marks)
        style = f":::{marks[-1]}" if marks else ""
        lines.append(f"    {_node(row.rev)}[{quoted(label)}]{style}")
        if row.down_rev != "base":
            arrows += [f"    {_node(down)} --> {_node(row.rev)}" for down in row.down_rev.split(", ")]
    lines += sorted(arrows)
    lines += [f"    classDef {name} {style}" for name, style in _STYLES.items() if name != "current" or current]
    return MermaidDiagram("\n".join(lines))
