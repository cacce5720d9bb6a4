"""Every page of the built documentation site (``make docs``) in headless Chromium.

The site must work offline and show what the pages hold, so each page is opened
from a small HTTP server on loopback and checked for: no console error, no
failed request (nor an HTTP error), no request to any host but this machine
(Chromium resolves no host name here, so such a request fails at once, and it is
reported), each Mermaid diagram drawn as an inline SVG, each plot shown as a
loaded image, each link within the page to an anchor it has. Then the search is
asked a question and must answer with a page, from the server and with the site
opened as files. What a page must show comes from its source, not from the built
HTML: the ```` ```mermaid ```` fences of its Markdown, or, for a notebook, the
Mermaid and PNG outputs committed in the ``.ipynb`` (so a renderer that silently
dropped them fails here). A screenshot of every page at 1280 px is kept
under pytest's temp folder (``.../docs-site0/screenshots/``).

Skips, saying why, when ``site/`` is not built (run ``make docs``), or without
Debian's ``chromium`` or the ``playwright`` package. ``.ci/run`` builds the site
and runs this file with ``-m docs``.
"""

from __future__ import annotations

import functools
import http.server
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from browser_helpers import CHROMIUM_ARGS

from helpers import REPO_ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SITE = REPO_ROOT / "site"
DOCS = REPO_ROOT / "docs"
CHROMIUM = Path("/usr/bin/chromium")
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
SHOT_WIDTH = 1280
NO_DNS = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"

PAGES = sorted(path.relative_to(SITE).as_posix() for path in SITE.rglob("*.html")) if SITE.is_dir() else []

WAIT_FOR_DIAGRAMS = "() => document.documentElement.dataset.mermaidDone !== undefined"
READ_PAGE = """() => {
    const loaded = img => img.complete && img.naturalWidth > 0;
    return {
        svgs: document.querySelectorAll('.pt-mermaid > svg').length,
        drawErrors: [...document.querySelectorAll('.pt-mermaid-error')].map(e => e.textContent),
        undrawn: document.querySelectorAll('pre.pt-mermaid-source, .jp-Mermaid > pre').length,
        plots: [...document.querySelectorAll('.jp-OutputArea-output img[src^="data:image/png"]')].filter(loaded).length,
        brokenImages: [...document.querySelectorAll('img')].filter(img => !loaded(img))
            .map(img => img.src.slice(0, 80)),
        brokenAnchors: [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href').slice(1))
            .filter(id => id && !document.getElementById(decodeURIComponent(id))),
    };
}"""


def expected(page: str) -> tuple[int, int]:
    """The Mermaid diagrams and PNG plots the source of ``page`` holds."""
    source = DOCS / Path(page).with_suffix(".md")
    notebook = DOCS / Path(page).with_suffix(".ipynb")
    if notebook.is_file():
        diagrams = plots = 0
        for cell in nbformat.read(notebook, as_version=4).cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                diagrams += "```mermaid" in str(data.get("text/markdown", "")) or "text/vnd.mermaid" in data
                plots += "image/png" in data
        return diagrams, plots
    if source.is_file():
        return len(re.findall(r"^```mermaid\s*$", source.read_text(), re.MULTILINE)), 0
    return 0, 0  # a page the theme makes (404.html)


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    if not (SITE / "index.html").is_file():
        pytest.skip("site/ is not built: run `make docs` first")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"needs {CHROMIUM}: apt-get install chromium (as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -e '.[test]'")
    with sync_api.sync_playwright() as playwright:
        # No name resolves, so a request to another host fails here instead of leaving the machine
        # (it is still seen and reported by Visit); the site is served on a literal 127.0.0.1.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, NO_DNS])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs-site") / "screenshots"
    folder.mkdir()
    return folder


class Visit:
    """One browser page that records what goes wrong while it loads."""

    def __init__(self, browser: object) -> None:
        self.context = browser.new_context(viewport={"width": SHOT_WIDTH, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.context.on("request", self._only_loopback)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught error: {error}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)

    def _only_loopback(self, request: object) -> None:
        host = urlsplit(request.url).hostname or ""
        if urlsplit(request.url).scheme in ("http", "https") and host not in LOOPBACK:
            self.problems.append(f"request to another host: {request.url}")

    def _console(self, message: object) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _failed(self, request: object) -> None:
        url = urlsplit(request.url)
        if url.scheme == "file" or (url.hostname or "") in LOOPBACK:  # other hosts are reported once, above
            self.problems.append(f"failed request: {request.url} ({request.failure})")

    def _response(self, response: object) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status} for {response.url}")

    def close(self) -> None:
        self.context.close()


@pytest.mark.docs
def test_site_has_the_pages_of_the_nav() -> None:
    if not PAGES:
        pytest.skip("site/ is not built: run `make docs` first")
    for page in ["index.html", "notebooks/02-the-initial-migration.html", "reference/frames.html",
                 "troubleshooting.html", "benchmarks.html"]:
        assert page in PAGES, f"{page} is missing from site/; rebuild with `make docs`"


@pytest.mark.docs
@pytest.mark.parametrize("page", PAGES or ["(site not built)"])
def test_page(page: str, site_url: str, browser: object, shots: Path) -> None:
    visit = Visit(browser)
    try:
        visit.page.goto(site_url + page, wait_until="load")
        try:
            visit.page.wait_for_function(WAIT_FOR_DIAGRAMS, timeout=30_000)
        except Exception:  # playwright's TimeoutError; the check below says what is missing
            visit.problems.append("the Mermaid script never finished (is assets/vendor/mermaid.min.js there?)")
        visit.page.wait_for_load_state("networkidle")
        shown = visit.page.evaluate(READ_PAGE)
        shot = shots / (page.replace("/", "__") + ".png")
        visit.page.screenshot(path=str(shot), full_page=False)
    finally:
        visit.close()
    diagrams, plots = expected(page)
    problems = list(visit.problems)
    problems += [f"Mermaid could not draw: {text[:200]}" for text in shown["drawErrors"]]
    if shown["svgs"] != diagrams or shown["undrawn"]:
        problems.append(f"{diagrams} Mermaid diagram(s) in the source, {shown['svgs']} drawn as SVG")
    if shown["plots"] != plots:
        problems.append(f"{plots} plot(s) in the notebook, {shown['plots']} shown as a loaded image")
    problems += [f"image not loaded: {src}" for src in shown["brokenImages"]]
    problems += [f"a link to #{anchor}, which the page does not have" for anchor in sorted(set(shown["brokenAnchors"]))]
    assert not problems, f"{page} ({shot}):\n" + "\n".join(problems)


def search(visit: Visit, url: str, query: str) -> list[str]:
    """The links the search box lists for ``query`` on the page at ``url``."""
    visit.page.goto(url, wait_until="networkidle")
    # Typed before the search worker has built its index, a query is dropped ("Type to start
    # searching"), as a person typing that fast would see: type it again, for up to 30 s.
    for _ in range(10):
        visit.page.fill("input.md-search__input", "")
        visit.page.type("input.md-search__input", query)
        try:
            visit.page.wait_for_selector(".md-search-result__item", timeout=3_000)
        except Exception:  # playwright's TimeoutError: not answered yet
            continue
        return visit.page.eval_on_selector_all(".md-search-result__item a", "links => links.map(a => a.href)")
    return []


@pytest.mark.docs
@pytest.mark.parametrize(("query", "page"), [("read_frame", "frames"), ("allow_data_loss", "tutorial")])
def test_search_answers(query: str, page: str, site_url: str, browser: object) -> None:
    visit = Visit(browser)
    try:
        links = search(visit, site_url + "index.html", query)
    finally:
        visit.close()
    assert not visit.problems, "\n".join(visit.problems)
    assert any(page in link for link in links), f"searching {query!r} found no {page} page: {links[:10]}"


@pytest.mark.docs
def test_site_works_from_disk(browser: object) -> None:
    """Opened as files (no server at all), the search answers and a notebook's diagram is drawn."""
    if not (SITE / "index.html").is_file():
        pytest.skip("site/ is not built: run `make docs` first")
    visit = Visit(browser)
    try:
        links = search(visit, (SITE / "index.html").as_uri(), "read_frame")
        visit.page.goto((SITE / "notebooks" / "02-the-initial-migration.html").as_uri(), wait_until="load")
        visit.page.wait_for_function(WAIT_FOR_DIAGRAMS, timeout=30_000)
        svgs = visit.page.evaluate("() => document.querySelectorAll('.pt-mermaid > svg').length")
    finally:
        visit.close()
    assert not visit.problems, "\n".join(visit.problems)
    assert any("frames" in link for link in links), f"searching from disk found no frames page: {links[:10]}"
    assert svgs == expected("notebooks/02-the-initial-migration.html")[0]


def test_dependencies_page_names_every_dependency() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    specs += [spec for extra in project["optional-dependencies"].values() for spec in extra]
    names = {re.split(r"[\[<>=;! ]", spec, maxsplit=1)[0].lower() for spec in specs}
    page = (DOCS / "dependencies.md").read_text().lower()
    missing = sorted(name for name in names if f"`{name}`" not in page and f"`{name}[" not in page)
    assert not missing, f"docs/dependencies.md does not say why these are dependencies: {missing}"
