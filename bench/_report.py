"""The benchmark's Markdown: per-case tables, the goals of issue 10 as met or not, and the README's block.

Used by ``bench/run.py``. A measurement is the list of one peer's runs (the
JSON lines of ``bench/peers.py``); :func:`summary` turns it into medians,
or into the text of why there are none (``n/a``, ``failed: ...``).
Ratios: "x faster than" is the other's seconds over ours; "x the floor" is
our seconds over the floor's (1.0 is the floor itself); memory ratios use
the extra MB, the part of the peak that the call itself added.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

Runs = list[dict[str, Any]]


def summary(runs: Runs) -> dict[str, float] | str:
    """Medians of seconds, peak and extra MB; or ``"n/a"`` / ``"failed: <one line>"``."""
    for run in runs:
        if "na" in run:
            return f"n/a ({run['na']})"
        if "error" in run:
            return f"failed: {run['error']}"
    if not runs:
        return "not measured"
    out = {key: statistics.median(r[key] for r in runs) for key in ("seconds", "peak_mb", "extra_mb")}
    out["rows"] = runs[0]["rows"]
    return out


def table_of(rows: list[list[str]], header: list[str]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


@dataclass
class Goal:
    """One goal of the issue: its wording, the measured figure, and whether it is met (None: unknown)."""

    goal: str
    figure: str
    met: bool | None

    def row(self) -> list[str]:
        verdict = {True: "met", False: "**NOT met**", None: "unknown"}[self.met]
        return [self.goal, self.figure, verdict]


def goals_table(goals: list[Goal]) -> str:
    return table_of([g.row() for g in goals], ["goal", "figure", "verdict"])


def secs(cell: dict[str, float] | str) -> str:
    return f"{cell['seconds']:.2f}" if isinstance(cell, dict) else cell


def times(num: float | None, den: float | None) -> str:
    return f"{num / den:.2f}x" if num is not None and den else ""


def value(cell: dict[str, float] | str, key: str) -> float | None:
    return cell[key] if isinstance(cell, dict) else None


def best_peer(cells: dict[str, dict[str, float] | str]) -> tuple[str, dict[str, float]] | None:
    """The faster of ADBC and connectorx (any variant that succeeded)."""
    others = [(p, c) for p, c in cells.items() if p.startswith(("ADBC", "connectorx")) and isinstance(c, dict)]
    return min(others, key=lambda pc: pc[1]["seconds"]) if others else None


def read_section(title: str, n: int, results: dict[str, Runs]) -> tuple[str, dict[str, dict[str, float] | str]]:
    """The table of one read case, and its summaries by peer."""
    cells = {peer: summary(runs) for peer, runs in results.items()}
    base, floor, best = cells.get("pandas.read_sql"), cells.get("floor: COPY binary"), best_peer(cells)
    rows = []
    for peer, cell in cells.items():
        sec = value(cell, "seconds")
        rows.append([
            peer, secs(cell), "" if cell is None or sec is None else f"{cell['rows']:,}" if cell["rows"] >= 0 else "-",
            times(value(base, "seconds"), sec), times(best[1]["seconds"], sec) if best else "",
            times(sec, value(floor, "seconds")),
            "" if sec is None else f"{cell['peak_mb']:.0f}", "" if sec is None else f"{cell['extra_mb']:.0f}",
            times(value(cell, "extra_mb"), value(base, "extra_mb")),
        ])
    header = ["peer", "median s", "rows", "x faster than read_sql", "x faster than best ADBC/connectorx",
              "x the floor", "peak MB", "extra MB", "extra MB x read_sql's"]
    counts = {c["rows"] for c in cells.values() if isinstance(c, dict) and c["rows"] >= 0}
    notes = [f"Best of ADBC/connectorx: {best[0]}." if best else "ADBC and connectorx both failed."]
    if len(counts) > 1:
        notes.append(f"**Row counts differ between peers: {sorted(counts)}.**")
    return f"### Read {n:,} rows: {title}\n\n{table_of(rows, header)}\n\n{' '.join(notes)}", cells


def write_section(title: str, n: int, results: dict[str, Runs]) -> tuple[str, dict[str, dict[str, float] | str]]:
    cells = {peer: summary(runs) for peer, runs in results.items()}
    base, floor = value(cells["DataFrame.to_sql"], "seconds"), floor_seconds(cells)
    rows = [[peer, secs(cell), "" if isinstance(cell, str) else f"{n / cell['seconds']:,.0f}",
             times(base, value(cell, "seconds")), times(value(cell, "seconds"), floor),
             "" if isinstance(cell, str) else f"{cell['extra_mb']:.0f}"] for peer, cell in cells.items()]
    header = ["peer", "median s", "rows/s", "x faster than to_sql", "x the floor", "extra MB"]
    return f"### Write {n:,} rows into {title}\n\n{table_of(rows, header)}", cells


def floor_seconds(cells: dict[str, dict[str, float] | str]) -> float | None:
    """The faster of the COPY floors that succeeded."""
    times = [c["seconds"] for p, c in cells.items() if p.startswith("floor") and isinstance(c, dict)]
    return min(times) if times else None


def read_goals(case: str, cells: dict[str, dict[str, float] | str], query: bool) -> list[Goal]:
    """The goals of one read case: for a query, vs ADBC/connectorx, the floor and memory; the whole table's floor."""
    ours, arrow = cells.get("read_frame"), cells.get("read_frame, pyarrow")
    floor, base, best = value(cells.get("floor: COPY binary", ""), "seconds"), cells.get("pandas.read_sql", ""), \
        best_peer(cells)
    if not isinstance(ours, dict):
        return [Goal(f"{case}: read_frame", f"read_frame {ours}", False)]

    def ratio(text: str, ref: float | None, ref_name: str, limit: float, faster: bool) -> Goal:
        if ref is None:
            return Goal(text, f"no figure: {ref_name} did not run", None)

        def of(seconds: float) -> float:
            return ref / seconds if faster else seconds / ref

        alt = f"; pyarrow backend {of(arrow['seconds']):.2f}x" if isinstance(arrow, dict) else ""
        value = of(ours["seconds"])
        return Goal(text, f"{value:.2f}x ({ours['seconds']:.2f} s vs {ref_name} {ref:.2f} s){alt}",
                    value >= limit if faster else value <= limit)

    if not query:
        return [ratio(f"{case}: <= 1.2x the floor", floor, "floor", 1.2, False)]
    return [
        ratio(f"{case}: >= 1.15x faster than the faster of ADBC/connectorx", best[1]["seconds"] if best else None,
              best[0] if best else "ADBC/connectorx", 1.15, True),
        ratio(f"{case}: <= 1.5x the floor", floor, "floor", 1.5, False),
        goal_memory(case, ours, arrow, value(base, "extra_mb")),
    ]


def goal_memory(case: str, ours: dict[str, float], arrow: Any, base: float | None) -> Goal:
    text = f"{case}: extra memory <= 0.35x read_sql's"
    if not base:
        return Goal(text, "no figure: read_sql did not run", None)
    mem = ours["extra_mb"]
    alt = f"; pyarrow backend {arrow['extra_mb'] / base:.2f}x" if isinstance(arrow, dict) else ""
    return Goal(text, f"{mem / base:.2f}x ({mem:.0f} MB vs {base:.0f} MB){alt}", mem / base <= 0.35)


def stretch_goal(cells: dict[str, dict[str, float] | str]) -> Goal:
    ours, base = value(cells.get("read_frame", ""), "seconds"), value(cells.get("pandas.read_sql", ""), "seconds")
    text = "stretch, ORDER BY: >= 8x faster than pandas.read_sql"
    if ours is None or base is None:
        return Goal(text, "no figure", None if ours else False)
    return Goal(text, f"{base / ours:.2f}x ({ours:.2f} s vs {base:.2f} s)", base / ours >= 8)


def write_goals(cells: dict[str, dict[str, float] | str], label: str = "writes") -> list[Goal]:
    ours, base, floor = value(cells["write_frame"], "seconds"), value(cells["DataFrame.to_sql"], "seconds"), \
        floor_seconds(cells)
    if ours is None:
        return [Goal(f"{label}: write_frame", f"write_frame {cells['write_frame']}", False)]
    return [
        Goal(f"{label}: <= 1.3x the COPY floor", f"{ours / floor:.2f}x ({ours:.2f} s vs {floor:.2f} s)"
             if floor else "no figure", ours / floor <= 1.3 if floor else None),
        Goal(f"{label}: >= 15x faster than to_sql", f"{base / ours:.1f}x ({ours:.2f} s vs {base:.2f} s)"
             if base else "no figure", base / ours >= 15 if base else None),
    ]


IMPORT_LIMIT = 0.1
"""Seconds that ``import playlist_tools.frames`` may add to pandas and SQLAlchemy (issue 21)."""


def import_section(found: dict[str, float]) -> tuple[str, Goal]:
    """Import time (medians of fresh processes, ``bench/import_time.py``) as a table, and its goal."""
    rows = [
        ["`import playlist_tools` (the package: `db`, models, psycopg)", f"{found['package']:.3f}"],
        ["`import playlist_tools.frames`, on top of that", f"{found['frames']:.3f}"],
        ["both: what `import playlist_tools.frames` costs after pandas and SQLAlchemy", f"{found['total']:.3f}"],
        ["`import adbc_driver_postgresql.dbapi`, after frames (a peer's import, for reference)",
         f"{found['adbc']:.3f}"],
    ]
    text = (f"### Import time (apart: every other figure imports first)\n\n{table_of(rows, ['import', 'median s'])}"
            "\n\nEach in a fresh interpreter that has imported pandas and SQLAlchemy: `python bench/import_time.py`; "
            "`python -X importtime -c \"import pandas, sqlalchemy; import playlist_tools.frames\"` shows by module.")
    goal = Goal(f"import: playlist_tools.frames < {IMPORT_LIMIT} s beyond pandas and SQLAlchemy",
                f"{found['total']:.3f} s (package {found['package']:.3f} s + frames {found['frames']:.3f} s)",
                found["total"] < IMPORT_LIMIT)
    return text, goal


STAGES_NOTE = (
    "One more run of our call behind each unmet goal, under cProfile: the cumulative seconds of frames' own "
    "functions, largest first (each includes what it calls, so they overlap). cProfile sees the calling thread "
    "only: work in a thread of ours (the next Arrow batch's fetch, a whole table's parallel ranges) shows as the "
    "wait for it (`_arrow.prefetched`, a Future); the profiler slows Python stages more than C ones, so read "
    "shares, not seconds."
)


def stages_section(label: str, peer: str, result: dict[str, Any]) -> str:
    """One profiled run: its stages as a table, or why there are none."""
    if "stages" not in result:
        return f"{label}, {peer}: no profile ({result.get('error', result)})"
    total = result["seconds"]
    rows = [[f"`{name}`", f"{cum:.3f}", f"{cum / total:.0%}"] for name, cum in result["stages"]]
    return f"{label}, `{peer}` ({total:.2f} s under the profiler):\n\n" + table_of(
        rows, ["function (module.name)", "cumulative s", "share"])


FLAT = 1.5
"""Memory is flat when ten times the rows take at most this many times the extra MB."""


def stream_section(sizes: list[int], results: dict[int, dict[str, Runs]]) -> tuple[str, list[Goal]]:
    peers = list(next(iter(results.values())))
    cells = {n: {p: summary(r) for p, r in by_peer.items()} for n, by_peer in results.items()}
    rows = [[f"{n:,}", *[v for p in peers for v in (secs(cells[n][p]), _mb(cells[n][p]))]] for n in sizes]
    header = ["rows", *[v for p in peers for v in (f"{p} s", f"{p} extra MB")]]
    goals = []
    small, large = sizes[0], sizes[-1]
    for p in peers:
        a, b = value(cells[small][p], "extra_mb"), value(cells[large][p], "extra_mb")
        text = f"larger than memory: {p} memory flat ({large:,} vs {small:,} rows)"
        if a is None or b is None:
            goals.append(Goal(text, f"{cells[large][p] if b is None else cells[small][p]}", False))
        else:
            goals.append(Goal(text, f"{b:.0f} MB vs {a:.0f} MB extra ({b / max(a, 1):.2f}x for "
                                    f"{large / small:.0f}x the rows)", b <= FLAT * max(a, 1)))
    text = (f"### Larger than memory: `SELECT * FROM t ORDER BY id` streamed\n\n{table_of(rows, header)}\n\n"
            f"Flat means at most {FLAT}x the extra MB for the largest size over the smallest.")
    return text, goals


def growth_section(sizes: list[int], results: dict[int, dict[str, Runs]]) -> str:
    cells = {n: {p: summary(r) for p, r in by_peer.items()} for n, by_peer in results.items()}
    rows = []
    for n in sizes:
        ours, floor = cells[n]["read_frame"], cells[n]["floor: COPY binary"]
        rows.append([f"{n:,}", secs(ours), _mb(ours), secs(floor), _mb(floor),
                     times(value(ours, "seconds"), value(floor, "seconds"))])
    header = ["rows", "read_frame s", "read_frame extra MB", "floor s", "floor extra MB", "read_frame x the floor"]
    return f"### Cost growth: `SELECT * FROM t ORDER BY id`\n\n{table_of(rows, header)}"


def _mb(cell: dict[str, float] | str) -> str:
    return f"{cell['extra_mb']:.0f}" if isinstance(cell, dict) else ""
