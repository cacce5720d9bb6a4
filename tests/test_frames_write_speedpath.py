"""write_frame's binary COPY path and the vectorised Decimal path: every type, NULLs and edge values land exactly.

The reference rows are the same Python values bound by psycopg itself
(``INSERT ... VALUES (%s, ...)``), so the server's own input conversion says
what each value must become; the comparison is SQL ``EXCEPT ALL`` both ways.
"""

from __future__ import annotations

import datetime
import decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy.engine import Engine

from playlist_tools import frames
from playlist_tools.errors import FrameError

# The binary COPY encoder and write_frame's checks, driven directly: no public path reaches each edge alone.
from playlist_tools.frames import _copy_binary, _write

from helpers import same_rows, sql

D = decimal.Decimal
COLUMNS = ("i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, b bool, d date, ts timestamp, tz timestamptz, "
           "t text, v varchar(12), c char(3), n31 numeric(3, 1), n102 numeric(10, 2), n150 numeric(15, 0), "
           "n55 numeric(5, 5)")
TEXTS = ["", 'say "hi"', "line\nbreak\r\n", "back\\slash", "tab\tand,comma", "Ünïcødé ’ 🎵", "NULL", "\\N"]


def edges() -> pd.DataFrame:
    """Each type at its edges, a NULL in every column, as read_frame's dtypes."""
    n = len(TEXTS)
    ints = {"i2": [-32768, 32767, 0, None], "i4": [-2**31, 2**31 - 1, -1, None], "i8": [-2**63, 2**63 - 1, 1, None]}
    stamps = ["0001-01-01 00:00:00", "9999-12-31 23:59:59.999999", "1970-01-01", "2000-01-01 00:00:00.000001",
              "1999-12-31 23:59:59.999999", "2024-02-29 12:34:56.789012", "1969-12-31 23:59:59", None]
    frame = pd.DataFrame({
        **{k: pd.array((v * 2)[:n], dtype={"i2": "Int16", "i4": "Int32", "i8": "Int64"}[k]) for k, v in ints.items()},
        "f4": pd.array([np.inf, -np.inf, -0.0, 1.5e-45, 3.4028235e38, 0.1, None, 1.0], dtype="Float32"),
        "f8": pd.array([np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, None, 1.0], dtype="Float64"),
        "b": pd.array([True, False, None] * 2 + [True, False], dtype="boolean"),
        "d": pd.array([datetime.date(1, 1, 1), datetime.date(9999, 12, 31), datetime.date(2000, 1, 1), None,
                       datetime.date(1999, 12, 31), datetime.date(1970, 1, 1), datetime.date(2024, 2, 29),
                       datetime.date(1, 12, 31)], dtype=pd.ArrowDtype(pa.date32())),
        "ts": pd.Series(pd.to_datetime(stamps, format="ISO8601").as_unit("us")),
        "tz": pd.Series(pd.to_datetime(stamps, format="ISO8601").as_unit("us")).dt.tz_localize("Asia/Kolkata"),
        "t": pd.array(TEXTS[:-1] + [None], dtype=pd.StringDtype("pyarrow")),
        "v": pd.array([s[:12] for s in TEXTS], dtype=pd.StringDtype("pyarrow")),
        "c": pd.array(["", "a", "ab ", "abc", None, "’’’", "x", "y"], dtype=pd.StringDtype("pyarrow")),
    })
    numerics = {"n31": ("-99.9", "99.9", "0.0", "-0.1"), "n102": ("-99999999.99", "99999999.99", "0.01", "-0.10"),
                "n150": ("-999999999999999", "999999999999999", "0", "10000"), "n55": ("-0.99999", "0.99999",
                                                                                     "0.00001", "0.5")}
    for name, values in numerics.items():
        precision, scale = (int(x) for x in sql_type(name))
        frame[name] = pd.array([D(v) for v in values] + [None] + [D(v) for v in values[:3]],
                               dtype=pd.ArrowDtype(pa.decimal128(precision, scale)))
    return frame


def sql_type(name: str) -> tuple[str, str]:
    digits = name[1:]
    return (digits[:-1], digits[-1]) if name != "n102" else ("10", "2")


def reference(engine: Engine, frame: pd.DataFrame, table: str) -> None:
    """The frame's Python values, bound by psycopg, into ``table``."""
    rows = [tuple(None if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v))
                  else v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in row)
            for row in frame.astype(object).itertuples(index=False)]
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * frame.shape[1])})", rows)
        raw.commit()
    finally:
        raw.close()


def checked(engine: Engine, frame: pd.DataFrame, table: str) -> list[tuple[str, pa.Array]]:
    """The frame's columns as write_frame checks them: the input of the binary encoder."""
    with engine.connect() as con:
        live = con.exec_driver_sql(_write._LIVE_COLUMNS, {"table": table}).fetchall()
    arrays, problems = _write._validate(frame, table, live, [], False)
    assert problems == []
    return [(row[1], array) for row, array in zip(live, arrays, strict=True)]


def test_every_binary_type_lands_exactly(engine: Engine) -> None:
    sql(engine, f"CREATE TABLE t ({COLUMNS}); CREATE TABLE ref (LIKE t); SET TIME ZONE 'America/New_York'")
    frame = edges()
    assert _copy_binary.encode(checked(engine, frame, "t")) is not None, "this frame must take the binary path"
    assert frames.write_frame(frame, "t", engine) == len(frame)
    reference(engine, frame, "ref")
    same_rows(engine, "t", "ref")
    assert sql(engine, "SELECT count(*) FROM t WHERE t = ''") == [(1,)]  # empty stays empty, not NULL
    assert sql(engine, "SELECT count(*) FROM t WHERE t IS NULL") == [(1,)]


def test_blocks_cut_anywhere_keep_every_row(engine: Engine) -> None:
    """Blocks of 3 rows: every array is a slice with an offset, NULLs fall on both sides of each cut."""
    sql(engine, f"CREATE TABLE t ({COLUMNS}); CREATE TABLE ref (LIKE t)")
    frame = pd.concat([edges()] * 5, ignore_index=True)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor, cursor.copy("COPY t FROM STDIN (FORMAT binary)") as copy:
            for part in _copy_binary.encode(checked(engine, frame, "t"), rows=3):
                copy.write(part)
        raw.commit()
    finally:
        raw.close()
    reference(engine, frame, "ref")
    same_rows(engine, "t", "ref")


def test_decimal_objects_take_the_fast_path_and_land_exactly(engine: Engine) -> None:
    """Decimal objects (what read_parquet gives) and ints, with None, NaN-as-missing and pd.NA, into numeric(p, s)."""
    sql(engine, "CREATE TABLE t (n numeric(10, 2), m numeric(3, 1)); CREATE TABLE ref (LIKE t)")
    frame = pd.DataFrame({"n": [D("1.5"), None, 7, D("-99999999.99"), D("0.10"), np.nan],
                          "m": [D("-0"), D("99.9"), pd.NA, D("1E+1"), D("-0.5"), 3]}, dtype=object)
    columns = checked(engine, frame, "t")
    assert [a.type for _, a in columns] == [pa.decimal128(10, 2), pa.decimal128(3, 1)]  # not numeric's text
    frames.write_frame(frame, "t", engine)
    reference(engine, frame, "ref")
    same_rows(engine, "t", "ref")


@pytest.mark.parametrize(("values", "says"), [
    ([D("1.25")], "more than 1 decimal places"),
    ([D("123.4")], r"needs an absolute value below 10\^2"),
    ([D("Infinity")], "infinite"),
    ([D("sNaN")], "signalling NaN"),
])
def test_decimal_objects_that_do_not_fit_are_named(engine: Engine, values: list, says: str) -> None:
    sql(engine, "CREATE TABLE t (m numeric(3, 1))")
    with pytest.raises(FrameError, match=says) as caught:
        frames.write_frame(pd.DataFrame({"m": values}, dtype=object), "t", engine)
    assert "column 'm'" in str(caught.value) and "\n" not in str(caught.value)


def test_decimal_nan_stays_nan(engine: Engine) -> None:
    sql(engine, "CREATE TABLE t (i int, m numeric(3, 1))")
    frames.write_frame(pd.DataFrame({"i": [1, 2], "m": pd.Series([D("NaN"), None], dtype=object)}), "t", engine)
    assert sql(engine, "SELECT i, m::text FROM t ORDER BY i") == [(1, "NaN"), (2, None)]


def test_nul_in_text_is_refused_in_one_line(engine: Engine) -> None:
    sql(engine, "CREATE TABLE t (i int, s text)")
    with pytest.raises(FrameError, match=r"0x00 \(COPY t, line 2, column s\)") as caught:
        frames.write_frame(pd.DataFrame({"i": [1, 2], "s": pd.array(["ok", "a\x00b"], dtype="string")}), "t", engine)
    assert "\n" not in str(caught.value) and "nothing was written" in str(caught.value)
    assert sql(engine, "SELECT count(*) FROM t") == [(0,)]


def test_dates_beyond_the_servers_range_go_as_csv_and_are_named(engine: Engine) -> None:
    """A date32 the binary shift would wrap around is left to CSV, where the server names it."""
    sql(engine, "CREATE TABLE t (d date)")
    far = pa.array([-2**31 + 1], pa.date32())
    assert _copy_binary.encode([("date", far)]) is None
    with pytest.raises(FrameError, match="column d: ") as caught:
        frames.write_frame(pd.DataFrame({"d": pd.array(far, dtype=pd.ArrowDtype(pa.date32()))}), "t", engine)
    assert "\n" not in str(caught.value)
