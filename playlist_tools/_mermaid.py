"""Mermaid text that JupyterLab draws: the one type every diagram of playlist-tools returns.

Shared by :mod:`playlist_tools.schema` (ER diagrams) and
:mod:`playlist_tools.migrations` (the history as a flowchart), so that
neither imports the other for it.

Examples
--------
>>> diagram = MermaidDiagram("flowchart TB\\n    a --> b")
>>> print(diagram)
flowchart TB
    a --> b
>>> print(diagram._repr_markdown_())
```mermaid
flowchart TB
    a --> b
```
>>> quoted('say "hi"')
'"say #quot;hi#quot;"'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MermaidDiagram", "quoted"]


@dataclass(frozen=True, repr=False)
class MermaidDiagram:
    """Mermaid text that JupyterLab (4.1+) renders as a diagram.

    In a notebook the Markdown representation (a ```` ```mermaid ```` fence)
    is drawn; everywhere else ``str()`` and ``repr()`` give the plain Mermaid
    text, ready to paste into a Markdown file or https://mermaid.live.
    """

    text: str

    def _repr_markdown_(self) -> str:
        return f"```mermaid\n{self.text}\n```"

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def quoted(text: str) -> str:
    """``text`` as a double-quoted Mermaid label: a ``"`` inside becomes Mermaid's entity ``#quot;``."""
    return '"' + " ".join(text.split()).replace('"', "#quot;") + '"'
