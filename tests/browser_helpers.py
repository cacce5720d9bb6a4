"""What ``test_browser.py`` expects of each notebook, and how it reads JupyterLab's page.

Expectations come from the committed notebook file, so they follow the
notebooks as they change: a code cell that calls ``erd(`` or has a saved
Mermaid output (``history_diagram()`` too) must show its diagram as an SVG,
one with a saved PNG output (or ``plt.show()``) must show an image, and
one with a saved DataFrame HTML table must show a ``<table class="dataframe">``.
Saved outputs are a safe basis because nbval (``pytest notebooks/``) fails
when a live output's MIME types differ from the saved ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # The machine may have no internet: without these Chromium's own background requests fail noisily.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

SETTINGS = {
    # Every cell stays in the DOM (no virtual scrolling), so each one can be checked.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none"}',
    # No news or update checks: no network requests, no toast over the notebook.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        '{"fetchNews": "false", "checkForUpdates": false}',
}

HTML_OFF = re.compile(r"""notebook_repr_html["']\s*,\s*False""")

DONE = """() => {
    if (document.querySelector('.jp-Dialog')) return true;
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent);
    if (prompts.some(text => text.includes('*'))) return false;
    const idle = document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]');
    // Run All stops at an error and leaves the later cells without a count.
    const error = document.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
    return Boolean(idle) && (prompts.every(text => /\\[\\d+\\]/.test(text)) || Boolean(error));
}"""
"""True once Run All has finished (or a dialog asks something)."""

READ_CELLS = """() => {
    const loaded = img => img.complete && img.naturalWidth > 0;
    return {
        dialog: [...document.querySelectorAll('.jp-Dialog')].map(e => e.innerText).join(' '),
        cells: [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map(cell => ({
            code: cell.classList.contains('jp-CodeCell'),
            prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
            stderr: [...cell.querySelectorAll(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')].map(e => e.innerText),
            svg: [...cell.querySelectorAll('.jp-RenderedMermaid img[src^="data:image/svg+xml"]')].filter(loaded).length,
            mermaidWarning: [...cell.querySelectorAll('.jp-RenderedMermaid.jp-mod-warning')].map(e => e.innerText),
            png: [...cell.querySelectorAll(
                '.jp-OutputArea-output[data-mime-type="image/png"] img')].filter(loaded).length,
            tables: cell.querySelectorAll('.jp-OutputArea-output table.dataframe').length,
        })),
    };
}"""
"""What the page shows, cell by cell, in notebook order."""


@dataclass
class Expected:
    """What one code cell must show after Run All Cells."""

    index: int
    svg: bool = False
    png: bool = False
    table: bool = False
    source: str = field(default="", repr=False)


def expectations(path: Path) -> tuple[int, list[Expected]]:
    """The number of cells in ``path`` and what each code cell must show.

    Examples
    --------
    >>> from helpers import REPO_ROOT
    >>> count, cells = expectations(REPO_ROOT / "notebooks" / "02-the-initial-migration.ipynb")
    >>> [cell.index for cell in cells if cell.svg] != []
    True
    """
    notebook = nbformat.read(path, as_version=4)
    html = not any(HTML_OFF.search(cell.source) for cell in notebook.cells if cell.cell_type == "code")
    expected = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        data = [output.get("data", {}) for output in cell.outputs]
        expected.append(Expected(
            index=index,
            svg="erd(" in cell.source or any("```mermaid" in str(bundle.get("text/markdown", "")) for bundle in data),
            png="plt.show()" in cell.source or any("image/png" in bundle for bundle in data),
            table=html and any('class="dataframe"' in str(bundle.get("text/html", "")) for bundle in data),
            source=cell.source,
        ))
    return len(notebook.cells), expected


def problems(count: int, expected: list[Expected], page: dict) -> list[str]:
    """One line per way the page falls short of ``expected`` (none when it shows everything)."""
    found: list[str] = []
    if page["dialog"]:
        found.append(f"a dialog is open: {page['dialog']!r}")
    cells = page["cells"]
    if len(cells) != count:
        return [*found, f"the page shows {len(cells)} cells, the notebook has {count}"]
    for cell in expected:
        shown = cells[cell.index]
        where = f"cell {cell.index} ({cell.source.splitlines()[0][:60]!r})" if cell.source else f"cell {cell.index}"
        if not re.search(r"\[\d+\]", shown["prompt"]):
            found.append(f"{where} did not run: its prompt is {shown['prompt']!r}")
        found += [f"{where} shows error output: {text.strip()[-300:]!r}" for text in shown["stderr"]]
        found += [f"{where}: Mermaid could not draw the diagram: {text[:300]!r}" for text in shown["mermaidWarning"]]
        if cell.svg and not shown["svg"]:
            found.append(f"{where} has a Mermaid diagram (erd(), history_diagram()) but shows no SVG of it")
        if cell.png and not shown["png"]:
            found.append(f"{where} has a plot but shows no PNG image")
        if cell.table and not shown["tables"]:
            found.append(f"{where} has a DataFrame HTML table saved but shows no <table class=\"dataframe\">")
    return found
