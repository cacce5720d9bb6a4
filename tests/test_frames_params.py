"""frames, a query with bound parameters over ADBC (issue 10): the values written in as typed literals, so the
rows travel through COPY, and the result exactly the one the bound query gives, or the bound query itself.

Each case reads twice over the same engine: as read_frame does it (``inlined``), and with the inliner switched
off (``bound``, the path every query with parameters took before). They must agree in dtypes and values.
"""

from __future__ import annotations

import datetime
import decimal
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, frames
from playlist_tools.errors import FrameError

# Spies on the ADBC path and on inlining inside read_frame: no public path shows which one ran.
from playlist_tools.frames import _read

Both = Callable[..., tuple[Any, Any]]
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


@pytest.fixture
def inliner(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each query ADBC ran: True if its parameters were written in (none bound: COPY), False if bound."""
    ran: list[bool] = []
    real = _read._adbc

    def spy(uri: str, sql: str, params: list[Any], *rest: Any) -> Any:
        ran.append(not params)
        return real(uri, sql, params, *rest)

    monkeypatch.setattr(_read, "_adbc", spy)
    return ran


@pytest.fixture(scope="module")
def vals(server_url: URL) -> Iterator[Engine]:
    """An engine on one database, with the table ``vals`` (50 rows and one of NULLs), for the module's reads.

    Shared because every case only reads it; the injection cases check that it is still whole afterwards.
    """
    with db.fresh_database(server_url, prefix="pt_test") as url:
        engine = db.create_engine(url)
        with engine.begin() as con:
            con.exec_driver_sql(
                "CREATE TABLE vals (i int, i8 bigint, n numeric(12, 3), t text, d date, ts timestamptz, b boolean)")
            con.exec_driver_sql(
                "INSERT INTO vals SELECT g, g * 10000000000, g / 8.0, 'row ' || g, DATE '2000-01-01' + g,"
                " TIMESTAMPTZ '2020-01-01 00:00+00' + g * INTERVAL '1 hour', mod(g, 2) = 0"
                " FROM generate_series(1, 50) g")
            con.exec_driver_sql("INSERT INTO vals VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
        yield engine
        engine.dispose()


@pytest.fixture
def both(vals: Engine, inliner: list[bool], monkeypatch: pytest.MonkeyPatch) -> Both:
    """read_frame of a query as it goes now, and as it goes bound; asserts the first one was inlined."""
    engine = vals

    def read(query: str, params: dict[str, Any], inlined: bool | None = True) -> tuple[Any, Any]:
        inliner.clear()
        new = outcome(query, engine, params)
        if inlined is not None:
            assert inliner == [inlined]
        with monkeypatch.context() as off:
            off.setattr(_read, "inlined", lambda *args: None)
            bound = outcome(query, engine, params)
        return new, bound

    return read


def outcome(query: str, engine: Engine, params: dict[str, Any]) -> pd.DataFrame | str:
    """The frame read, or the one-line error."""
    try:
        return frames.read_frame(query, engine, params)
    except FrameError as err:
        return str(err)


def assert_same(new: pd.DataFrame | str, bound: pd.DataFrame | str) -> None:
    assert type(new) is type(bound), (new, bound)
    if isinstance(new, str):
        assert new == bound
        return
    pd.testing.assert_frame_equal(new, bound, check_exact=True)
    # Decimal('1.50') == Decimal('1.5'): the scale must match too, which only the text shows.
    assert new.astype(str).values.tolist() == bound.astype(str).values.tolist()


VALUES = [
    5, -1, 2**40, -(2**63), 2**63 - 1, 2**70,  # the last one travels as numeric
    decimal.Decimal("1.50"), decimal.Decimal("-12345678901234567890.123456789"), decimal.Decimal("1E+3"),
    decimal.Decimal("1E-7"),
    decimal.Decimal("-0"), "Rock", "", "é€😀 ünïcode", "a\\b", "it's",
    datetime.date(1, 1, 1), datetime.date(2024, 2, 29), datetime.date(9999, 12, 31),
    datetime.datetime(2020, 1, 1, 1, 2, 3, 4, tzinfo=datetime.UTC),
    datetime.datetime(2021, 6, 1, 12, 0, tzinfo=PARIS), datetime.datetime(2021, 10, 31, 2, 30, fold=1, tzinfo=PARIS),
    datetime.datetime(2020, 1, 1, 23, 59, 59, 5), True, False, 0.1, -0.0, 1e300, float("inf"), float("nan"),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_each_parameter_type_reads_the_same_inlined_as_bound(both: Both, value: object) -> None:
    # In the select list the bound query's column has the type psycopg gives the value when it describes it:
    # smallint for 5, so the inlined bigint differs and it goes bound.
    small = type(value) is int and -(2**31) <= value < 2**31
    new, bound = both("SELECT :v AS v, 1 AS one", {"v": value}, inlined=not small)
    assert_same(new, bound)
    assert not new.v.isna().iloc[0] or value != value  # a value, not NULL (NaN is NA in a Float64 column)
    new, bound = both("SELECT pg_typeof(:v)::text AS type, :v = :v AS same", {"v": value},
                      inlined=None if isinstance(value, str) else True)  # no parameter among the columns
    assert_same(new, bound)  # the server saw the same type: what ADBC binds it as


@pytest.mark.parametrize(("where", "params"), [
    ("i8 > :lo AND t <> :g", {"lo": 200000000000, "g": "row 30"}),
    ("n >= :n AND d < :d", {"n": decimal.Decimal("2.5"), "d": datetime.date(2000, 2, 1)}),
    ("ts BETWEEN :a AND :b OR b = :flag", {"a": datetime.datetime(2020, 1, 1, 5, tzinfo=PARIS),
                                            "b": datetime.datetime(2020, 1, 2, tzinfo=datetime.UTC), "flag": False}),
    ("i <= :hi + 1 LIMIT :n", {"hi": 9, "n": 4}),
])
def test_a_where_picks_the_same_rows_with_the_same_dtypes(both: Both, where: str, params: dict[str, Any]) -> None:
    new, bound = both(f"SELECT * FROM vals WHERE {where}", params)
    assert_same(new, bound)
    assert 0 < len(new) < 51


@pytest.mark.parametrize("query", [
    "SELECT * FROM vals WHERE i IS NOT DISTINCT FROM :v ORDER BY i8",
    "SELECT COALESCE(:v, i) AS c, CAST(:v AS numeric(5, 2)) AS n FROM vals ORDER BY i8",
    "SELECT * FROM vals WHERE t = :v OR d > :v2",
    "SELECT :v AS v",  # text, as the server resolves an unknown in the select list
])
def test_none_parameters_take_the_type_the_server_infers(both: Both, query: str) -> None:
    new, bound = both(query, {"v": None, "v2": None} if ":v2" in query else {"v": None})
    assert_same(new, bound)


INJECTIONS = [
    "'; DROP TABLE vals; --", "' OR '1'='1", "\\'; DROP TABLE vals; --", "\\", "\\\\'", "''", "'",
    "$$; DROP TABLE vals; $$", "$x$ DROP TABLE vals $x$", "$1", ":v", "%s %(v)s %%", "/* open", "*/ close */",
    "-- a comment", "E'\\x41'", "\\x41\\u0041", "\r\n\t\x01\x7f", "\"; DROP TABLE vals; --",
    "'" * 10_000 + "\\" * 10_000 + "é" * 1_000_000,
]


@pytest.mark.parametrize("value", INJECTIONS, ids=lambda v: repr(v)[:40])
def test_injection_attempts_come_back_as_the_exact_value_and_do_no_harm(
    both: Both, vals: Engine, value: str
) -> None:
    new, bound = both("SELECT :s AS s, length(:s) AS n, (SELECT count(*) FROM vals) AS rows", {"s": value})
    assert_same(new, bound)
    assert new.s.iloc[0] == value and new.n.iloc[0] == len(value) and new.rows.iloc[0] == 51
    with vals.connect() as con:  # nothing ran after the query either
        assert con.exec_driver_sql("SELECT count(*), count(i) FROM vals").one() == (51, 50)


def test_a_placeholder_inside_a_literal_or_comment_is_not_one(both: Both) -> None:
    query = ("SELECT '$1' AS a, ':v' AS b, $$ $1 :v $$ AS c, $😀$ $1 :v $😀$ AS d, E'\\'$1' AS e, "
             ":v AS \"$1\", 'x$1' AS f /* $1 :v */ -- $1 :v\n, :v || '$1' AS g")
    new, bound = both(query, {"v": "value"})
    assert_same(new, bound)
    assert new.iloc[0].tolist() == ["$1", ":v", " $1 :v ", " $1 :v ", "'$1", "value", "x$1", "value$1"]


@pytest.mark.parametrize(("query", "params"), [
    ("SELECT :b AS b", {"b": b"\x00ab'"}),  # bytea
    ("SELECT :a AS a", {"a": [1, 2]}),  # an array
    ("SELECT CAST(:j AS text) AS j", {"j": {"k": "v"}}),  # JSON-ish
    ("SELECT :t AS t", {"t": datetime.time(12, 30)}),  # a type the inliner does not handle
    ("SELECT :d AS d", {"d": datetime.timedelta(days=1)}),
    ("SELECT :t AS t", {"t": datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(seconds=7)))}),
    ("SELECT :n AS n", {"n": decimal.Decimal("NaN")}),  # Arrow has no NaN decimal
    ("SELECT :s AS s", {"s": "a\x00b"}),  # NUL in text
    ("SELECT :v AS v", {"v": 7}),  # psycopg's describe says smallint, ADBC binds bigint: the columns differ
    ("SELECT * FROM vals WHERE d >= :since", {"since": "2000-01-10"}),  # text where a date is: refused bound too
    ("SELECT pg_typeof(:v)::text AS t", {"v": None}),  # the server cannot type it
])
def test_what_the_inliner_does_not_handle_goes_bound_and_ends_alike(
    both: Both, inliner: list[bool], query: str, params: dict[str, Any]
) -> None:
    new, bound = both(query, params, inlined=None)
    assert_same(new, bound)
    assert not any(inliner)
    if "\x00" in str(params.get("s")):
        assert isinstance(new, str) and "0x00" in new  # loud, as bound


def test_standard_conforming_strings_off_goes_bound(database_url: URL, inliner: list[bool]) -> None:
    engine = sa.create_engine(database_url.set(drivername="postgresql+psycopg"),
                              connect_args={"options": "-c standard_conforming_strings=off"})
    try:
        value = "a\\'; DROP TABLE x; --"
        got = frames.read_frame("SELECT :s AS s, current_setting('standard_conforming_strings') AS scs",
                                engine, {"s": value})
    finally:
        engine.dispose()
    assert inliner == [False] and got.s.iloc[0] == value and got.scs.iloc[0] == "off"


@pytest.fixture
def psycopg2_engine(database_url: URL) -> Iterator[Engine]:
    engine = sa.create_engine(database_url.set(drivername="postgresql+psycopg2"))
    yield engine
    engine.dispose()


def test_a_psycopg2_engine_goes_bound_and_a_connection_never_asks(
    psycopg2_engine: Engine, engine: Engine, inliner: list[bool]
) -> None:
    query, params = "SELECT :n AS n, :s AS s, :d AS d", {"n": 2**40, "s": "it's", "d": datetime.date(2024, 2, 29)}
    inlined = frames.read_frame(query, engine, params)
    assert inliner == [True]
    assert_same(frames.read_frame(query, psycopg2_engine, params), inlined)
    assert inliner == [True, False]
    for source in (engine, psycopg2_engine):
        with source.connect() as con:
            got = frames.read_frame(query, con, params)
        assert len(inliner) == 2  # the caller's Connection carries the rows itself, bound
        assert got.s.iloc[0] == "it's" and got.n.iloc[0] == 2**40 and got.d.iloc[0] == datetime.date(2024, 2, 29)


def test_an_engine_inside_no_transaction_is_left_as_it_was(engine: Engine, inliner: list[bool]) -> None:
    # A statement the server refuses to prepare goes bound, whose describe then says why: one line, and the
    # pooled connection is usable afterwards.
    with pytest.raises(FrameError, match="cannot read query .*nope"):
        frames.read_frame("SELECT * FROM nope WHERE x = :x", engine, {"x": 1})
    assert inliner == []  # the bound describe said why, before any row was asked for
    assert frames.read_frame("SELECT :x AS x", engine, {"x": 2**40}).x.iloc[0] == 2**40
    assert inliner == [True]
    with engine.connect() as con:
        assert con.exec_driver_sql("SELECT 1").scalar_one() == 1
