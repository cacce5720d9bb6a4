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
>>> escaped("<b>50%</b> & #1")
'#lt;b#gt;50#37;#lt;/b#gt; #amp; #35;1'
>>> word("my note"), word("songs")
('my_note', 'songs')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MermaidDiagram", "escaped", "quoted", "word"]

# Mermaid turns #name; and #123; into the character, after it has parsed the diagram and sanitised the HTML: so a
# character that would end a label ("), start a comment (%%), escape (\\) or be read as HTML (<, >, &) is written
# so, and # itself first, so that text which looks like an entity stays text.
_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "%": "#37;", "\\": "#92;"}
_SPECIAL = re.compile("|".join(re.escape(char) for char in _ENTITIES))
# A word as Mermaid 11's ER lexer reads an entity or attribute name (its ATTRIBUTE_WORD, less "*", "." and ",").
_WORD = re.compile(r"[A-Za-z_\u00C0-\uFFFF][A-Za-z0-9\-_\[\]()\u00C0-\uFFFF]*")


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


def escaped(text: str) -> str:
    """``text`` on one line, each character Mermaid would read as syntax or HTML written as its entity."""
    return _SPECIAL.sub(lambda found: _ENTITIES[found.group()], " ".join(text.split()))


def quoted(text: str) -> str:
    """``text`` as a double-quoted Mermaid label (:func:`escaped`: a ``"`` inside becomes ``#quot;``)."""
    return f'"{escaped(text)}"'


def word(name: str) -> str:
    """``name`` as one word Mermaid reads as a name: itself when it is one, else each other character as ``_``.

    The name itself then goes in a label or comment (:func:`escaped`), so nothing is lost.
    """
    if _WORD.fullmatch(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_\u00C0-\uFFFF]", "_", name)
    return cleaned if _WORD.fullmatch(cleaned) else f"_{cleaned}"
