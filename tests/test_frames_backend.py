"""frames.read_frame's dtype_backend= (issue 10): "numpy_nullable" (the default) and "pyarrow" (ArrowDtype).

Each type of the frames type map is read through both backends and both paths (an Engine: ADBC; a caller's
Connection: psycopg), and compared with what psycopg itself returns for the same rows: the values must be the
same and, with "pyarrow", every column an ArrowDtype of the map's Arrow type.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterator

import pandas as pd
import psycopg
import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from playlist_tools import frames
from playlist_tools.errors import FrameError

# The driver-level conninfo of a URL: no public name gives it, and the test opens a raw psycopg connection with it.
from playlist_tools.frames._driver import url_conninfo

Read = Callable[..., pd.DataFrame]

# column: (type, values of rows 1 and 2 as SQL, the Arrow type "pyarrow" gives, how psycopg shows it); row 3 is NULLs
TYPES = {
    "i2": ("int2", "-32768", "32767", pa.int16(), None),
    "i4": ("int4", "-2147483648", "7", pa.int32(), None),
    "i8": ("int8", "9007199254740993", "-9223372036854775808", pa.int64(), None),
    "f4": ("float4", "0.5", "-2.25", pa.float32(), None),
    "f8": ("float8", "1e300", "-0.1", pa.float64(), None),
    "b": ("boolean", "true", "false", pa.bool_(), None),
    "t": ("text", "'naïve ☕'", "''", pa.string(), None),
    "vc": ("varchar(5)", "'abc'", "'x'", pa.string(), None),
    "bp": ("char(3)", "'ab'", "'xyz'", pa.string(), None),
    "nm": ("name", "'songs'", "'a b'", pa.string(), None),
    "n31": ("numeric(3, 1)", "-99.9", "0.5", pa.decimal128(3, 1), None),
    "n30": ("numeric(30, 5)", "1234567890123456789012345.12345", "-0.00001", pa.decimal128(30, 5), None),
    "n": ("numeric", "123456789012345678901234567890.125", "-7", pa.decimal128(33, 3), None),
    "d": ("date", "'0001-01-01'", "'9999-12-31'", pa.date32(), None),
    "ts": ("timestamp", "'0001-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'", pa.timestamp("us"), None),
    "tz": ("timestamptz", "'2024-03-31 02:30:00.000001+02'", "'9999-12-31 23:59:59+00'", pa.timestamp("us", "UTC"),
           None),
    "by": ("bytea", "'\\x00ff'", "''", pa.binary(), None),
    "js": ("jsonb", """'{"a": [1, 2]}'""", "'null'", pa.string(), "::text"),
    "u": ("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'", pa.string(),
          "::text"),
}


@pytest.fixture
def typed(engine: Engine) -> Engine:
    """A table of one column per type of the map: two rows of edge values, then a row of NULLs."""
    columns = ", ".join(f"{name} {spec[0]}" for name, spec in TYPES.items())
    rows = ", ".join(f"({k}, " + ", ".join(spec[k] for spec in TYPES.values()) + ")" for k in (1, 2))
    nulls = ", ".join("NULL" for _ in TYPES)
    with engine.begin() as con:
        con.exec_driver_sql(f"CREATE TABLE typed (k int PRIMARY KEY, {columns})")
        con.exec_driver_sql(f"INSERT INTO typed VALUES {rows.replace('%', '%%')}, (3, {nulls})")
    return engine


def _psycopg_rows(engine: Engine) -> list[tuple[object, ...]]:
    """The table's rows as psycopg itself returns them, other types as their text, as frames promises."""
    exprs = ", ".join(f"{name}{spec[4] or ''}" for name, spec in TYPES.items())
    with psycopg.connect(url_conninfo(engine.url)) as con:
        return con.execute(f"SELECT {exprs} FROM typed ORDER BY k").fetchall()


def _plain(value: object) -> object:
    return None if value is None or value is pd.NA or value is pd.NaT else value


@pytest.fixture(params=["engine", "connection"])
def read(request: pytest.FixtureRequest, typed: Engine) -> Iterator[Read]:
    """read_frame over the engine (ADBC) or over a caller's Connection (psycopg)."""
    if request.param == "engine":
        yield lambda query, **kw: frames.read_frame(query, typed, **kw)
        return
    with typed.connect() as con:
        yield lambda query, **kw: frames.read_frame(query, con, **kw)


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_every_type_reads_back_exactly_with_both_backends(read: Read, typed: Engine, backend: str) -> None:
    frame = read(f"SELECT {', '.join(TYPES)} FROM typed ORDER BY k", dtype_backend=backend)
    expected = _psycopg_rows(typed)
    for i, name in enumerate(TYPES):
        got = [_plain(v) for v in frame[name].tolist()]
        assert got == [row[i] for row in expected], name
        assert frame[name].isna().tolist() == [False, False, True], name  # NULL is NA, nothing else is
    if backend == "pyarrow":
        assert {name: frame[name].dtype for name in TYPES} == {name: pd.ArrowDtype(s[3]) for name, s in TYPES.items()}
    else:
        assert frame["n"].tolist()[0] == decimal.Decimal("123456789012345678901234567890.125")  # Decimal objects


def test_integers_with_nulls_stay_integers_in_both_backends(read: Read) -> None:
    query = "SELECT i2, i4, i8 FROM typed ORDER BY k"
    assert read(query).dtypes.astype(str).tolist() == ["Int16", "Int32", "Int64"]
    assert read(query, dtype_backend="pyarrow").dtypes.astype(str).tolist() == [
        "int16[pyarrow]", "int32[pyarrow]", "int64[pyarrow]"]


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_chunks_have_the_whole_reads_dtypes_and_values(read: Read, backend: str) -> None:
    query = "SELECT n, i8, t, d, tz FROM typed ORDER BY k"
    whole = read(query, dtype_backend=backend)
    chunks = list(read(query, dtype_backend=backend, chunksize=2))
    assert [len(c) for c in chunks] == [2, 1]
    assert all(c.dtypes.tolist() == whole.dtypes.tolist() for c in chunks[:1])
    # the chunk of NULLs alone: same dtypes except the unconstrained numeric, whose pyarrow scale is its own
    assert chunks[1].dtypes.tolist()[1:] == whole.dtypes.tolist()[1:]
    joined = pd.concat(chunks, ignore_index=True)
    assert [[_plain(v) for v in joined[c].tolist()] for c in whole] == [[_plain(v) for v in whole[c].tolist()]
                                                                       for c in whole]


@pytest.mark.parametrize("bad", ["numpy", "PyArrow", None, 1])
def test_a_bad_dtype_backend_is_one_line_before_connecting(bad: object) -> None:
    nowhere = "postgresql://nobody@127.0.0.1:1/none"  # would be "unavailable" if it were tried
    with pytest.raises(FrameError) as caught:
        frames.read_frame("SELECT 1", nowhere, dtype_backend=bad)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    assert f"dtype_backend={bad!r}" in message and "'numpy_nullable', 'pyarrow'" in message


def test_years_outside_1_to_9999_stay_loud_with_pyarrow(read: Read) -> None:
    with pytest.raises(FrameError, match=r"column 'd' has date 'infinity'"):
        read("SELECT 'infinity'::date AS d", dtype_backend="pyarrow")
    with pytest.raises(FrameError, match=r"column 'ts' has timestamp '10000-01-01 00:00:00'"):
        read("SELECT '10000-01-01'::timestamp AS ts", dtype_backend="pyarrow")


def test_a_numeric_no_arrow_decimal_holds_is_loud_with_pyarrow_and_a_decimal_without(read: Read) -> None:
    for value in ("NaN", "Infinity", "1" * 77):
        with pytest.raises(FrameError, match=rf"column 'x' has numeric '{value[:40]}'.*cast it in the query"):
            read(f"SELECT '{value}'::numeric AS x", dtype_backend="pyarrow")
        [got] = read(f"SELECT '{value}'::numeric AS x").x.tolist()
        assert isinstance(got, decimal.Decimal) and str(got) == str(decimal.Decimal(value))


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
@pytest.mark.parametrize("numeric", ["numeric(5, 2)", "numeric(30, 2)"])  # a scaled bigint on the wire; text
def test_nan_in_a_numeric_p_s_is_loud_naming_the_column(read: Read, backend: str, numeric: str) -> None:
    # numeric(p, s) reads as an exact decimal in both backends, and an exact decimal has no NaN
    query = f"SELECT 1.5::{numeric} AS ok, x::{numeric} FROM (VALUES (1.5), ('NaN')) AS v (x) ORDER BY 1"
    with pytest.raises(FrameError) as caught:
        read(query, dtype_backend=backend)
    message = str(caught.value)
    assert "\n" not in message
    if numeric == "numeric(30, 2)":  # checked as it arrives: the very column
        assert message.startswith("column 'x' has numeric 'NaN', which its dtype decimal128(30, 2) cannot hold")
    else:  # the server cannot scale it, and says so for the whole row: the columns it can be
        assert message.startswith("one of the columns 'ok', 'x' has numeric 'NaN'")
    assert "x::float8" in message or "name::float8" in message
    with pytest.raises(FrameError, match=r"^column 'x' has numeric 'NaN'.*x::float8 \(NaN stays NaN\)"):
        read(f"SELECT x::{numeric} FROM (VALUES ('NaN')) AS v (x)", dtype_backend=backend)


def test_an_error_in_the_middle_of_the_stream_is_one_frame_error(typed: Engine) -> None:
    # the rows travel in a thread of their own; its error must still reach the caller as one FrameError
    query = "SELECT 1 / (n - 150000) AS x FROM generate_series(1, 300000) AS n"
    for backend in ("numpy_nullable", "pyarrow"):
        with pytest.raises(FrameError, match="reading the result failed: .*division by zero"):
            frames.read_frame(query, typed, dtype_backend=backend)
    with typed.connect() as con:  # the engine's connections are free: nothing is left behind
        active = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        assert con.execute(sa.text(active)).scalar_one() == 0
