"""write_frame at its edges: the server's rounding and ranges, concurrent writers, sequences, raw errors, round trips.

Every expected value comes from the server itself (its casts, its input
functions), never from a number written here. Concurrent writers meet at
database locks the test holds, so they overlap for certain: no sleeps
decide anything, and there are no timing assertions.
"""

from __future__ import annotations

import decimal
import re
import threading
import time
import uuid
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from playlist_tools import frames
from playlist_tools.errors import FrameError
from playlist_tools.models import Base, Song

from helpers import same_rows, sql

D = decimal.Decimal
LISTED = [0.125, 1.005, 2.675, -0.125, 0.12499999999999999, 0.1 + 0.2, 99999999.99, -0.0, 1e-7]


def wait_until(check: Callable[[], bool]) -> None:
    """Poll the database until ``check`` holds: a condition, not a duration, decides."""
    deadline = time.monotonic() + 60
    while not check():
        assert time.monotonic() < deadline, "the writers never reached the lock"
        time.sleep(0.02)


def waiting(engine: Engine) -> int:
    """Sessions on this database waiting for a lock."""
    return sql(engine, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                       "WHERE NOT l.granted AND a.datname = current_database()")[0][0]


# -- 1. floats into numeric: PostgreSQL's own float8 -> numeric cast --------------------------------


def test_floats_into_numeric_round_as_the_server_casts_them(engine: Engine) -> None:
    rng = np.random.default_rng(9)
    floats = np.concatenate([
        LISTED,
        rng.integers(-10**6, 10**6, 200) / 1000,  # three decimals: many exact halves of a cent
        rng.uniform(-1, 1, 200) * 10.0 ** rng.integers(-4, 7, 200),
        [x + 0.005 for x in rng.integers(0, 10**5, 100) / 100],
    ])
    sql(engine, "CREATE TABLE t (i int, p numeric(10, 2), q numeric(12, 4), r numeric, s numeric(9, -2), "
                "f numeric(10, 2)); CREATE TABLE ref (LIKE t)")
    singles = np.where(np.abs(floats) < 1e7, floats, 0).astype(np.float32)  # 99999999.99 is 1e8 as a float32
    hundreds = np.round(floats, -2)  # a negative scale takes exact multiples only: rounding away units is refused
    frame = pd.DataFrame({"i": range(len(floats)), "p": floats, "q": floats, "r": floats, "s": hundreds, "f": singles})
    assert frames.write_frame(frame, "t", engine) == len(floats)
    sql(engine, "INSERT INTO ref SELECT i - 1, x, x, x, h, y::float8 "
                "FROM unnest(%(x)s::float8[], %(y)s::float4[], %(h)s::float8[]) WITH ORDINALITY AS u(x, y, h, i)",
        {"x": floats.tolist(), "y": singles.tolist(), "h": hundreds.tolist()})
    same_rows(engine, "t", "ref")
    assert sql(engine, "SELECT p::text FROM t WHERE i < 4 ORDER BY i") == [
        tuple(row) for row in sql(engine, "SELECT x::float8::numeric(10, 2)::text FROM unnest(%(x)s::float8[]) x",
                                  {"x": LISTED[:4]})]


@pytest.mark.parametrize(("value", "column"), [
    (1e8, "p"), (-99999999.995, "p"), (99999999.995, "p"), (float("inf"), "p"), (float("-inf"), "p"), (1e7, "s"),
])
def test_floats_beyond_numeric_precision_are_refused_as_the_server_refuses_them(
    engine: Engine, value: float, column: str
) -> None:
    sql(engine, "CREATE TABLE t (p numeric(10, 2), s numeric(5, -2))")
    with pytest.raises(sa.exc.DBAPIError, match="numeric field overflow"):
        sql(engine, f"SELECT %(v)s::float8::{'numeric(10, 2)' if column == 'p' else 'numeric(5, -2)'}", {"v": value})
    message = f"column '{column}' has values that do not fit numeric.*\\({re.escape(repr(value))} (needs an abs|is inf)"
    with pytest.raises(FrameError, match=message) as err:
        frames.write_frame(pd.DataFrame({column: [100.0, value]}), "t", engine)
    assert "\n" not in str(err.value)
    assert sql(engine, "SELECT count(*) FROM t") == [(0,)]


def test_infinite_floats_go_into_an_unconstrained_numeric(engine: Engine) -> None:
    sql(engine, "CREATE TABLE t (i int, r numeric)")
    frames.write_frame(pd.DataFrame({"i": [1, 2, 3], "r": [np.inf, -np.inf, np.nan]}), "t", engine)
    assert sql(engine, "SELECT r::text FROM t ORDER BY i") == [("Infinity",), ("-Infinity",), (None,)]


# -- 2. floats into real --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1e39, -1e39, 1e-50, 3.5e38])
def test_floats_real_cannot_hold_are_refused(engine: Engine, value: float) -> None:
    sql(engine, "CREATE TABLE t (x real)")
    with pytest.raises(sa.exc.DBAPIError, match="out of range|overflow|underflow"):
        sql(engine, "SELECT %(v)s::float8::real", {"v": value})
    with pytest.raises(FrameError, match=re.escape(f"column 'x' value {value!r} is out of range for float4")):
        frames.write_frame(pd.DataFrame({"x": [1.0, value]}), "t", engine)
    assert sql(engine, "SELECT count(*) FROM t") == [(0,)]


def test_floats_real_can_hold_are_written_as_the_server_casts_them(engine: Engine) -> None:
    values = [np.inf, -np.inf, 1e-40, 3.4e38, 0.1, -2.5, None]
    sql(engine, "CREATE TABLE t (i int, x real, y double precision); CREATE TABLE ref (LIKE t)")
    frames.write_frame(pd.DataFrame({"i": range(7), "x": values, "y": values}), "t", engine)
    sql(engine, "INSERT INTO ref SELECT i - 1, v::real, v FROM unnest(%(v)s::float8[]) WITH ORDINALITY u(v, i)",
        {"v": values})
    same_rows(engine, "t", "ref")
    assert sql(engine, "SELECT x::text FROM t WHERE i < 2 ORDER BY i") == [("Infinity",), ("-Infinity",)]


# -- 3. Decimal NaN and Infinity --------------------------------------------------------------------------


def test_decimal_nan_and_infinity(engine: Engine) -> None:
    sql(engine, "CREATE TABLE t (i int, r numeric, p numeric(10, 2))")
    frame = pd.DataFrame({"i": range(5), "r": [D("NaN"), D("Infinity"), D("-Infinity"), D("2.50"), None],
                          "p": [D("NaN"), D("1"), None, D("-0.5"), D("NaN")]})
    frames.write_frame(frame, "t", engine)
    assert sql(engine, "SELECT r::text, p::text FROM t ORDER BY i") == [
        ("NaN", "NaN"), ("Infinity", "1.00"), ("-Infinity", None), ("2.50", "-0.50"), (None, "NaN")]
    with pytest.raises(sa.exc.DBAPIError, match="cannot hold an infinite value"):
        sql(engine, "SELECT 'Infinity'::numeric(10, 2)")
    with pytest.raises(FrameError, match=r"column 'p' .*Decimal\('Infinity'\) is infinite"):
        frames.write_frame(pd.DataFrame({"p": [D("Infinity")]}), "t", engine)
    with pytest.raises(FrameError, match=r"column 'p' .*Decimal\('0.125'\) has more than 2 decimal places"):
        frames.write_frame(pd.DataFrame({"p": [D("0.125")]}), "t", engine)


# -- 4. concurrent replace and fail -----------------------------------------------------------------------


def _writers_at_once(engine: Engine, if_exists: str, writers: int = 4, rows: int = 20_000) -> list[Exception | None]:
    """``writers`` threads, each on its own connection, write at once; all are inside their transactions
    (each COPY held by a trigger on an advisory lock the test holds, or queued behind the one that is)
    before any may finish."""
    sql(engine, """
        CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN PERFORM pg_advisory_xact_lock_shared(7); RETURN NULL; END $$;
        CREATE TRIGGER hold BEFORE INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION hold()""")
    outcome: list[Exception | None] = [None] * writers
    start = threading.Barrier(writers)

    def write(i: int) -> None:
        start.wait()
        try:
            frames.write_frame(pd.DataFrame({"writer": i, "n": range(rows)}), "t", engine, if_exists=if_exists)
        except FrameError as err:
            outcome[i] = err

    with engine.connect() as gate:
        gate.exec_driver_sql("SELECT pg_advisory_lock(7)")
        gate.commit()
        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting(engine) == writers)
        gate.exec_driver_sql("SELECT pg_advisory_unlock(7)")
        gate.commit()
        for thread in threads:
            thread.join()
    return outcome


def test_concurrent_replace_leaves_exactly_one_frame(engine: Engine) -> None:
    sql(engine, "CREATE TABLE t (writer int, n int); INSERT INTO t SELECT -1, g FROM generate_series(1, 10) g")
    assert _writers_at_once(engine, "replace") == [None] * 4
    assert sql(engine, "SELECT count(DISTINCT writer), count(*) FROM t") == [(1, 20_000)]
    assert sql(engine, "SELECT min(writer) >= 0 FROM t") == [(True,)]


def test_concurrent_fail_lets_exactly_one_writer_in(engine: Engine) -> None:
    sql(engine, "CREATE TABLE t (writer int, n int)")
    outcome = _writers_at_once(engine, "fail")
    assert sum(err is None for err in outcome) == 1
    for err in filter(None, outcome):
        assert "table t already has rows; pass if_exists='append' or 'replace'" == str(err)
    winner = outcome.index(None)
    assert sql(engine, "SELECT writer, count(*) FROM t GROUP BY writer") == [(winner, 20_000)]


# -- 5. sequences --------------------------------------------------------------------------------------


def test_explicit_ids_advance_their_sequences(engine: Engine) -> None:
    sql(engine, 'CREATE TABLE s (id serial PRIMARY KEY, x int); CREATE TABLE g (id bigint GENERATED ALWAYS AS '
                'IDENTITY PRIMARY KEY, x int); CREATE TABLE "Mixed" ("Id" serial PRIMARY KEY, x int)')
    for table in ("s", "g"):
        frames.write_frame(pd.DataFrame({"id": [3, 1, 2], "x": 0}), table, engine, overriding_system_value=table == "g")
        assert sql(engine, f"INSERT INTO {table} (x) VALUES (1) RETURNING id") == [(4,)]
    frames.write_frame(pd.DataFrame({"Id": [7], "x": [0]}), "Mixed", engine)
    assert sql(engine, 'INSERT INTO "Mixed" (x) VALUES (1) RETURNING "Id"') == [(8,)]
    sql(engine, "SELECT setval('s_id_seq', 100)")
    frames.write_frame(pd.DataFrame({"id": [50, -5], "x": 0}), "s", engine)  # behind the sequence: never backwards
    assert sql(engine, "INSERT INTO s (x) VALUES (1) RETURNING id") == [(101,)]
    assert frames.write_frame(pd.DataFrame({"id": pd.array([], dtype="Int32"), "x": []}), "s", engine) == 0


def test_the_orm_inserts_after_write_frame(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    frames.write_frame(pd.DataFrame({"song_id": [1, 2], "title": ["a", "b"]}), Song, engine)
    with Session(engine) as session:
        session.add(Song(title="new"))
        session.commit()
        assert sorted(session.scalars(sa.select(Song.song_id))) == [1, 2, 3]


# -- 6. raw errors become one line --------------------------------------------------------------------------


def test_a_lone_surrogate_names_the_column_and_value(engine: Engine) -> None:
    sql(engine, "CREATE TABLE t (s text)")
    with pytest.raises(FrameError, match=r"column 's' value 'bad\\udc80' holds '\\udc80', a lone surrogate") as err:
        frames.write_frame(pd.DataFrame({"s": pd.Series(["ok", "bad\udc80"], dtype=object)}), "t", engine)
    assert "\n" not in str(err.value)


def test_ints_beyond_64_bits(engine: Engine) -> None:
    sql(engine, "CREATE TABLE t (b bigint, n numeric)")
    with pytest.raises(FrameError, match=f"column 'b' has values that do not fit 64 bits \\(e.g. {2**70}\\)"):
        frames.write_frame(pd.DataFrame({"b": pd.Series([1, 2**70], dtype=object)}), "t", engine)
    frames.write_frame(pd.DataFrame({"n": pd.Series([1, -(2**70)], dtype=object)}), "t", engine)
    assert sql(engine, "SELECT count(*) FROM t WHERE n IN (1, -1180591620717411303424)") == [(2,)]


def test_a_lost_connection_is_one_line_and_writes_nothing(engine: Engine) -> None:
    sql(engine, """
        CREATE TABLE t (i int);
        CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN IF NEW.i = 1000 THEN PERFORM pg_advisory_xact_lock_shared(8); END IF; RETURN NEW; END $$;
        CREATE TRIGGER hold BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION hold()""")
    caught: list[BaseException] = []

    def write() -> None:
        try:
            frames.write_frame(pd.DataFrame({"i": range(100_000)}), "t", engine)
        except BaseException as err:  # noqa: BLE001 - whatever it is, the test looks at it
            caught.append(err)

    with engine.connect() as gate:
        gate.exec_driver_sql("SELECT pg_advisory_lock(8)")
        writer = threading.Thread(target=write)
        writer.start()
        wait_until(lambda: waiting(engine) == 1)  # the writer, stopped in the middle of its COPY
        gate.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                             "AND NOT granted")
        writer.join()
        gate.exec_driver_sql("SELECT pg_advisory_unlock_all()")
    [err] = caught
    assert isinstance(err, FrameError), repr(err)
    assert "writing 100000 rows to t failed: the connection was lost" in str(err)
    assert str(err).endswith("nothing was written: write again") and "\n" not in str(err)
    assert sql(engine, "SELECT count(*) FROM t") == [(0,)]


# -- 7. what read_frame gives back, written back ---------------------------------------------------------


ROUND_TRIPS = {
    "numeric": ["'NaN'", "'Infinity'", "'-Infinity'", "'1.50'", "'-123456789012345678901234567890.123456789'"],
    "numeric(50, 10)": ["12345678901234567890.0123456789", "-1"],
    "numeric(5, -2)": ["12300", "-100"],
    "bytea": ["'\\x00ff'", "''"],
    "interval": ["'1 year 2 mons 3 days 04:05:06.789'", "'-1 mon +3 days'", "'24:00:00'"],
    "uuid": ["'b366941e-4729-4203-989c-f47881770b66'"],
    "json": ["'{\"a\": [1, 2],  \"b\": null}'", "'\"text\"'"],
    "jsonb": ["'{\"a\": [1, 2.50]}'", "'[1, \"x\"]'"],
    "integer[]": ["'{{1,2},{3,NULL}}'", "'{}'"],
    "text[]": ["'{\"a,b\",\"q\\\"x\",NULL,\"NULL\",\"\"}'"],
    "mood": ["'happy'", "'sad'"],
    "posint": ["5"],
    "price": ["0.99", "'1.50'"],
}


@pytest.mark.parametrize("pg_type", ROUND_TRIPS)
def test_what_read_frame_gives_writes_back(engine: Engine, pg_type: str) -> None:
    sql(engine, "CREATE TYPE mood AS ENUM ('sad', 'happy'); CREATE DOMAIN posint AS int CHECK (VALUE > 0); "
                "CREATE DOMAIN price AS numeric(10, 2)")
    sql(engine, f"CREATE TABLE src (i int, v {pg_type}); CREATE TABLE dst (LIKE src)")
    values = ", ".join(f"({i}, {v})" for i, v in enumerate([*ROUND_TRIPS[pg_type], "NULL"]))
    sql(engine, f"INSERT INTO src VALUES {values}")
    frames.write_frame(frames.read_frame("src", engine), "dst", engine)
    same_rows(engine, "src", "dst", "i, v::text")  # text: json has no equality, and text is stricter


def test_python_values_of_text_types(engine: Engine) -> None:
    sql(engine, "CREATE TYPE mood AS ENUM ('sad', 'happy'); CREATE TABLE t (i int, b bytea, iv interval, u uuid, "
                "j jsonb, a int[], t text[], m mood); CREATE TABLE ref (LIKE t)")
    key = uuid.UUID("b366941e-4729-4203-989c-f47881770b66")
    frame = pd.DataFrame({
        "i": [0, 1, 2],
        "b": [b"\x00\xff", b"", None],
        "iv": pd.to_timedelta(["1 days 02:00:00.000001", "-1 hours", None]),
        "u": [key, None, str(key)],
        "j": [{"a": [1, 2.5], "b": None}, [1, "x"], None],
        "a": [[[1, 2], [3, None]], [], None],
        "t": [["a,b", 'q"x', None, "NULL", "\\"], ["é"], None],
        "m": pd.Categorical(["happy", "sad", None]),
    })
    frames.write_frame(frame, "t", engine)
    sql(engine, f"""INSERT INTO ref VALUES
        (0, '\\x00ff', '1 day 02:00:00.000001', '{key}', '{{"a": [1, 2.5], "b": null}}', '{{{{1,2}},{{3,NULL}}}}',
         ARRAY['a,b', 'q"x', NULL, 'NULL', '\\'], 'happy'),
        (1, '', '-01:00:00', NULL, '[1, "x"]', '{{}}', ARRAY['é'], 'sad'),
        (2, NULL, NULL, '{key}', NULL, NULL, NULL, NULL)""")
    same_rows(engine, "t", "ref", "i, b, iv::text, u, j, a, t, m")


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"b": [1]}), "column 'b' value '1' cannot go into bytea: not bytes; give bytes"),
    (pd.DataFrame({"iv": [1.5]}), "column 'iv' value '1.5' cannot go into interval: not a timedelta; give timedelta64"),
    (pd.DataFrame({"iv": pd.to_timedelta(["1ns"])}), "column 'iv' .*: nanoseconds are finer than interval's"),
    (pd.DataFrame({"a": [7]}), r"column 'a' value '7' cannot go into int4\[\]: not a list; give lists"),
    (pd.DataFrame({"j": [{"x": float("nan")}]}), "column 'j' value .* cannot go into jsonb: Out of range float"),
    (pd.DataFrame({"u": [3]}), "column 'u' value '3' cannot go into uuid: not a UUID; give uuid.UUID values"),
])
def test_wrong_values_for_text_types_get_advice_for_the_type(engine: Engine, frame: pd.DataFrame, message: str) -> None:
    sql(engine, "CREATE TABLE t (b bytea, iv interval, u uuid, j jsonb, a int[])")
    with pytest.raises(FrameError, match=message) as err:
        frames.write_frame(frame, "t", engine)
    assert "convert it first" not in str(err.value)
