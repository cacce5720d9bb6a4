// Draws every Mermaid diagram of the site as inline SVG (open DOM, so it can be read and
// tested), with the Mermaid that `make docs` vendors into assets/vendor: no CDN.
// Sources: a ```mermaid fence in a Markdown page (pymdownx.superfences writes
// <pre class="pt-mermaid-source"><code>), and a notebook's diagram, which nbconvert writes as
// <div class="jp-Mermaid"><pre class="mermaid"> (playlist-tools' MermaidDiagram is a
// text/markdown output holding a ```mermaid fence). The Material theme would draw
// pre.mermaid itself, into a closed shadow root, so this script takes those over
// synchronously, before the theme looks for them (it runs at the end of <body>).
(function () {
  "use strict";
  const diagrams = [];
  document.querySelectorAll("pre.pt-mermaid-source, .jp-Mermaid > pre.mermaid").forEach((pre) => {
    pre.classList.remove("mermaid");
    const node = pre.parentElement.classList.contains("jp-Mermaid") ? pre.parentElement : pre;
    diagrams.push({ node, text: pre.textContent });
  });

  async function draw() {
    if (!diagrams.length) {
      document.documentElement.dataset.mermaidDone = "0";
      return;
    }
    mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "default" });
    let next = 0;
    for (const { node, text } of diagrams) {
      const figure = document.createElement("div");
      figure.className = "pt-mermaid";
      try {
        const { svg } = await mermaid.render(`pt-mermaid-${next++}`, text.trim());
        figure.innerHTML = svg;
        node.replaceWith(figure);
      } catch (error) {
        // Keep the diagram's text visible, and say why it is not drawn.
        figure.className = "pt-mermaid pt-mermaid-error";
        figure.textContent = `Mermaid could not draw this diagram: ${error}`;
        node.after(figure);
        console.error("Mermaid could not draw a diagram:", error);
      }
    }
    document.documentElement.dataset.mermaidDone = String(diagrams.length);
  }

  if (typeof mermaid === "undefined") {
    console.error("assets/vendor/mermaid.min.js is missing: run `make docs`");
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
