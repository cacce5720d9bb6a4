"""Timings of "see a migration before it runs" (issue 13): schema.at, affected_queries, impact.

``make bench`` runs it after ``bench/run.py``; alone:

    python bench/before_you_migrate.py              # medians of 3, writes bench/results-before-you-migrate.md
    python bench/before_you_migrate.py --runs 1 --output -    # one run each, print only

The case an analyst meets before ``upgrade head``: a Workspace with the
sample playlists, at 0001 (loaded at head, then downgraded with consent).
Each timed call runs in a fresh process, so no in-memory result of an
earlier call helps it. "warm": the schema caches it reads
(``playlist_tools.history``) exist already, as from the second call on;
"cold": they are dropped first (the first call ever, or after an edit of
a revision file). The goals are issue 13's, reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CALLS = {
    "schema_at": "schema.at('head', ws.config).tables()",
    "affected": "migrations.affected_queries(ws.config, 'head')",
    "impact": "migrations.impact(ws.config, 'head')",
}
CASES = [  # (call, warm, goal in seconds or None)
    ("schema_at", True, 0.2),
    ("schema_at", False, None),
    ("affected", True, 2.0),
    ("affected", False, None),
    ("impact", True, 1.0),
    ("impact", False, None),
]


def _call(name: str, ini: str, url: str) -> object:
    from playlist_tools import migrations, schema

    config = migrations.config(url, ini=ini)
    if name == "schema_at":
        return schema.at("head", config).tables()
    if name == "affected":
        return migrations.affected_queries(config, "head")
    return migrations.impact(config, "head")


def child(name: str, ini: str, url: str) -> None:
    """One timed call in this fresh process (imports done first); prints its seconds as JSON."""
    from playlist_tools import migrations, schema

    # migrations loads each function's module on first use: load them all, so the clock sees only the call
    for public in (*migrations.__all__, *schema.__all__):
        getattr(migrations if public in migrations.__all__ else schema, public)
    start = time.perf_counter()
    _call(name, ini, url)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def _timed(name: str, ini: Path, url: str) -> float:
    done = subprocess.run([sys.executable, __file__, "--child", name, str(ini), url],
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        raise SystemExit(f"{name} failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median)")
    parser.add_argument("--output", default=str(HERE / "results-before-you-migrate.md"),
                        help="Markdown file, or - to print only")
    args = parser.parse_args()

    from playlist_tools import migrations, sample
    from playlist_tools.workspace import Workspace

    lines = []
    with Workspace.open() as ws:
        migrations.upgrade(ws.config, "head")
        sample.load_sample(ws.engine, progress=False)
        migrations.downgrade(ws.config, "0001", allow_data_loss=True)
        url = ws.url.render_as_string(hide_password=False)
        ini = ws.directory / "alembic.ini"
        for name, warm, goal in CASES:
            seconds = []
            for _ in range(args.runs):
                if warm:
                    _call(name, str(ini), url)  # the caches exist before the timed call
                else:
                    migrations.drop_replays(ws.config)
                seconds.append(_timed(name, ini, url))
            median = statistics.median(seconds)
            verdict = "-" if goal is None else ("met" if median <= goal else "**NOT met**")
            shown = "-" if goal is None else f"under {goal:g} s"
            lines.append(f"| `{CALLS[name]}` | {'warm' if warm else 'cold'} | {median:.2f} | {shown} | {verdict} |")
            print(lines[-1], file=sys.stderr)
    load = os.getloadavg()[0]
    text = "\n".join([
        "# Before you migrate: timings",
        "",
        f"A Workspace with the sample at 0001, PostgreSQL on {ws.url.drivername}; medians of {args.runs} runs, "
        f"each call in a fresh process; load average {load:.2f} at the end. `python bench/before_you_migrate.py`.",
        "",
        "| call | caches | median s | goal | verdict |",
        "| --- | --- | --- | --- | --- |",
        *lines,
        "",
    ])
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text)
        print(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        main()
