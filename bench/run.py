"""Benchmarks of playlist_tools.frames against what users would pick instead.

``make bench`` runs ``python bench/run.py``: reads and writes of a songs
table at 100,000 and 1,000,000 rows, each measurement in a fresh process
(``bench/peers.py``) so that peak memory is its own, medians of ``--runs``
runs with the peers interleaved so that background noise hits them alike.
Prints a Markdown table and writes it to ``bench/results.md``.

    python bench/run.py                  # the full run, ~10 minutes on 2 cores
    python bench/run.py --quick          # 20,000 rows, prints only
    python bench/run.py --sizes 300000 --runs 5 --output /tmp/results.md

Everything happens in a fresh database (``playlist_tools.db.fresh_database``),
dropped afterwards. The data is ``playlist_tools.synthetic.synthetic``: real
shapes (NULL composers, non-ASCII titles, BIGINT sizes, NUMERIC prices).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import sqlalchemy as sa

from playlist_tools import db, frames
from playlist_tools.models import Base
from playlist_tools.synthetic import synthetic

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import READS, WRITES  # noqa: E402

WRITE_TABLES = {
    "songs": "the model's table: primary key and two secondary indexes",
    "songs_plain": "same columns, primary key only",
}


def measure(operation: str, table: str, url: sa.URL, data: Path) -> dict[str, float]:
    env = {**os.environ, "BENCH_URL": url.render_as_string(hide_password=False), "BENCH_INPUT": str(data)}
    done = subprocess.run(
        [sys.executable, str(HERE / "peers.py"), operation, table],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    if done.returncode:
        raise SystemExit(f"{operation} on {table} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare(engine: sa.Engine, table: str) -> None:
    """Empty ``table`` and flush dirty pages, so no write pays for the one before."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
        con.exec_driver_sql(f"TRUNCATE {table} CASCADE")
        try:
            con.exec_driver_sql("CHECKPOINT")
        except sa.exc.DBAPIError:  # needs pg_checkpoint or superuser; fine without
            pass


def machine(engine: sa.Engine) -> str:
    with engine.connect() as con:
        server = con.exec_driver_sql("SHOW server_version").scalar_one()
    memory = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    packages = ", ".join(f"{name} {version(name)}" for name in (
        "pandas", "pyarrow", "sqlalchemy", "psycopg", "adbc-driver-postgresql", "connectorx", "psycopg2-binary"))
    return (f"{datetime.date.today()}, {os.cpu_count()} CPUs ({cpu}), "
            f"{int(memory.split()[1]) // 1024 ** 2} GB RAM, PostgreSQL {server} (embedded, Unix socket), "
            f"Python {platform.python_version()}, {packages}; load average {os.getloadavg()[0]:.2f} at the start")


def table_of(rows: list[list[str]], header: list[str]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, print only")
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--output", type=Path, help="Markdown file (default bench/results.md, none with --quick)")
    parser.add_argument("--only", choices=["read", "write"], help="run only the reads or only the writes")
    args = parser.parse_args()
    sizes = [20_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    output = args.output or (None if args.quick else HERE / "results.md")

    sections = []
    with db.fresh_database(prefix="pt_bench") as url, tempfile.TemporaryDirectory() as scratch:
        engine = db.create_engine(url)
        Base.metadata.create_all(engine)
        with engine.begin() as con:
            con.exec_driver_sql("CREATE TABLE songs_plain (LIKE songs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            con.exec_driver_sql("ALTER TABLE songs_plain ADD PRIMARY KEY (song_id)")
        about = machine(engine)
        for n in sizes:
            data = Path(scratch) / f"songs-{n}.parquet"
            songs = synthetic(n, 1, seed=1, n_links=1)["songs"]
            songs.to_parquet(data, index=False)
            if args.only != "write":
                prepare(engine, "songs")
                frames.write_frame(songs, "songs", engine)
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
                    con.exec_driver_sql("VACUUM ANALYZE songs")
                results: dict[str, list[dict[str, float]]] = {op: [] for op in READS}
                for run in range(args.runs):
                    order = list(READS)[run % len(READS):] + list(READS)[: run % len(READS)]
                    for op in order:
                        results[op].append(measure(op, "songs", url, data))
                        print(f"read  {n:>9,} {op:<28} {results[op][-1]['seconds']:.3f} s", file=sys.stderr)
                sections.append(read_section(n, results))
            if args.only != "read":
                for table, what in WRITE_TABLES.items():
                    results = {op: [] for op in WRITES}
                    for run in range(args.runs):
                        for op in list(WRITES)[run % len(WRITES):] + list(WRITES)[: run % len(WRITES)]:
                            prepare(engine, table)
                            results[op].append(measure(op, table, url, data))
                            print(
                                f"write {n:>9,} {table:<12} {op:<18} {results[op][-1]['seconds']:.3f} s",
                                file=sys.stderr,
                            )
                    sections.append(write_section(n, table, what, results))
        engine.dispose()
    load = f"load average {os.getloadavg()[0]:.2f} at the end"
    text = "\n\n".join([
        f"Machine: {about}; {load}.",
        f"Medians of {args.runs} runs, each in a fresh process, the peers interleaved. \"peak MB\" is the "
        "process's peak RSS during the call (Linux VmHWM, reset just before it); \"extra MB\" is that peak "
        "minus the RSS before the call (every peer's libraries already imported; for writes, the input "
        "frame already loaded).",
        *sections,
        "Reproduce: `make bench` (or `.venv/bin/python bench/run.py "
        f"--sizes {','.join(map(str, sizes))} --runs {args.runs}`).",
    ])
    print(text)
    if output:
        output.write_text("# Benchmark results\n\n" + text + "\n")


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def read_section(n: int, results: dict[str, list[dict[str, float]]]) -> str:
    base = median(results["pandas.read_sql"], "seconds")
    base_mb = median(results["pandas.read_sql"], "extra_mb")
    rows = [[op, f"{median(r, 'seconds'):.2f}", f"{base / median(r, 'seconds'):.1f}x",
             f"{median(r, 'peak_mb'):.0f}", f"{median(r, 'extra_mb'):.0f}"] for op, r in results.items()]
    ours = median(results["read_frame"], "seconds")
    best_peer = min(("ADBC", "connectorx", "connectorx, 2 partitions"), key=lambda op: median(results[op], "seconds"))
    verdict = (
        f"read_frame vs pandas.read_sql: {base / ours:.1f}x faster (target 8x: "
        f"{'met' if base / ours >= 8 else 'NOT met'}); vs the fastest other peer ({best_peer}, "
        f"{median(results[best_peer], 'seconds'):.2f} s): {median(results[best_peer], 'seconds') / ours:.2f}x "
        f"({'met' if ours <= median(results[best_peer], 'seconds') else 'NOT met'}); extra memory "
        f"{median(results['read_frame'], 'extra_mb'):.0f} MB vs {base_mb:.0f} MB "
        f"({'met' if median(results['read_frame'], 'extra_mb') <= base_mb / 2 else 'NOT met'}: target at most half)."
    )
    header = ["peer", "median s", "x vs read_sql", "peak MB", "extra MB"]
    return f"### Read {n:,} songs (`SELECT * FROM songs`, 10 columns)\n\n{table_of(rows, header)}\n\n{verdict}"


def write_section(n: int, table: str, what: str, results: dict[str, list[dict[str, float]]]) -> str:
    base = median(results["DataFrame.to_sql"], "seconds")
    rows = [[op, f"{median(r, 'seconds'):.2f}", f"{n / median(r, 'seconds'):,.0f}",
             f"{base / median(r, 'seconds'):.1f}x", f"{median(r, 'extra_mb'):.0f}"] for op, r in results.items()]
    ours = base / median(results["write_frame"], "seconds")
    verdict = f"write_frame vs DataFrame.to_sql: {ours:.1f}x faster (target 15x: {'met' if ours >= 15 else 'NOT met'})."
    header = ["peer", "median s", "rows/s", "x vs to_sql", "extra MB"]
    return f"### Write {n:,} songs into `{table}` ({what})\n\n{table_of(rows, header)}\n\n{verdict}"


if __name__ == "__main__":
    main()
