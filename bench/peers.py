"""One measurement, in a process of its own: ``python bench/peers.py KIND PEER CASE TABLE``.

Run by ``bench/run.py``, never by hand. ``KIND`` is ``read`` (``CASE`` names
one of ``_data.CASES``), ``write`` (``CASE`` is the input: a Parquet file
read with ``read_frame``'s dtypes, a pickle of what ``pd.read_sql`` returned,
or for the floor a pre-encoded COPY file, ``.csv`` or ``.bin``) or ``stream``
(``CASE`` as for reads, the rows streamed and dropped). The database URL
comes in ``$BENCH_URL``. Prints one JSON line: seconds, rows, peak RSS and
the part of it that the operation itself added; or ``{"error": "one line"}``
when the peer fails, so that one peer's failure is reported, not fatal.

RSS counts C allocations too, which ``tracemalloc`` would miss. The peak is
Linux's ``VmHWM``, reset just before the operation (``/proc/self/clear_refs``):
``ru_maxrss`` would do, except that Linux carries it across ``exec`` from
the parent, the benchmark driver, whose own peak would hide the child's.
Every peer's libraries are imported and the input is loaded before that
reset, so no peer pays for either.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from playlist_tools import frames
from playlist_tools.errors import one_line

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import CASES, Case  # noqa: E402

CHUNK_ROWS = 100_000
HAS_DTYPE_BACKEND = "dtype_backend" in inspect.signature(frames.read_frame).parameters
"""Whether ``read_frame, pyarrow`` can run; ``run.py`` reports it n/a, without a process, until then."""


def _url(driver: str = "postgresql") -> str:
    return sa.make_url(os.environ["BENCH_URL"]).set(drivername=driver).render_as_string(hide_password=False)


def _psycopg() -> Any:
    import psycopg

    return psycopg.connect(_url())


# -- reads: each returns the number of rows ------------------------------------------------


def _read_frame(case: Case, table: str, **backend: str) -> int:
    return len(frames.read_frame(case.frame_query(table), params=case.params or None, **backend))


def _read_sql(case: Case, table: str) -> int:
    engine = sa.create_engine(_url("postgresql+psycopg2"))
    frame = pd.read_sql(sa.text(case.text(table)), engine, params=case.params or None)
    engine.dispose()
    return len(frame)


def _adbc(case: Case, table: str, types_mapper: Callable[[pa.DataType], Any] | None = None) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    sql, values = case.dollar(table)
    with adbc.connect(_url()) as con, con.cursor() as cursor:
        cursor.execute(sql, values or None)
        frame = cursor.fetch_arrow_table().to_pandas(types_mapper=types_mapper)
    return len(frame)


def _connectorx(case: Case, table: str, partitions: int = 0) -> int:
    import connectorx as cx

    extra = {"partition_on": "id", "partition_num": partitions} if partitions else {}
    url = sa.make_url(_url())
    if url.host is None:  # connectorx wants a host even when ?host=/socket/dir overrides it
        url = url.set(host="localhost")
    return len(cx.read_sql(url.render_as_string(hide_password=False), case.literal(table), **extra))


def _copy_out(case: Case, table: str) -> int:
    """The floor: the server's binary COPY of the same query, its bytes thrown away."""
    with _psycopg() as con, con.cursor() as cursor:
        with cursor.copy(f"COPY ({case.pyformat(table)}) TO STDOUT (FORMAT binary)", case.params or None) as copy:
            for _ in copy:
                pass
    return -1  # rows are not counted: counting would cost the floor time


READS: dict[str, Callable[[Case, str], int]] = {
    "read_frame": _read_frame,
    "read_frame, pyarrow": lambda case, table: _read_frame(case, table, dtype_backend="pyarrow"),
    "ADBC .to_pandas()": _adbc,
    "ADBC .to_pandas(types_mapper=pd.ArrowDtype)": lambda case, table: _adbc(case, table, pd.ArrowDtype),
    "connectorx": _connectorx,
    "connectorx, 2 partitions": lambda case, table: _connectorx(case, table, 2),
    "pandas.read_sql": _read_sql,
    "floor: COPY binary": _copy_out,
}
"""The read peers; ``run.py`` picks the ones that apply to each case."""


# -- writes: each returns the number of rows -----------------------------------------------


def _to_sql(table: str, frame: pd.DataFrame) -> int:
    engine = sa.create_engine(_url("postgresql+psycopg2"))
    frame.to_sql(table, engine, if_exists="append", index=False)
    engine.dispose()
    return len(frame)


def _table_arrow(cursor: Any, table: str, frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow, cast to the table's own types (int4, ...) as ADBC reads them: binary COPY needs them."""
    cursor.execute(f"SELECT * FROM {table} LIMIT 0")
    types = {f.name: f.type for f in cursor.fetch_arrow_table().schema}
    data = pa.Table.from_pandas(frame, preserve_index=False)
    # numeric reads back as an opaque type: keep the frame's exact decimals for it.
    return data.cast(pa.schema([
        (f.name, f.type if "opaque" in str(types[f.name]) else types[f.name]) for f in data.schema
    ]))


def _adbc_ingest(table: str, frame: pd.DataFrame) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(_url()) as con, con.cursor() as cursor:
        cursor.adbc_ingest(table, _table_arrow(cursor, table, frame), mode="append")
        con.commit()
    return len(frame)


def _pgpq(table: str, frame: pd.DataFrame) -> int:
    """pgpq encodes Arrow as binary COPY (in Rust); the types come from the table, as for ADBC; psycopg 3 sends it."""
    import adbc_driver_postgresql.dbapi as adbc
    import pgpq

    with adbc.connect(_url()) as con, con.cursor() as cursor:
        data = _table_arrow(cursor, table, frame)
    encoder = pgpq.ArrowToPostgresBinaryEncoder(data.schema)
    with _psycopg() as con, con.cursor() as cursor, \
            cursor.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
        copy.write(encoder.write_header())
        for batch in data.to_batches(max_chunksize=CHUNK_ROWS):
            copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())
    return len(frame)


def _copy_in(table: str, encoded: bytes, form: str) -> int:
    """The floor: the same rows, already encoded as COPY takes them, sent by psycopg 3 and committed."""
    with _psycopg() as con, con.cursor() as cursor:
        with cursor.copy(f"COPY {table} FROM STDIN (FORMAT {form})") as copy:
            view = memoryview(encoded)
            for start in range(0, len(view), 1 << 20):
                copy.write(view[start:start + (1 << 20)])
        rows = cursor.rowcount
    return rows


WRITES: dict[str, Callable[[str, Any], int]] = {
    "write_frame": lambda table, frame: frames.write_frame(frame, table),
    "DataFrame.to_sql": _to_sql,
    "ADBC adbc_ingest": _adbc_ingest,
    "pgpq (Arrow to binary COPY)": _pgpq,
    "floor: COPY csv": lambda table, encoded: _copy_in(table, encoded, "csv"),
    "floor: COPY binary": lambda table, encoded: _copy_in(table, encoded, "binary"),
}
"""The write peers: the floors take pre-encoded bytes, the others the frame (the same one for all)."""


# -- larger than memory ------------------------------------------------------------------------


def _chunks(case: Case, table: str) -> int:
    return sum(len(chunk) for chunk in frames.read_frame(case.frame_query(table), chunksize=CHUNK_ROWS))


def _to_parquet(case: Case, table: str) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        return frames.to_parquet(case.frame_query(table), Path(scratch) / "out.parquet", batch_rows=CHUNK_ROWS)


STREAMS: dict[str, Callable[[Case, str], int]] = {
    f"read_frame(chunksize={CHUNK_ROWS:_})": _chunks,
    "frames.to_parquet": _to_parquet,
}


def run(kind: str, peer: str, case: str, table: str, stages: str = "") -> dict[str, Any]:
    """Measure one peer once, in this process; with ``stages`` (any word), profile it instead (:func:`_stages`)."""
    os.environ["DATABASE_URL"] = os.environ["BENCH_URL"]  # read_frame/write_frame/to_parquet with con=None
    # frames imports its machinery on the first call (its import time is reported apart, bench/import_time.py):
    # imported here, as every peer's own library is, so that only the call is timed.
    for name in ("adbc_driver_postgresql.dbapi", "connectorx", "psycopg2", "psycopg", "pgpq",
                 "playlist_tools.frames._read", "playlist_tools.frames._write", "playlist_tools.frames._parquet"):
        with contextlib.suppress(ImportError):  # a missing one fails its own peer, no other
            __import__(name)
    operation: Callable[[], int]
    if kind == "write":
        path = Path(case)
        # .parquet: the frame with read_frame's dtypes (decimal128, Int32, ...), where pd.read_parquet would make
        # Decimal objects; .pkl: the frame exactly as pd.read_sql returned it (Decimal and date objects, float64
        # for integers with NULLs); .csv/.bin: the floor's pre-encoded rows.
        data = path.read_bytes() if path.suffix in (".csv", ".bin") else pd.read_pickle(path) \
            if path.suffix == ".pkl" else pq.read_table(path).to_pandas(types_mapper=frames.pandas_dtype)
        operation = lambda: WRITES[peer](table, data)  # noqa: E731
    else:
        operation = lambda: (STREAMS if kind == "stream" else READS)[peer](CASES[case], table)  # noqa: E731
    if stages:
        return _stages(operation)
    before = _memory_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    start = time.perf_counter()
    rows = operation()
    seconds = time.perf_counter() - start
    peak = _memory_kb("VmHWM")
    return {"seconds": seconds, "rows": rows, "peak_mb": peak / 1024, "extra_mb": (peak - before) / 1024}


STAGES = 8
"""How many of frames' functions a profile names: those of the largest cumulative time."""


def _stages(operation: Callable[[], int]) -> dict[str, Any]:
    """Where one call of ours spends its time: the cumulative seconds of frames' own functions, under cProfile.

    cProfile sees the calling thread only: work done in a thread of ours (the fetch of the next Arrow batch,
    the parallel ranges of a whole table) shows as the time the caller waited for it (``_arrow.prefetched``,
    a ``Future``), and the profiler itself slows pure-Python stages more than C ones: read it as shares.
    """
    import cProfile
    import pstats

    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.runcall(operation)
    seconds = time.perf_counter() - start
    found = []
    for (file, _line, function), row in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        if f"playlist_tools{os.sep}frames{os.sep}" in file and not function.startswith("<"):  # no <listcomp>
            found.append((row[3], f"{Path(file).stem}.{function}"))
    return {"seconds": seconds, "stages": [[name, cum] for cum, name in sorted(found, reverse=True)[:STAGES]]}


def _memory_kb(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field + ":")))


def failure(text: str, database_url: str) -> dict[str, str]:
    """A failed peer's result: one line, cut short, with the URL's password (if any) replaced by ``***``."""
    url = sa.make_url(database_url)
    for secret in {url.password, url.query.get("password")} - {None, ""}:
        text = text.replace(str(secret), "***")
    return {"error": one_line(text, 200)}


if __name__ == "__main__":
    try:
        result = run(*sys.argv[1:])
    except Exception as err:  # noqa: BLE001 - any failure of a peer is its result, in one line
        result = failure(f"{type(err).__name__}: {err}", os.environ["BENCH_URL"])
    print(json.dumps(result))
