"""Columns as a Mermaid ER diagram, with what changed marked: the drawing shared by every erd().

Private to :mod:`playlist_tools.schema`. :func:`draw` takes the frame of
``_live.all_columns`` (from the live database or a replayed revision) and,
for a diagram of changes, :class:`Marks` (built by ``_diff``).

Mermaid 11.16 (what JupyterLab 4.6 bundles) styles ER entities
(``classDef``, ``entity:::class``, since Mermaid 11.5) and gives them
labels (``entity["label"]``); a changed *attribute* can only carry a
comment. So a change is said three ways: the entity's colour, its label
(``songs (changed)``) and each column's comment (``"renamed from
media_type"``), and the plain text reads without a renderer.

Identifiers are drawn as Mermaid words (``my note`` as ``my_note``, with
``column my note`` in its comment; a table as ``my_table["my table"]``),
and every label and comment is escaped (:func:`playlist_tools._mermaid.escaped`),
so any name gives a diagram that parses and no HTML passes through.

Examples
--------
>>> import pandas as pd
>>> described = pd.DataFrame({"table": ["t"], "attnum": [1], "name": ["id"], "type": ["integer"],
...     "nullable": [False], "default": [pd.NA], "primary_key": [True], "foreign_key": [pd.NA], "indexed": [True]})
>>> print(draw(described, ()))
erDiagram
    t {
        integer id PK
    }
>>> print(draw(described, (), Marks(tables={"t": "added"}, notes={("t", "id"): ["added"]})))
erDiagram
    t["t (added)"]:::added {
        integer id PK "added"
    }
    classDef added fill:#e6f4ea,stroke:#1e8e3e
    classDef dropped fill:#fce8e6,stroke:#d93025,stroke-dasharray:5 3
    classDef changed fill:#fef7e0,stroke:#e37400
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from playlist_tools._mermaid import MermaidDiagram, escaped, word

__all__ = ["CLASSES", "Marks", "draw"]

CLASSES = {
    "added": "fill:#e6f4ea,stroke:#1e8e3e",
    "dropped": "fill:#fce8e6,stroke:#d93025,stroke-dasharray:5 3",
    "changed": "fill:#fef7e0,stroke:#e37400",
}
"""The colour of each kind of change: the ``classDef`` lines of a diagram of changes."""

_SHORT_TYPES = {
    "character varying": "varchar", "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp", "time with time zone": "timetz",
    "time without time zone": "time", "double precision": "float8", "bit varying": "varbit",
    "character": "char",
}


@dataclass(frozen=True)
class Marks:
    """What changed, as the diagram shows it.

    ``tables``: table -> ``added``/``dropped``/``changed``; ``labels``: table ->
    a longer entity label (``songs (renamed from tracks)``); ``notes``:
    (table, column) -> the column's notes; ``links``: (parent, child, column) ->
    ``added``/``dropped``; ``extra``: rows in ``all_columns``' shape of what is
    gone (dropped tables and columns), drawn after what is there.
    """

    tables: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    notes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    links: dict[tuple[str, str, str], str] = field(default_factory=dict)
    extra: pd.DataFrame | None = None


def mermaid_type(pg_type: str) -> tuple[str, str]:
    """Mermaid's spelling of a type, and the full type when it had to be cut (else ``""``)."""
    for long, short in _SHORT_TYPES.items():
        pg_type = pg_type.replace(long, short)
    # A Mermaid type is one word of letters, digits, -, _, () and []: no commas, no spaces.
    if "," in pg_type:
        return pg_type.split("(")[0].replace(" ", "_"), pg_type
    return pg_type.replace(" ", "_"), ""


def _comment(parts: Sequence[str]) -> str:
    text = "; ".join(p for p in parts if p)
    return f' "{escaped(text)}"' if text else ""


def _entity(table: str, marks: Marks | None) -> str:
    """The entity's id (a Mermaid word), with a label where the name is not one or the table changed."""
    if marks is None or table not in marks.tables:
        return table if word(table) == table else f'{word(table)}["{escaped(table)}"]'
    kind = marks.tables[table]
    label = marks.labels.get(table, f"{table} ({kind})")
    return f'{word(table)}["{escaped(label)}"]:::{kind}'


def draw(described: pd.DataFrame, exclude: Sequence[str], marks: Marks | None = None) -> MermaidDiagram:
    """The ER diagram of ``described`` (``_live.all_columns``' frame), without the ``exclude`` tables."""
    if marks is not None and marks.extra is not None and not marks.extra.empty:
        # What is gone goes after what is there, in its old order.
        gone = marks.extra.assign(attnum=marks.extra["attnum"] + 100_000)
        described = pd.concat([described, gone.astype(described.dtypes.to_dict())], ignore_index=True)
    described = described[~described["table"].isin(list(exclude))]
    described = described.sort_values(["table", "attnum"], kind="stable")
    lines, links = ["erDiagram"], []
    for table, own in described.groupby("table", sort=True):
        lines.append(f"    {_entity(str(table), marks)} {{")
        for column in own.itertuples():
            keys = ["PK"] * bool(column.primary_key) + ["FK"] * pd.notna(column.foreign_key)
            kind, full = mermaid_type(column.type)
            if word(kind) != kind:  # a type named with quotes or symbols: the word, and the type in the comment
                kind, full = word(kind), full or column.type
            notes = marks.notes.get((str(table), column.name), []) if marks is not None else []
            # A name that is not a Mermaid word (my note, <b>x</b>) is drawn as one, and named in the comment.
            named = [] if word(column.name) == column.name else [f"column {column.name}"]
            mark = f" {', '.join(keys)}" if keys else ""
            lines.append(f"        {kind} {word(column.name)}{mark}{_comment([*named, full, *notes])}")
            if pd.notna(column.foreign_key):
                for target in column.foreign_key.split(", "):
                    parent = target.split(".")[0]
                    one = "|o" if column.nullable else "||"
                    change = marks.links.get((parent, str(table), column.name)) if marks is not None else None
                    label = f"{column.name} ({change})" if change else column.name
                    links.append(f'    {word(parent)} {one}--o{{ {word(str(table))} : "{escaped(label)}"')
        lines.append("    }")
    styles = [f"    classDef {name} {style}" for name, style in CLASSES.items()] if marks is not None else []
    return MermaidDiagram("\n".join(lines + sorted(links) + styles))
