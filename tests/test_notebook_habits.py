"""Issue 20: notebooks that use the toolkit, speak to readers, and open in a JupyterLab without the news pop-up."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from jupyterlab.commands import get_app_dir
from jupyterlab_server.settings_utils import _get_overrides

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
REPO = Path(__file__).parents[1]


def cells(path: Path, kind: str) -> list[str]:
    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == kind]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_notebook_reads_with_pd_read_sql(path: Path) -> None:
    assert not [source for source in cells(path, "code") if "read_sql" in source]


def test_setup_and_analyst_notebooks_use_sql_with_a_bound_variable() -> None:
    bound = re.compile(r"^%%?sql\b.*?[^:]:[A-Za-z_]\w*", re.DOTALL)
    using = {path.name for path in NOTEBOOKS if any(bound.search(source) for source in cells(path, "code"))}
    assert {"01-setup.ipynb", "03-exploring-the-sample-playlists.ipynb"} <= using


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_recaps_are_for_readers(path: Path) -> None:
    text = "\n".join(cells(path, "markdown"))
    assert "Before committing" not in text and "make test" not in text


def test_no_false_sentence_about_the_alembic_cli() -> None:
    text = "\n".join("\n".join(cells(path, "markdown")) for path in NOTEBOOKS)
    assert "never asks; it just runs" not in text


def test_jupyterlab_news_pop_up_is_off_in_this_environment() -> None:
    """`make lab` and `make test` copy jupyter/overrides.json into the .venv's JupyterLab (never the home)."""
    wanted = json.loads((REPO / "jupyter" / "overrides.json").read_text())
    overrides, error = _get_overrides(str(Path(get_app_dir()) / "settings"))
    assert error == ""
    notification = overrides.get("@jupyterlab/apputils-extension:notification", {})
    assert notification == wanted["@jupyterlab/apputils-extension:notification"], (
        "run `make .venv/share/jupyter/lab/settings/overrides.d/playlist-tools.json` (make lab and make test do)"
    )
    assert notification["fetchNews"] == "false"
