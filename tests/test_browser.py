"""Every notebook, run with Run > Run All Cells in JupyterLab in a real (headless) Chromium.

nbval checks what the kernel sends; this checks what a user sees: no error
output, the ER diagram drawn as SVG, plots as images, DataFrames as HTML
tables (see ``browser_helpers`` for where each expectation comes from). One
JupyterLab server and one browser serve all notebooks. The server runs on a
copy of ``notebooks/`` with the saved outputs removed, so every output on the
page comes from this run and the committed files are never saved over. A
screenshot of each notebook is saved; a failure's message gives its path.

Needs Debian's ``chromium`` and the ``playwright`` package (no browser
download); the test skips without them. Deselect it with ``-m "not browser"``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from browser_helpers import CHROMIUM_ARGS, DONE, READ_CELLS, SETTINGS, expectations, problems

from helpers import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOKS = sorted(path.name for path in (REPO_ROOT / "notebooks").glob("*.ipynb"))
ENABLE = "apt-get install chromium (as root) and pip install playwright to run it"
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
RUN_TIMEOUT = 600  # seconds for one notebook's Run All: nbval allows 300 per cell

pytestmark = pytest.mark.browser


@dataclass
class Lab:
    """A running JupyterLab server and a browser to look at it with."""

    base: str
    token: str
    browser: object
    shots: Path

    def api(self, path: str, method: str = "GET") -> object:
        request = urllib.request.Request(f"{self.base}/api/{path}?token={self.token}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_notebooks(target: Path) -> Path:
    """A copy of the repo's notebooks without outputs, beside a copy of ``alembic/`` (02 reads ``../alembic``)."""
    shutil.copytree(REPO_ROOT / "alembic", target / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    folder = target / "notebooks"
    folder.mkdir()
    for name in NOTEBOOKS:
        notebook = nbformat.read(REPO_ROOT / "notebooks" / name, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(notebook, folder / name)
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not CHROMIUM.exists():
        pytest.skip(f"needs {CHROMIUM}: {ENABLE}")
    sync_api = pytest.importorskip("playwright.sync_api", reason=f"needs playwright: {ENABLE}")
    root = tmp_path_factory.mktemp("browser")
    folder = copy_notebooks(root)
    for name, text in SETTINGS.items():
        (root / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "settings" / name).write_text(text)
    port, token = free_port(), secrets.token_hex(16)
    log = (root / "jupyter.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--notebook-dir={folder}",
         f"--LabApp.user_settings_dir={root / 'settings'}", f"--LabApp.workspaces_dir={root / 'workspaces'}"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "JUPYTER_RUNTIME_DIR": str(root / "runtime")},
    )
    try:
        lab = Lab(f"http://127.0.0.1:{port}", token, None, root / "screenshots")
        lab.shots.mkdir()
        deadline = time.monotonic() + 60
        while True:
            try:
                lab.api("status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start; its log: {log.name}")
                time.sleep(0.2)
        print(f"\nscreenshots in {lab.shots}, JupyterLab's log in {log.name}")
        with sync_api.sync_playwright() as playwright:
            lab.browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield lab
            lab.browser.close()
    finally:
        try:
            lab.api("shutdown", method="POST")  # shuts the kernels down too
            server.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            server.kill()
            server.wait()
        log.close()


def wait_for_kernel(lab: Lab, name: str) -> None:
    """Until the notebook's kernel is started and idle: Run All before that opens a Select Kernel dialog."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        sessions = lab.api("sessions")
        if any(s["path"] == name and s["kernel"]["execution_state"] == "idle" for s in sessions):
            return
        time.sleep(0.3)
    pytest.fail(f"{name}: no idle kernel after 120 s")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(lab: Lab, name: str) -> None:
    count, expected = expectations(REPO_ROOT / "notebooks" / name)
    page = lab.browser.new_page(viewport={"width": 1280, "height": 900})
    shot = lab.shots / f"{Path(name).stem}.png"
    try:
        # ?reset: a fresh workspace, so only this notebook is open.
        page.goto(f"{lab.base}/lab/tree/{name}?reset&token={lab.token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        wait_for_kernel(lab, name)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
        found: list[str] = []
        try:
            page.wait_for_function(DONE, timeout=RUN_TIMEOUT * 1000, polling=250)
        except Exception as err:  # playwright's TimeoutError; the check below says what is missing
            found.append(f"Run All Cells did not finish in {RUN_TIMEOUT} s ({type(err).__name__})")
        # Mermaid and images render after the kernel is done: give them a moment.
        deadline = time.monotonic() + 20
        while True:
            now = problems(count, expected, page.evaluate(READ_CELLS))
            if not now or time.monotonic() > deadline:
                break
            page.wait_for_timeout(500)
        found += now
        # The screenshot shows the first error output, else the ER diagram, else where Run All left off.
        focus = STDERR if found else ".jp-RenderedMermaid"
        if page.locator(focus).count():
            page.locator(focus).first.scroll_into_view_if_needed()
        page.screenshot(path=str(shot))
        assert not found, f"{name} in JupyterLab (screenshot: {shot}):\n" + "\n".join(found)
    finally:
        page.close()
        for session in lab.api("sessions"):
            if session["path"] == name:
                lab.api(f"sessions/{session['id']}", method="DELETE")
