"""Property-based round trips: values nobody chose, for every entry of the type map, both ways, both drivers.

One table holds a column for each entry of ``frames._types``' map (and
``numeric`` in its three forms: a scaled bigint, decimal text, unconstrained).
Hypothesis draws rows of values within each type's documented domain, and:

* frame -> table -> frame: a frame with the dtypes read_frame gives is
  written, read back (through ADBC or a Connection's driver, in either
  dtype backend) and must be the same values;
* table -> frame -> table: the server stores the values (bound by the
  driver), read_frame reads them and write_frame writes the frame into a
  second table, which must hold the very same rows (SQL ``EXCEPT ALL``).

Left out on purpose, as documented: float NaN (pandas' missing value, so
NULL), dates outside years 1 to 9999 (refused on read).
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from sqlalchemy.engine import URL, Engine

from playlist_tools import frames
from playlist_tools.frames import _types

D = decimal.Decimal
CHARACTERS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")  # what text can hold
TEXT = st.text(CHARACTERS, max_size=12)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: datetime.timezone(datetime.timedelta(minutes=m)))
DATETIMES = st.datetimes(datetime.datetime(2, 1, 1), datetime.datetime(9998, 12, 31))

# column -> (SQL type, strategy of its values, the dtype read_frame gives it by default)
COLUMNS: dict[str, tuple[str, st.SearchStrategy[Any], Any]] = {
    "bool": ("bool", st.booleans(), "boolean"),
    "bytea": ("bytea", st.binary(max_size=16), pd.ArrowDtype(pa.binary())),
    "name": ("name", TEXT, "string"),
    "int8": ("int8", st.integers(-(2**63), 2**63 - 1), "Int64"),
    "int2": ("int2", st.integers(-(2**15), 2**15 - 1), "Int16"),
    "int4": ("int4", st.integers(-(2**31), 2**31 - 1), "Int32"),
    "text": ("text", TEXT, "string"),
    "float4": ("float4", st.floats(width=32, allow_nan=False), "Float32"),
    "float8": ("float8", st.floats(allow_nan=False), "Float64"),
    "bpchar": ("char(5)", st.text(CHARACTERS, max_size=5), "string"),
    "varchar": ("varchar(12)", TEXT, "string"),
    "date": ("date", st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31)), pd.ArrowDtype(pa.date32())),
    "timestamp": ("timestamp", st.datetimes(datetime.datetime(1, 1, 1), datetime.datetime(9999, 12, 31, 23, 59)),
                  "datetime64[us]"),
    "timestamptz": ("timestamptz", DATETIMES.flatmap(lambda d: OFFSETS.map(lambda z: d.replace(tzinfo=z))),
                    "datetime64[us, UTC]"),
    "numeric_10_2": ("numeric(10, 2)", st.decimals(-D("99999999.99"), D("99999999.99"), places=2),
                     pd.ArrowDtype(pa.decimal128(10, 2))),
    "numeric_30_8": ("numeric(30, 8)", st.decimals(-D("1e22") + 1, D("1e22") - 1, places=8),
                     pd.ArrowDtype(pa.decimal128(30, 8))),
    "numeric": ("numeric", st.decimals(-D("1e30"), D("1e30"), places=10, allow_nan=False, allow_infinity=False),
                object),
}
ROWS = st.lists(st.fixed_dictionaries({c: st.none() | strategy for c, (_, strategy, _) in COLUMNS.items()}),
                max_size=6)
# Through ADBC (an Engine) or a Connection's driver, in either dtype backend: drawn, so examples spread over all four.
READS = st.sampled_from([(how, backend) for how in ("engine", "connection")
                         for backend in ("numpy_nullable", "pyarrow")])
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_every_entry_of_the_type_map_has_a_column() -> None:
    assert set(_types._FIXED) <= set(COLUMNS)  # a new entry needs its strategy here


@pytest.fixture(params=["postgresql+psycopg", "postgresql+psycopg2"])
def typed(request: pytest.FixtureRequest, database_url: URL) -> Iterator[Engine]:
    engine = sa.create_engine(database_url.set(drivername=request.param))
    columns = ", ".join(f"{name} {sql_type}" for name, (sql_type, _, _) in COLUMNS.items())
    with engine.begin() as con:
        con.exec_driver_sql(f"CREATE TABLE src (n int, {columns}); CREATE TABLE dst (n int, {columns})")
    yield engine
    engine.dispose()


def read(engine: Engine, table: str, how: str, backend: str) -> pd.DataFrame:
    query = f"SELECT * FROM {table} ORDER BY n"
    if how == "engine":
        return frames.read_frame(query, engine, dtype_backend=backend)  # type: ignore[arg-type]
    with engine.connect() as con:
        return frames.read_frame(query, con, dtype_backend=backend)  # type: ignore[arg-type]


def python(series: pd.Series) -> list[Any]:
    return [None if v is None or v is pd.NA or v is pd.NaT else v for v in series.astype(object).tolist()]


def expected(column: str, value: Any) -> Any:
    """What the server gives back for ``value``: char(n) pads with spaces, timestamptz is an instant (UTC)."""
    if value is None:
        return None
    if column == "bpchar":
        return value.ljust(5)
    if column in ("timestamp", "timestamptz"):
        return pd.Timestamp(value).tz_convert("UTC") if value.tzinfo else pd.Timestamp(value)
    return value


@SETTINGS
@given(rows=ROWS, read_how=READS)
def test_frame_to_table_to_frame(typed: Engine, rows: list[dict[str, Any]], read_how: tuple[str, str]) -> None:
    df = pd.DataFrame({"n": pd.Series(range(len(rows)), dtype="Int32")} | {
        column: pd.Series([row[column] for row in rows], dtype=dtype) for column, (_, _, dtype) in COLUMNS.items()})
    frames.write_frame(df, "src", typed, if_exists="replace")
    back = read(typed, "src", *read_how)
    for column in COLUMNS:
        assert python(back[column]) == [expected(column, row[column]) for row in rows], column
        if read_how[1] == "numpy_nullable":
            assert back[column].dtype == df[column].dtype, column


@SETTINGS
@given(rows=ROWS, read_how=READS)
def test_table_to_frame_to_table(typed: Engine, rows: list[dict[str, Any]], read_how: tuple[str, str]) -> None:
    names = ", ".join(COLUMNS)
    with typed.begin() as con:
        con.exec_driver_sql("DELETE FROM src")
        if rows:
            values = ", ".join(f"%({c})s" for c in COLUMNS)
            con.exec_driver_sql(f"INSERT INTO src (n, {names}) VALUES (%(n)s, {values})",
                                [{"n": i, **row} for i, row in enumerate(rows)])
    frames.write_frame(read(typed, "src", *read_how), "dst", typed, if_exists="replace")
    with typed.connect() as con:
        for a, b in (("src", "dst"), ("dst", "src")):
            assert con.exec_driver_sql(f"SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}").all() == [], f"{a} - {b}"
        assert con.exec_driver_sql("SELECT count(*) FROM dst").scalar_one() == len(rows)
