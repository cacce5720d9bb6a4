"""Griffe extension for the docs' API reference: the reST bits of our numpydoc docstrings as Markdown.

The docstrings follow numpydoc, which writes cross-references as Sphinx roles
(``:func:`read_frame```) and tables as reST simple tables. mkdocstrings renders
the text as Markdown, where a role would show as ``:func:`` before the code and
a simple table as one run-on paragraph. This rewrites, for the site only (the
source is not touched): a role becomes plain code (``read_frame``), and a simple
table (rows between ``====  ====`` rules) becomes a Markdown table.
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|py:\w+):`~?([^`]+)`")
_RULE = re.compile(r"^(\s*)(=+)((?:\s+=+)+)\s*$")


def _simple_tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        rule = _RULE.match(lines[i])
        end = next((j for j in range(i + 1, len(lines)) if _RULE.match(lines[j])), None) if rule else None
        if rule is None or end is None:
            out.append(lines[i])
            i += 1
            continue
        # Column starts are where each run of "=" begins in the rule.
        starts = [m.start() for m in re.finditer(r"=+", lines[i])]
        rows = []
        for line in lines[i + 1:end]:
            cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
            rows.append("| " + " | ".join(cells) + " |")
        indent = rule.group(1)
        out += [indent + rows[0], indent + "|" + " --- |" * len(starts), *(indent + row for row in rows[1:])]
        i = end + 1
    return "\n".join(out)


class ReSTToMarkdown(griffe.Extension):
    """Rewrite each docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: object) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _simple_tables(_ROLE.sub(r"`\1`", obj.docstring.value))
