"""One measurement, in a process of its own: ``python bench/peers.py OPERATION TABLE``.

Run by ``bench/run.py``, never by hand. The database URL comes in
``$BENCH_URL`` and the input frame of a write in ``$BENCH_INPUT`` (Parquet).
Prints one JSON line: seconds, rows, peak RSS and the part of it that the
operation itself added. RSS counts C allocations too, which ``tracemalloc``
would miss. The peak is Linux's ``VmHWM``, reset just before the operation
(``/proc/self/clear_refs``): ``ru_maxrss`` would do, except that Linux
carries it across ``exec`` from the parent, the benchmark driver, whose own
peak would hide the child's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from playlist_tools import frames

QUERY = "SELECT * FROM {table}"


def _url(driver: str = "postgresql") -> str:
    return sa.make_url(os.environ["BENCH_URL"]).set(drivername=driver).render_as_string(hide_password=False)


def _read_sql(table: str) -> int:
    engine = sa.create_engine(_url("postgresql+psycopg2"))
    frame = pd.read_sql(QUERY.format(table=table), engine)
    engine.dispose()
    return len(frame)


def _adbc(table: str) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(_url()) as con, con.cursor() as cursor:
        cursor.execute(QUERY.format(table=table))
        frame = cursor.fetch_arrow_table().to_pandas(types_mapper=pd.ArrowDtype)
    return len(frame)


def _connectorx(table: str, partitions: int = 0) -> int:
    import connectorx as cx

    extra = {"partition_on": "song_id", "partition_num": partitions} if partitions else {}
    url = sa.make_url(_url())
    if url.host is None:  # connectorx wants a host even when ?host=/socket/dir overrides it
        url = url.set(host="localhost")
    return len(cx.read_sql(url.render_as_string(hide_password=False), QUERY.format(table=table), **extra))


def _to_sql(table: str, frame: pd.DataFrame) -> int:
    engine = sa.create_engine(_url("postgresql+psycopg2"))
    frame.to_sql(table, engine, if_exists="append", index=False)
    engine.dispose()
    return len(frame)


def _adbc_ingest(table: str, frame: pd.DataFrame) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(_url()) as con, con.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} LIMIT 0")
        schema = cursor.fetch_arrow_table().schema  # ADBC needs the table's own types (int4, numeric...)
        data = pa.Table.from_pandas(frame, preserve_index=False)
        types = {f.name: f.type for f in schema}
        # numeric reads back as an opaque type: keep the frame's exact decimals for it.
        data = data.cast(pa.schema([
            (f.name, f.type if "opaque" in str(types[f.name]) else types[f.name]) for f in data.schema
        ]))
        cursor.adbc_ingest(table, data, mode="append")
        con.commit()
    return len(frame)


READS: dict[str, Callable[[str], int]] = {
    "read_frame": lambda table: len(frames.read_frame(table)),
    "read_frame, SQL text": lambda table: len(frames.read_frame(QUERY.format(table=table))),
    "pandas.read_sql": _read_sql,
    "ADBC": _adbc,
    "connectorx": _connectorx,
    "connectorx, 2 partitions": lambda table: _connectorx(table, 2),
}
WRITES: dict[str, Callable[[str, pd.DataFrame], int]] = {
    "write_frame": lambda table, frame: frames.write_frame(frame, table),
    "DataFrame.to_sql": _to_sql,
    "ADBC adbc_ingest": _adbc_ingest,
}


def main(operation: str, table: str) -> None:
    os.environ["DATABASE_URL"] = os.environ["BENCH_URL"]  # read_frame/write_frame with con=None
    # Every peer's libraries are loaded before the baseline, so none pays for its imports.
    import adbc_driver_postgresql.dbapi  # noqa: F401
    import connectorx  # noqa: F401
    import psycopg2  # noqa: F401

    frame = pd.read_parquet(os.environ["BENCH_INPUT"]) if operation in WRITES else None
    before = _memory_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    start = time.perf_counter()
    rows = WRITES[operation](table, frame) if frame is not None else READS[operation](table)
    seconds = time.perf_counter() - start
    peak = _memory_kb("VmHWM")
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_mb": peak / 1024, "extra_mb": (peak - before) / 1024}))


def _memory_kb(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field + ":")))


if __name__ == "__main__":
    main(*sys.argv[1:])
