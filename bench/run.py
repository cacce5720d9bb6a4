"""Benchmarks of playlist_tools.frames against its peers and the server's own floor: the goals of issue 10.

``make bench`` runs ``python bench/run.py``. In one run, on tables the
server builds itself (``bench/_data.py``: 10 columns, NULLs in four):

* reads of 1,000,000 rows by six queries (ORDER BY, the text-heavy table of
  issue 21, a join, bound parameters, GROUP BY, the whole table): ``read_frame`` with both
  ``dtype_backend``\\ s, ADBC ``fetch_arrow_table().to_pandas()`` (plain and
  ``types_mapper=pd.ArrowDtype``), connectorx, ``pandas.read_sql``
  (SQLAlchemy + psycopg2), and the floor: the server's
  ``COPY (query) TO STDOUT (FORMAT binary)`` read by psycopg 3, bytes dropped;
* writes of 200,000 rows into a table without indexes (from two kinds of
  frame: with ``read_frame``'s dtypes, read back from Parquet through
  ``frames.pandas_dtype`` so decimals stay ``decimal128``; and exactly as
  ``pd.read_sql`` returns it, object columns of ``Decimal`` and ``date``),
  into the text-heavy table's copy (from ``pd.read_sql``'s frame) and into
  the model's ``songs``, each peer given the same frame: ``write_frame``,
  ``DataFrame.to_sql``, ADBC ``adbc_ingest``, pgpq (Arrow encoded as binary
  COPY, sent by psycopg 3), and the floor: ``COPY ... FROM STDIN`` of the
  same rows pre-encoded (CSV and binary, the faster counts), sent by psycopg 3;
* larger than memory: 1,000,000 and 10,000,000 rows through
  ``read_frame(chunksize=)`` (each chunk dropped) and ``frames.to_parquet``;
* cost growth: ``read_frame`` and the floor at 100,000, 1,000,000, 10,000,000 rows;
* import time, apart: ``import playlist_tools.frames`` in a fresh process
  that has pandas and SQLAlchemy already (``bench/import_time.py``);
* for every goal not met, where ``read_frame``/``write_frame`` spend the
  time, by stage (``bench/peers.py``'s profile of one more run).

Each measurement runs in a fresh process (``bench/peers.py``) so that its
peak memory is its own; medians of ``--runs``, the peers interleaved so
that background noise hits them alike. A peer that fails is reported as
``failed: <one line>``, ``read_frame``'s pyarrow variant as ``n/a`` until
``dtype_backend=`` exists. Prints the results, the goals as met or not,
and a block for the README; writes the first two to ``bench/results.md``
and the third to ``bench/readme_section.md`` (not with ``--quick``).

    python bench/run.py                  # the full run, ~10 minutes on 2 cores
    python bench/run.py --quick          # small sizes, one run each, prints only (~1.5 min on a quiet machine)
    python bench/run.py --only reads --rows 300000 --runs 5 --output /tmp/results.md

Everything happens in a fresh database (``playlist_tools.db.fresh_database``), dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import sqlalchemy as sa

from playlist_tools import db, frames
from playlist_tools.models import Base
from playlist_tools.synthetic import synthetic

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _data  # noqa: E402
import _report  # noqa: E402
import import_time  # noqa: E402
from _document import machine, readme_block, results_text  # noqa: E402
from peers import HAS_DTYPE_BACKEND, READS, STREAMS, WRITES, failure  # noqa: E402

FULL = {"rows": 1_000_000, "write_rows": 200_000, "growth": "100000,1000000,10000000", "stream": "1000000,10000000"}
QUICK = {"rows": 20_000, "write_rows": 5_000, "growth": "2000,20000,200000", "stream": "20000,200000"}
PARTS = ("reads", "writes", "large")
TIMEOUT = 900
STARTED = time.perf_counter()
Result = dict[str, object]


def say(text: str) -> None:
    """Progress on stderr, with the minutes so far: the full run's budget is about 12."""
    print(f"[{(time.perf_counter() - STARTED) / 60:4.1f} min] {text}", file=sys.stderr)


def measure(kind: str, peer: str, case: str, table: str, url: sa.URL, *extra: str) -> Result:
    """One run of one peer in a fresh process; a crash or a timeout is a failure, not the end of the run."""
    if peer == "read_frame, pyarrow" and not HAS_DTYPE_BACKEND:
        return {"na": "read_frame has no dtype_backend= yet"}
    env = {**os.environ, "BENCH_URL": url.render_as_string(hide_password=False)}
    try:
        done = subprocess.run([sys.executable, str(HERE / "peers.py"), kind, peer, case, table, *extra], env=env,
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {TIMEOUT} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:  # killed (out of memory?) or crashed in C: its stderr's last line says why
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return failure(f"exit code {done.returncode}: {last}", env["BENCH_URL"])
    return json.loads(lines[-1])



def interleaved(peers: list[str], runs: int, one: Callable[[str], Result]) -> dict[str, list[Result]]:
    """``one(peer)`` ``runs`` times for each peer, the order rotated each run; a peer that is n/a runs once."""
    results: dict[str, list[Result]] = {p: [] for p in peers}
    for run in range(runs):
        for peer in peers[run % len(peers):] + peers[: run % len(peers)]:
            if run and any("na" in r for r in results[peer]):
                continue
            results[peer].append(one(peer))
            r = results[peer][-1]
            shown = f"{r['seconds']:.3f} s, {r['extra_mb']:.0f} MB" if "seconds" in r else r.get("error", r.get("na"))
            print(f"  {peer:<45} {shown}", file=sys.stderr)
    return results


def autocommit(engine: sa.Engine, *statements: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
        for sql in statements:  # by psycopg itself: without parameters, a % is no placeholder
            con.connection.driver_connection.execute(sql)


def prepare(engine: sa.Engine, table: str) -> None:
    """Empty ``table`` and flush dirty pages, so no write pays for the one before."""
    autocommit(engine, f"TRUNCATE {table} CASCADE")
    try:
        autocommit(engine, "CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:  # needs pg_checkpoint or superuser; fine without
        pass


def copy_to_file(url: sa.URL, sql: str, path: Path) -> None:
    """Encode rows as COPY takes them (the write floor's input), with the server's own encoder."""
    form = "binary" if path.suffix == ".bin" else "csv"
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as con, \
            con.cursor() as cursor, path.open("wb") as out, \
            cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT {form})") as copy:
        for block in copy:
            out.write(block)


def build(engine: sa.Engine, sizes: dict[int, str], rows: int) -> None:
    """The read tables (``t_text`` beside ``t``), ``albums``, the write targets; VACUUM: no read pays for hint bits."""
    start = time.perf_counter()
    autocommit(engine, *_data.albums_sql())
    for n, table in sorted(sizes.items()):
        autocommit(engine, *_data.build_sql(table, n), f"VACUUM (FREEZE, ANALYZE) {table}")
    text = f"{sizes[rows]}_text"
    autocommit(engine, *_data.text_sql(text, rows), f"VACUUM (FREEZE, ANALYZE) {text}")
    Base.metadata.create_all(engine)
    autocommit(engine, "VACUUM ANALYZE albums")
    say(f"built {', '.join(f'{t} ({n:,} rows)' for n, t in sorted(sizes.items()))} in "
        f"{time.perf_counter() - start:.0f} s")


@dataclass
class Bench:
    """One run's database, settings and what it has found so far."""

    url: sa.URL
    engine: sa.Engine
    scratch: Path
    runs: int
    rows: int
    tables: dict[int, str]  # row count -> table of the read cases
    about: str
    sections: list[str] = field(default_factory=list)
    goals: list[_report.Goal] = field(default_factory=list)
    cells: dict[str, Any] = field(default_factory=dict)
    order_by: dict[str, list[Result]] = field(default_factory=dict)  # reused by the cost growth
    growth: str | None = None
    # goal label -> the measure() arguments of the call of ours behind it, profiled if the goal is not met
    probes: dict[str, tuple[str, ...]] = field(default_factory=dict)


def reads(bench: Bench) -> None:
    """Every read case, every peer that applies to it (connectorx's partitions only on the whole table)."""
    for name, case in _data.CASES.items():
        say(f"read {bench.rows:,} rows: {name}")
        peers = [p for p in READS if case.whole_table or "partitions" not in p]
        found = interleaved(peers, bench.runs, lambda p, name=name: measure("read", p, name, "t", bench.url))
        text, bench.cells[name] = _report.read_section(case.title, bench.rows, found)
        bench.sections.append(text)
        bench.goals += _report.read_goals(case.label, bench.cells[name], name in _data.QUERY_CASES)
        bench.probes[case.label] = ("read", "read_frame", name, "t")
        if name == "order_by":
            bench.goals.append(_report.stretch_goal(bench.cells[name]))
            bench.order_by = found


def writes(bench: Bench, n: int) -> None:
    """Each write target and input, emptied before each write and counted after it; goals on ``t_plain``'s."""
    bench.cells["writes"] = {}
    for key, target, source, encode_sql, title in write_targets(bench.engine, bench.url, bench.scratch, n):
        say(f"write {n:,} rows into {key}")
        encoded = {"floor: COPY csv": bench.scratch / f"{target}.csv",
                   "floor: COPY binary": bench.scratch / f"{target}.bin"}
        for path in encoded.values():
            if not path.exists():
                copy_to_file(bench.url, encode_sql, path)

        def one(peer: str, target: str = target, source: Path = source, encoded: dict = encoded) -> Result:
            prepare(bench.engine, target)
            result = measure("write", peer, str(encoded.get(peer, source)), target, bench.url)
            with bench.engine.connect() as con:
                written = con.exec_driver_sql(f"SELECT count(*) FROM {target}").scalar_one()
            if "seconds" in result and written != n:
                result = {"error": f"{written:,} rows in {target} after the write, not {n:,}"}
            return result

        text, found = _report.write_section(title, n, interleaved(list(WRITES), bench.runs, one))
        bench.sections.append(text)
        bench.cells["writes"][key] = found
        if target == "t_plain":
            label = f"writes from {'read_sql' if source.suffix == '.pkl' else 'read_frame'}'s frame"
            bench.goals += _report.write_goals(found, label)
            bench.probes[label] = ("write", "write_frame", str(source), target)


def stages(bench: Bench) -> None:
    """For each goal not met, one more run of the call of ours behind it, profiled: where its time goes."""
    unmet = {label for label in bench.probes if any(
        g.met is False and g.goal.startswith(label + ":") for g in bench.goals)}
    texts = []
    for label in sorted(unmet, key=list(bench.probes).index):
        kind, peer, case, table = bench.probes[label]
        say(f"stages of {peer}: {label}")
        if kind == "write":
            prepare(bench.engine, table)
        texts.append(_report.stages_section(label, peer, measure(kind, peer, case, table, bench.url, "stages")))
    if texts:
        bench.sections.append("### Where the time goes, for each goal not met\n\n" + _report.STAGES_NOTE
                              + "\n\n" + "\n\n".join(texts))


def imports(bench: Bench) -> None:
    """Import time, apart from the reads and writes (their processes import before the clock starts)."""
    say("import time")
    found = import_time.measure(5 if bench.runs > 1 else 3)
    text, goal = _report.import_section(found)
    bench.sections.append(text)
    bench.goals.append(goal)


def large(bench: Bench, stream: list[int], growth: list[int]) -> None:
    """The streamed reads, then the cost growth (at the read cases' size, their ORDER BY figures)."""
    by_size = {}
    for n in stream:
        say(f"stream {n:,} rows")
        by_size[n] = interleaved(list(STREAMS), bench.runs,
                                 lambda p, n=n: measure("stream", p, "order_by", bench.tables[n], bench.url))
    text, found = _report.stream_section(stream, by_size)
    bench.sections.append(text)
    bench.goals += found
    grown = {}
    for n in growth:
        if n == bench.rows and bench.order_by:
            grown[n] = {p: bench.order_by[p] for p in ("read_frame", "floor: COPY binary")}
            continue
        say(f"growth {n:,} rows")
        grown[n] = interleaved(["read_frame", "floor: COPY binary"], bench.runs,
                               lambda p, n=n: measure("read", p, "order_by", bench.tables[n], bench.url))
    bench.growth = _report.growth_section(growth, grown)
    bench.sections.append(bench.growth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run, print only")
    parser.add_argument("--rows", type=int, help="rows of the read cases (default 1000000)")
    parser.add_argument("--write-rows", type=int, help="rows of the writes (default 200000)")
    parser.add_argument("--growth", help="row counts of the cost-growth table (default 100000,1000000,10000000)")
    parser.add_argument("--stream", help="row counts of the larger-than-memory case (default 1000000,10000000)")
    parser.add_argument("--runs", type=int, help="runs per measurement, the median counts (default 3, quick 1)")
    parser.add_argument("--only", help=f"comma-separated parts to run, of {', '.join(PARTS)} (default all)")
    parser.add_argument("--output", type=Path, help="Markdown file (default bench/results.md, none with --quick)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    rows, write_rows = args.rows or sizes["rows"], args.write_rows or sizes["write_rows"]
    growth = [int(s) for s in (args.growth or sizes["growth"]).split(",")]
    stream = [int(s) for s in (args.stream or sizes["stream"]).split(",")]
    runs = args.runs or (1 if args.quick else 3)
    parts = set((args.only or ",".join(PARTS)).split(","))
    if parts - set(PARTS) or write_rows > rows:
        parser.error(f"--only takes {', '.join(PARTS)}; --write-rows must not exceed --rows")
    output = args.output or (None if args.quick else HERE / "results.md")
    if output and not output.parent.is_dir():  # found now, not after ten minutes of measuring
        parser.error(f"--output {output}: folder {output.parent} does not exist; create it first")
    tables = {rows: "t"}
    if "large" in parts:
        tables.update({n: f"t_{n}" for n in growth + stream if n != rows})

    with db.fresh_database(prefix="pt_bench") as url, tempfile.TemporaryDirectory() as scratch:
        engine = db.create_engine(url)
        build(engine, tables, rows)
        bench = Bench(url, engine, Path(scratch), runs, rows, tables, machine(engine))
        if "reads" in parts:
            reads(bench)
        if "writes" in parts:
            writes(bench, write_rows)
        if "large" in parts:
            large(bench, stream, growth)
        imports(bench)
        stages(bench)
        engine.dispose()
    about = f"{bench.about}; load average {os.getloadavg()[0]:.2f} at the end"
    command = (f".venv/bin/python bench/run.py --rows {rows} --write-rows {write_rows} --growth "
               f"{','.join(map(str, growth))} --stream {','.join(map(str, stream))} --runs {runs}")
    text = results_text(about, runs, bench.goals, bench.sections, command)
    readme = readme_block(about, runs, rows, write_rows, bench.cells, bench.goals, bench.growth)
    print(text + "\n\n---- README block (bench/readme_section.md) ----\n\n" + readme)
    if output:
        output.write_text(text + "\n")
        (output.parent / "readme_section.md").write_text(readme + "\n")


def objects_frame(sql: sa.TextClause, psycopg2: sa.Engine) -> pd.DataFrame:
    """What ``pd.read_sql`` returns with ``coerce_float=False`` (else numeric would come as float64): object columns
    of ``Decimal``, ``date`` and ``str`` (None for NULL, as pandas 2 gives text; pandas 3 would make it ``str``),
    float64 for integers with NULLs, ``datetime64[us, UTC]`` for timestamptz."""
    frame = pd.read_sql(sql, psycopg2, coerce_float=False)
    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column].dtype) and frame[column].dtype != object:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def write_targets(engine: sa.Engine, url: sa.URL, scratch: Path, n: int) -> list[tuple[str, str, Path, str, str]]:
    """Each write: its key, target table, input frame (Parquet, or a pickle of pd.read_sql's frame), the SQL
    that encodes the same rows, and its title."""
    autocommit(engine, _data.plain_sql("t_plain", "t"), _data.plain_sql("t_text_plain", "t_text"))
    plain_sql = f"SELECT * FROM t WHERE id <= {n} ORDER BY id"
    text_sql = f"SELECT * FROM t_text WHERE id <= {n} ORDER BY id"
    frames.read_frame(plain_sql, engine).to_parquet(scratch / "t_plain.parquet", index=False)
    psycopg2 = sa.create_engine(url.set(drivername="postgresql+psycopg2"))
    for sql, name in ((plain_sql, "t_plain"), (text_sql, "t_text_plain")):
        objects_frame(sa.text(sql), psycopg2).to_pickle(scratch / f"{name}.read_sql.pkl")
    psycopg2.dispose()
    songs = synthetic(n, 1, seed=1, n_links=1)["songs"]
    songs.to_parquet(scratch / "songs.parquet", index=False)
    prepare(engine, "songs")
    frames.write_frame(songs, "songs", engine)  # in the table once, so that the server encodes the floor's input
    return [
        ("t_plain", "t_plain", scratch / "t_plain.parquet", plain_sql,
         "`t_plain` (the read table's columns, no index), from a frame with read_frame's dtypes"),
        ("t_plain, read_sql's frame", "t_plain", scratch / "t_plain.read_sql.pkl", plain_sql,
         "`t_plain`, from the frame `pd.read_sql(coerce_float=False)` returns (object columns of `Decimal`, `date`, "
         "`str`; float64 for integers with NULLs)"),
        ("t_text_plain, read_sql's frame", "t_text_plain", scratch / "t_text_plain.read_sql.pkl", text_sql,
         "`t_text_plain` (the text-heavy table's columns, no index), from `pd.read_sql(coerce_float=False)`'s frame"),
        ("songs", "songs", scratch / "songs.parquet", "SELECT * FROM songs ORDER BY song_id",
         "the model's `songs` (primary key, two secondary indexes)"),
    ]


if __name__ == "__main__":
    main()
