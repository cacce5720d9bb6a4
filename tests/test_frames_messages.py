"""write_frame's refusals in one line of our words, with a fix that works; and the cases that must simply work.

Each refusal names the column and the value, speaks neither Arrow nor the
server, and where it advises a fix the test applies that very fix and
writes again. Also here: ``%`` in column names, a frame's named index,
``text().bindparams`` values, and the permissions of a Parquet file.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from playlist_tools import frames
from playlist_tools.errors import FrameError

DRIVERS = ["postgresql+psycopg", "postgresql+psycopg2"]
ARROW_WORDS = re.compile(r"Arrow|Precision is not great|syntax error|AttributeError|decimal places|\n")


def sql(engine: Engine, statement: str) -> list[tuple]:
    """Run SQL through the driver itself, without parameters, so that a ``%`` in it is a ``%``."""
    with engine.begin() as con:
        cursor = con.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(statement)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


def refusal(df: object, table: str, engine: Engine, pattern: str) -> str:
    with pytest.raises(FrameError) as refused:
        frames.write_frame(df, table, engine)  # type: ignore[arg-type]
    message = str(refused.value)
    assert re.search(pattern, message), message
    assert not ARROW_WORDS.search(message), message
    return message


@pytest.fixture
def t(engine: Engine) -> Engine:
    sql(engine, "CREATE TABLE t (n3 numeric(3, 0), n5 numeric(5, -2), x text, ts timestamp, tz timestamptz, "
                "v varchar(3), c char(3), re float8, im float8)")
    return engine


def test_an_int_too_large_for_numeric(t: Engine) -> None:
    refusal(pd.DataFrame({"n3": [5, 1234]}), "t", t, r"column 'n3' .* numeric\(3, 0\) \(1234 needs an absolute value "
                                                     r"below 10\^3\); use a wider column type")
    assert sql(t, "SELECT count(*) FROM t") == [(0,)]


@pytest.mark.parametrize("value", [1234, 1234.0, 1250.5])
def test_numeric_with_a_negative_scale_is_exact_or_refused(t: Engine, value: float) -> None:
    df = pd.DataFrame({"n5": [value]})
    message = refusal(df, "t", t, r"column 'n5' .*\(12[35]\S* is not a multiple of 100.*df\['n5'\]\.round\(-2\)")
    fix = re.search(r"(df\[.*?\)\S*)$", message)
    assert fix is not None
    df["n5"] = eval(fix.group(1), {"df": df})  # the advised fix, as written
    frames.write_frame(df, "t", t)
    assert sql(t, "SELECT n5::text FROM t") == sql(t, f"SELECT round({value}::numeric, -2)::numeric(5, -2)::text")


def test_exact_multiples_go_into_a_negative_scale(t: Engine) -> None:
    frames.write_frame(pd.DataFrame({"n5": [1200, 99900]}), "t", t)
    frames.write_frame(pd.DataFrame({"n5": [1200.0]}), "t", t)
    assert sql(t, "SELECT n5::text FROM t") == [("1200",), ("99900",), ("1200",)]


def test_a_complex_column(t: Engine) -> None:
    df = pd.DataFrame({"x": [1 + 2j, 3 - 1j]})
    refusal(df, "t", t, r"column 'x' is complex128, .*two float columns, e\.g\. df\['x'\]\.to_numpy\(\)\.real")
    frames.write_frame(pd.DataFrame({"re": df.x.to_numpy().real, "im": df.x.to_numpy().imag}), "t", t)
    assert sql(t, "SELECT re, im FROM t") == [(1.0, 2.0), (3.0, -1.0)]


def test_rows_without_columns(t: Engine) -> None:
    refusal(pd.DataFrame(index=range(3)), "t", t, r"cannot write to t: the frame has 3 rows but no columns")
    assert frames.write_frame(pd.DataFrame(), "t", t) == 0  # nothing at all is nothing to write


@pytest.mark.parametrize(("value", "pattern"), [
    ([{"x": "a"}], r"needs a pandas DataFrame, not list; make one first: pd\.DataFrame\(rows"),
    (pd.Series(["a"], name="x"), r"needs a pandas DataFrame, not Series; make one first: series\.to_frame\(\)"),
    ({"x": ["a"]}, r"needs a pandas DataFrame, not dict"),
])
def test_not_a_frame(t: Engine, value: object, pattern: str) -> None:
    refusal(value, "t", t, pattern)


def test_the_advice_for_a_series_works(t: Engine) -> None:
    series = pd.Series(["a"], name="x")
    frames.write_frame(series.to_frame(), "t", t)
    assert sql(t, "SELECT x FROM t") == [("a",)]


AWARE = datetime.datetime(2024, 3, 1, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
NAIVE = datetime.datetime(2024, 3, 1, 12, 30)


@pytest.mark.parametrize(("column", "values", "stored"), [
    ("ts", [AWARE], "2024-03-01 10:30:00"),  # into timestamp: UTC wall time
    ("ts", pd.Series([AWARE], dtype=object), "2024-03-01 10:30:00"),
    ("ts", pd.Series([pd.Timestamp(AWARE)]), "2024-03-01 10:30:00"),
    ("tz", pd.Series([NAIVE], dtype=object), "2024-03-01 12:30:00+00"),  # into timestamptz: read as UTC
    ("tz", pd.Series([pd.Timestamp(NAIVE)]), "2024-03-01 12:30:00+00"),
])
def test_the_advice_for_a_zone_mismatch_works(t: Engine, column: str, values: object, stored: str) -> None:
    df = pd.DataFrame({column: values})
    message = refusal(df, "t", t, rf"column '{column}' holds (zone-aware|naive) timestamps .*; write pd\.to_datetime")
    fix = re.search(r"; write (pd\.to_datetime\(.*?\)\.dt\.tz_localize\([^)]*\))", message)
    assert fix is not None, message
    df[column] = eval(fix.group(1), {"df": df, "pd": pd})  # the advised fix, as written, on this very column
    frames.write_frame(df, "t", t)
    with t.begin() as con:
        con.exec_driver_sql("SET TIME ZONE 'UTC'")
        assert con.exec_driver_sql(f"SELECT {column}::text FROM t").scalar_one() == stored


def test_trailing_spaces_beyond_a_varchar_are_trimmed_as_postgresql_does(t: Engine) -> None:
    frames.write_frame(pd.DataFrame({"v": ["ab    ", "abc  "], "c": ["ab    ", "x   "]}), "t", t)
    assert sql(t, "SELECT v, c FROM t") == sql(t, "SELECT 'ab    '::varchar(3), 'ab    '::char(3) UNION ALL "
                                                   "SELECT 'abc  '::varchar(3), 'x   '::char(3)")
    refusal(pd.DataFrame({"v": ["abcd"]}), "t", t, r"column 'v' value 'abcd' has 4 characters, more than varchar\(3\)")
    refusal(pd.DataFrame({"v": ["ab  c"]}), "t", t, r"value 'ab  c' has 5 characters")


# -- % in column names ----------------------------------------------------------------------------------


@pytest.fixture(params=DRIVERS)
def any_engine(request: pytest.FixtureRequest, database_url: URL) -> Iterator[Engine]:
    engine = sa.create_engine(database_url.set(drivername=request.param))
    yield engine
    engine.dispose()


@pytest.mark.parametrize("kind", ["engine", "connection", "url"])
def test_percent_in_column_names(any_engine: Engine, kind: str) -> None:
    sql(any_engine, 'CREATE TABLE p ("a%b" int, "100%%" text, "%(x)s" int)')
    df = pd.DataFrame({"a%b": [1], "100%%": ["full"], "%(x)s": [7]})
    if kind == "connection":
        with any_engine.connect() as con:
            frames.write_frame(df, "p", con)
            con.commit()
    else:
        frames.write_frame(df, "p", any_engine if kind == "engine" else any_engine.url)
    assert sql(any_engine, 'SELECT "a%b", "100%%", "%(x)s" FROM p') == [(1, "full", 7)]
    with any_engine.connect() as con:
        back = frames.read_frame("p", con if kind == "connection" else any_engine)
    assert back.columns.tolist() == ["a%b", "100%%", "%(x)s"]
    assert back.iloc[0].tolist() == [1, "full", 7]


# -- the index ---------------------------------------------------------------------------------------


@pytest.fixture
def songs(engine: Engine) -> Engine:
    sql(engine, "CREATE TABLE s (song_id int, disc int, title text)")
    return engine


def test_a_frame_indexed_by_a_table_column_writes_it(songs: Engine) -> None:
    df = pd.DataFrame({"song_id": [7, 8], "title": ["a", "b"]}).set_index("song_id")
    frames.write_frame(df, "s", songs)
    assert sql(songs, "SELECT song_id, title FROM s ORDER BY 1") == [(7, "a"), (8, "b")]


def test_a_multiindex_writes_its_named_levels(songs: Engine) -> None:
    df = pd.DataFrame({"song_id": [7], "disc": [2], "title": ["a"]}).set_index(["song_id", "disc"])
    frames.write_frame(df, "s", songs)
    assert sql(songs, "SELECT song_id, disc, title FROM s") == [(7, 2, "a")]


def test_a_named_index_the_table_lacks_is_refused_not_dropped(songs: Engine) -> None:
    df = pd.DataFrame({"title": ["a"]}, index=pd.Index(["x"], name="genre"))
    refusal(df, "s", songs, r"the index \['genre'\] is written as columns.*pass index=False")
    assert sql(songs, "SELECT count(*) FROM s") == [(0,)]
    frames.write_frame(df, "s", songs, index=False)  # the advised fix
    assert sql(songs, "SELECT title FROM s") == [("a",)]


def test_an_unnamed_index_is_row_labels(songs: Engine) -> None:
    frames.write_frame(pd.DataFrame({"title": ["a", "b"]}, index=[10, 20]), "s", songs)
    assert sql(songs, "SELECT song_id, title FROM s ORDER BY title") == [(None, "a"), (None, "b")]


def test_an_index_that_is_also_a_column(songs: Engine) -> None:
    df = pd.DataFrame({"song_id": [1], "title": ["a"]}, index=pd.Index([9], name="song_id"))
    refusal(df, "s", songs, r"the index \['song_id'\] is also a column of the frame")


# -- bound values of text() ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["url", "engine", "connection"])
def test_bindparams_values_are_honoured(any_engine: Engine, kind: str) -> None:
    query = sa.text("SELECT :a AS a, :b AS b").bindparams(a=3)
    if kind == "connection":
        with any_engine.connect() as con:
            got = frames.read_frame(query, con, {"b": "x"})
    else:
        got = frames.read_frame(query, any_engine.url if kind == "url" else any_engine, {"b": "x"})
    assert got.iloc[0].tolist() == [3, "x"]
    with pytest.raises(FrameError, match="has no value for :b"):
        frames.read_frame(query, any_engine)


# -- Parquet permissions -----------------------------------------------------------------------------------


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_to_parquet_keeps_the_mode_of_a_file_it_replaces(database_url: URL, tmp_path: Path, umask_027: None) -> None:
    private, new = tmp_path / "private.parquet", tmp_path / "new.parquet"
    private.write_bytes(b"old")
    private.chmod(0o600)
    assert frames.to_parquet("SELECT 1 AS n", private, database_url) == 1
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    wide = tmp_path / "wide.parquet"
    wide.write_bytes(b"old")
    wide.chmod(0o664)  # wider than the umask: kept as it was, not narrowed either
    frames.to_parquet("SELECT 1 AS n", wide, database_url)
    assert stat.S_IMODE(wide.stat().st_mode) == 0o664
    frames.to_parquet("SELECT 1 AS n", new, database_url)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640  # 0o666 less the umask, as open() would make it
    assert pd.read_parquet(private).n.tolist() == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.parquet", "private.parquet", "wide.parquet"]


def test_numpy_complex_in_object_column_is_one_line(t: Engine) -> None:
    refusal(pd.DataFrame({"re": pd.Series([np.complex128(1 + 1j)], dtype=object)}), "t", t, r"column 're'")
