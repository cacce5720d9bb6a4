"""The benchmark's documents: the machine line, ``bench/results.md`` and the README's "Benchmarks" section.

Used by ``bench/run.py``; the tables themselves come from ``bench/_report.py``.
"""

from __future__ import annotations

import datetime
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import _data
import _report
import sqlalchemy as sa

PACKAGES = ("pandas", "pyarrow", "sqlalchemy", "psycopg", "adbc-driver-postgresql", "connectorx", "psycopg2-binary",
            "pgpq")


def machine(engine: sa.Engine) -> str:
    """Date, CPUs, memory, server, Python, the peers' versions and the load average now."""
    with engine.connect() as con:
        server = con.exec_driver_sql("SHOW server_version").scalar_one()
    memory = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())

    def installed(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} not installed"

    return (f"{datetime.date.today()}, {os.cpu_count()} CPUs ({cpu}), "
            f"{int(memory.split()[1]) // 1024 ** 2} GB RAM, PostgreSQL {server} (embedded, Unix socket), "
            f"Python {platform.python_version()}, {', '.join(map(installed, PACKAGES))}; "
            f"load average {os.getloadavg()[0]:.2f} at the start")


METHOD = (
    "{medians}, each in a fresh process, the peers interleaved. \"peak MB\" is the process's peak RSS "
    "during the call (Linux VmHWM, reset just before it); \"extra MB\" is that peak minus the RSS before the call "
    "(every peer's libraries already imported; for writes, the input already loaded), and the memory goal compares "
    "extra MB. The read floor is the server's `COPY (query) TO STDOUT (FORMAT binary)` read by psycopg 3, its bytes "
    "thrown away; the write floor is `COPY ... FROM STDIN` of the same rows already encoded (CSV and binary, by the "
    "server itself), sent by psycopg 3 and committed. connectorx binds no parameters: it gets the values as literals."
)


def results_text(about: str, runs: int, goals: list[_report.Goal], sections: list[str], command: str) -> str:
    return "\n\n".join([
        "# Benchmark results", f"Machine: {about}.", METHOD.format(medians=_medians(runs).capitalize()),
        "## Goals of issues 10 and 21", _report.goals_table(goals), "## Measurements", *sections,
        f"Reproduce: `make bench` (or `{command}`).",
    ])


def readme_block(about: str, runs: int, rows: int, write_rows: int, cells: dict[str, Any],
                 goals: list[_report.Goal], growth: str | None) -> str:
    """The README's "## Benchmarks" section: the headline figures of this run and the goals."""
    parts = [
        "## Benchmarks",
        "`make bench` (or `.venv/bin/python bench/run.py [--quick] [--only reads,writes,large] [--rows N]`) "
        "measures `frames` against what users would pick instead and against the server's own floor, all in "
        f"the same run: each measurement in a fresh process, peers interleaved, {_medians(runs)}, peak memory from "
        "Linux `VmHWM`. The floor of a read is `COPY (query) TO STDOUT (FORMAT binary)` read by psycopg 3 with "
        "the bytes thrown away; of a write, `COPY ... FROM STDIN` of the same rows already encoded. Every table, "
        f"the 10M-row streams and the cost growth are in [`bench/results.md`](bench/results.md). Latest run: {about}.",
    ]
    reads = []
    for name in _data.CASES:
        if name not in cells:
            continue
        c = cells[name]
        ours, arrow, base = c.get("read_frame"), c.get("read_frame, pyarrow"), c.get("pandas.read_sql")
        floor, best = c.get("floor: COPY binary"), _report.best_peer(c)
        sec = _report.value(ours, "seconds")
        reads.append([
            _data.CASES[name].label, _report.secs(ours), _report.secs(arrow) if isinstance(arrow, dict) else "n/a",
            f"{best[1]['seconds']:.2f} ({best[0]})" if best else "failed", _report.secs(base), _report.secs(floor),
            _report.times(_report.value(base, "seconds"), sec), _report.times(best[1]["seconds"], sec) if best else "",
            _report.times(sec, _report.value(floor, "seconds")),
            _report.times(_report.value(ours, "extra_mb"), _report.value(base, "extra_mb")),
        ])
    if reads:
        parts += [
            f"Reads of {rows:,} rows, 10 columns (int, text, nullable int, date, numeric(3,1), boolean, "
            "timestamptz; NULLs in four), seconds:",
            _report.table_of(reads, ["read", "`read_frame`", "`dtype_backend=\"pyarrow\"`", "best of ADBC/connectorx",
                                     "`pd.read_sql`", "floor", "x faster than `read_sql`",
                                     "x faster than ADBC/connectorx", "x the floor", "memory x `read_sql`'s"]),
        ]
    writes = []
    for target, c in cells.get("writes", {}).items():
        ours, base = (_report.value(c[p], "seconds") for p in ("write_frame", "DataFrame.to_sql"))
        floor = _report.floor_seconds(c)
        writes.append([f"`{target}`", _report.secs(c["write_frame"]), _report.secs(c["DataFrame.to_sql"]),
                       _report.secs(c["ADBC adbc_ingest"]), f"{floor:.2f}" if floor else "failed",
                       _report.times(base, ours), _report.times(ours, floor)])
    if writes:
        parts += [
            f"Writes of {write_rows:,} rows (`t_plain`: no index; `songs`: the model's table, two secondary "
            "indexes), seconds:",
            _report.table_of(writes, ["into", "`write_frame`", "`to_sql`", "ADBC `adbc_ingest`", "floor",
                                      "x faster than `to_sql`", "x the floor"]),
        ]
    if growth:  # its heading becomes a sentence: the README's sections are level 2
        heading, table = growth.split("\n\n", 1)
        parts += [heading.removeprefix("### ") + ", seconds and extra MB:", table]
    met = sum(g.met is True for g in goals)
    parts += [f"The goals of issues 10 and 21: {met} of {len(goals)} met.", _report.goals_table(goals)]
    return "\n\n".join(parts)


def _medians(runs: int) -> str:
    return "one run per peer" if runs == 1 else f"medians of {runs} runs"
