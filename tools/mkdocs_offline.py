"""MkDocs hook (mkdocs.yml ``hooks:``): every page of the site loads nothing from the network.

mkdocs-jupyter renders each notebook with nbconvert's lab template, which puts
two CDN loaders into the page: MathJax (a ``<script src=https://cdnjs...>``,
fetched whether or not the notebook has any maths; ours have none) and
nbconvert's own Mermaid loader (an ES module that imports Mermaid from a CDN
when the page has a ``text/vnd.mermaid`` output). Both are removed here; the
site draws Mermaid with the copy that ``make docs`` vendors from npm
(``docs/assets/notebook-mermaid.js``). Then every page is checked: a
``<script>``, stylesheet, image or frame that still points at another host, or
a dynamic ``import()`` of a URL, fails the build with one line naming the page
and the address, so an offline site stays offline as plugins change.

It also gives a notebook page's table of contents the headings' whole text:
mkdocs-jupyter leaves code out of it, so "## 5. `upgrade head`" was listed as "5.".
"""

from __future__ import annotations

import re

from mkdocs.exceptions import PluginError

_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.DOTALL)
_CDN_MODULE = re.compile(r"<script type=\"module\">(?:(?!</script>).)*?https://cdnjs\.cloudflare\.com(?:(?!</script>).)*?</script>",
                         re.DOTALL)
_REMOTE = re.compile(
    r"""<(?:script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc\s*=\s*["']?((?:https?:)?//[^"'\s>]+)"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?((?:https?:)?//[^"'\s>]+)[^>]*>"""
    r"""|\bimport\(\s*["']((?:https?:)?//[^"']+)""",
    re.IGNORECASE,
)


_HEADING = re.compile(r"<h[1-6] id=\"([^\"]+)\">(.*?)(?:<a class=\"anchor-link\"|</h[1-6]>)", re.DOTALL)


def on_page_content(content: str, page, config, files) -> str:  # noqa: ANN001 - MkDocs' hook signature
    """A notebook page's table of contents, titled and linked from the headings themselves.

    mkdocs-jupyter builds it from the Markdown without code spans, so "## 5. `upgrade head`" became
    an entry "5." linking to "#5", an anchor the page does not have. The entries and the headings
    come in the same order; when their numbers differ nothing is changed, and the build's link
    check (validation.anchors) reports what is wrong.
    """
    if not page.file.src_uri.endswith(".ipynb"):
        return content
    headings = _HEADING.findall(content)
    entries, stack = [], list(reversed(list(page.toc)))
    while stack:
        entry = stack.pop()
        entries.append(entry)
        stack += reversed(list(entry.children))
    if len(entries) == len(headings):
        for entry, (anchor, inner) in zip(entries, headings, strict=True):
            # The text stays HTML-escaped, as the theme puts a title into the page as it is.
            entry.id, entry.title = anchor, re.sub(r"<[^>]+>", "", inner).strip()
    return content


def on_post_page(output: str, page, config) -> str:  # noqa: ANN001 - MkDocs' hook signature
    """The page without the notebooks' CDN loaders; a build error if anything else remote is left."""
    output = _CDN_MODULE.sub("", _MATHJAX.sub("", output))
    for match in _REMOTE.finditer(output):
        address = next(group for group in match.groups() if group)
        if match.group(0).lower().startswith("<link") and not re.search(
            r"""rel\s*=\s*["']?(?:stylesheet|preload|modulepreload|icon|manifest)""", match.group(0), re.IGNORECASE
        ):
            continue  # a plain hyperlink-like <link> (rel=canonical...) loads nothing
        raise PluginError(f"{page.file.src_uri} would load {address} from the network; vendor it or drop it")
    return output
