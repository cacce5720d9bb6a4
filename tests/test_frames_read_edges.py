"""frames, the read side's edges (issue 9): dates and timestamps pandas cannot hold, the engine's own
settings, passwords of any characters, and bad sizes, paths and SQL text, each one line.

Every read that can go both ways is checked on both: an Engine (ADBC) and a Connection (psycopg).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, frames
from playlist_tools.errors import DatabaseUnavailableError, FrameError

# The password a driver session carries: no public path exposes the session conninfo.
from playlist_tools.frames import _driver

Read = Callable[..., pd.DataFrame]
PASSWORD = "p a:s@s/w%o'rd\\#?"  # every character a URL or a conninfo must escape


@pytest.fixture(params=["engine", "connection"])
def read(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Read]:
    """read_frame over the engine (ADBC) or over a caller's Connection (psycopg)."""
    if request.param == "engine":
        yield lambda query, params=None: frames.read_frame(query, engine, params)
        return
    with engine.connect() as con:
        yield lambda query, params=None: frames.read_frame(query, con, params)


@pytest.fixture
def role(engine: Engine) -> Iterator[str]:
    """A login role with a password of every awkward character, dropped afterwards (roles are server-wide)."""
    name = f"pt_reader_{uuid.uuid4().hex[:8]}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
        literal = PASSWORD.replace("'", "''").replace("%", "%%")  # %%: exec_driver_sql's pyformat
        try:
            con.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD '{literal}'")
        except sa.exc.ProgrammingError as err:
            if not isinstance(err.orig, psycopg.errors.InsufficientPrivilege):
                raise
            pytest.skip("the server's user may not create roles")
        con.exec_driver_sql(f"GRANT {name} TO current_user")
    yield name
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
        con.exec_driver_sql(f"DROP OWNED BY {name}; DROP ROLE {name}")


# -- 1, 2: dates and timestamps outside years 1 to 9999 ------------------------------------------


@pytest.mark.parametrize(("sql", "shown"), [
    ("'infinity'::timestamp", "timestamp 'infinity'"),
    ("'-infinity'::timestamp", "timestamp '-infinity'"),
    ("'infinity'::timestamptz", "timestamptz 'infinity'"),
    ("'-infinity'::timestamptz", "timestamptz '-infinity'"),
    ("'10000-01-01 00:00:00.5'::timestamp", "timestamp '10000-01-01 00:00:00.5'"),
    ("'294276-12-31 23:59:59'::timestamp", "timestamp '294276-12-31 23:59:59'"),  # ADBC wraps it to year -290278
    ("'0001-12-31 23:00:00 BC'::timestamptz", "timestamptz '0001-12-31 23:00:00+00 BC'"),
    ("'infinity'::date", "date 'infinity'"),
    ("'-infinity'::date", "date '-infinity'"),
    ("'0044-03-15 BC'::date", "date '0044-03-15 BC'"),
    ("'10000-01-01'::date", "date '10000-01-01'"),
])
def test_dates_pandas_cannot_hold_are_one_clear_error(read: Read, sql: str, shown: str) -> None:
    query = f"SELECT 1 AS n, v FROM (VALUES ('2024-01-01'::timestamp), ({sql})) AS r(v)"
    with pytest.raises(FrameError) as caught:
        read(query.replace("'2024-01-01'::timestamp", f"CAST('2024-01-01' AS {sql.split('::')[1]})"))
    message = str(caught.value)
    assert message.startswith(f"column 'v' has {shown}, which pandas cannot hold") and "\n" not in message
    assert "CASE WHEN isfinite(v)" in message if "infinity" in shown else "v::text" in message


def test_years_1_to_9999_read_exactly_and_the_rest_is_refused(read: Read) -> None:
    first, last = "'0001-01-01'", "'9999-12-31 23:59:59.999999'"
    frame = read(f"SELECT {first}::date AS d0, {last}::date AS d1, {first}::timestamp AS t0, "
                 f"{last}::timestamptz AS t1, NULL::date AS n, 'infinity'::timestamp::text AS s")
    assert frame.iloc[0].tolist()[:4] == [pd.Timestamp("0001-01-01").date(), pd.Timestamp("9999-12-31").date(),
                                         pd.Timestamp("0001-01-01"), pd.Timestamp("9999-12-31 23:59:59.999999Z")]
    assert frame.n.isna().all() and frame.s[0] == "infinity"  # the fix the message proposes works
    assert "0001-01-01" in str(frame)
    with pytest.raises(FrameError, match=r"^column 'v' has date '0001-12-31 BC', which pandas cannot hold"):
        read("SELECT d AS v FROM (VALUES (DATE '0001-01-01'), (DATE '0001-12-31 BC')) AS r(d)")  # one day too early


def test_to_parquet_refuses_infinity_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(FrameError, match="column 'v' has timestamp 'infinity'"):
        frames.to_parquet("SELECT 'infinity'::timestamp AS v", tmp_path / "v.parquet", engine)
    assert list(tmp_path.iterdir()) == []


def test_a_late_infinity_in_a_table_read_in_parallel(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with engine.begin() as con:
        con.exec_driver_sql("CREATE TABLE days AS SELECT current_date + i AS d FROM generate_series(1, 5000) i")
        con.exec_driver_sql("INSERT INTO days VALUES ('infinity')")
    monkeypatch.setattr("playlist_tools.frames._read._PARALLEL_MIN_PAGES", 0)
    with pytest.raises(FrameError, match="column 'd' has date 'infinity'"):
        frames.read_frame("days", engine, parallel=2)


# -- 3: the engine's own settings ----------------------------------------------------------------


@pytest.fixture
def two_schemas(engine: Engine) -> Engine:
    """public.t holds 'public', s2.t holds 's2' (s2.t with one more row, so even a table read tells)."""
    with engine.begin() as con:
        con.exec_driver_sql("CREATE TABLE public.t (w text); INSERT INTO public.t VALUES ('public')")
        con.exec_driver_sql("CREATE SCHEMA s2; CREATE TABLE s2.t (w text); INSERT INTO s2.t VALUES ('s2'), ('s2')")
    return engine


def test_reads_follow_the_engines_connect_args(two_schemas: Engine, database_url: URL, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"options": "-c search_path=s2 -c statement_timeout=4321", "application_name": "my notebook"}
    engine = db.create_engine(database_url, connect_args=options)
    try:
        assert frames.read_frame("t", engine).w.tolist() == ["s2", "s2"]
        assert frames.read_frame("SELECT w FROM t", engine).w.tolist() == ["s2", "s2"]
        settings = frames.read_frame("SELECT current_setting('statement_timeout') AS st, "
                                     "current_setting('application_name') AS app", engine)
        assert settings.iloc[0].tolist() == ["4321ms", "my notebook"]
        assert frames.to_parquet("t", tmp_path / "t.parquet", engine) == 2
        monkeypatch.setattr("playlist_tools.frames._read._PARALLEL_MIN_PAGES", 0)
        assert frames.read_frame("t", engine, parallel=2).w.tolist() == ["s2", "s2"]
        assert [len(c) for c in frames.read_frame("t", engine, chunksize=1)] == [1, 1]
    finally:
        engine.dispose()


def test_reads_follow_the_engines_listeners(two_schemas: Engine, database_url: URL, role: str) -> None:
    with two_schemas.begin() as con:
        con.exec_driver_sql(f"GRANT USAGE ON SCHEMA s2 TO {role}; GRANT SELECT ON s2.t TO {role}")
    engine = db.create_engine(database_url)  # a new one: the listener must see its first connection

    @sa.event.listens_for(engine, "connect")
    def _session(dbapi_connection: psycopg.Connection, _: object) -> None:
        dbapi_connection.autocommit = True
        dbapi_connection.execute(f"SET search_path = s2, 'a b'; SET ROLE {role}; SET TIME ZONE 'Asia/Kolkata'")
        dbapi_connection.autocommit = False

    try:
        seen = frames.read_frame("SELECT current_user AS who, current_setting('search_path') AS path, "
                                 "current_setting('TimeZone') AS tz, (SELECT count(*) FROM t) AS n", engine)
        with engine.connect() as con:
            own = con.exec_driver_sql("SELECT current_user, current_setting('search_path'), "
                                      "current_setting('TimeZone'), (SELECT count(*) FROM t)").one()
        assert seen.iloc[0].tolist() == list(own) == [role, 's2, "a b"', "Asia/Kolkata", 2]
    finally:
        engine.dispose()


def test_a_password_given_only_in_connect_args_reaches_adbc(database_url: URL, role: str) -> None:
    engine = db.create_engine(database_url.set(username=role, password=None), connect_args={"password": PASSWORD})
    try:
        assert frames.read_frame("SELECT current_user AS u", engine).u[0] == role
        with engine.connect() as con:  # the server may trust the socket, so look at what ADBC is given too
            assert conninfo_to_dict(_driver.session_conninfo(_driver.driver(con)))["password"] == PASSWORD
    finally:
        engine.dispose()


def test_any_password_in_a_url_works_and_is_never_shown(database_url: URL, role: str, tmp_path: Path) -> None:
    url = database_url.set(username=role, password=PASSWORD)
    text = url.render_as_string(hide_password=False).replace("p a", "p%20a")  # percent-encoded, as users write it
    for con in (url, text):
        assert frames.read_frame("SELECT current_user AS u", con).u[0] == role
    assert frames.to_parquet("SELECT 1 AS x", tmp_path / "x.parquet", text) == 1
    closed = "postgresql://ann:se%20cret%27x@127.0.0.1:1/music"
    with pytest.raises(DatabaseUnavailableError) as caught:
        frames.read_frame("SELECT 1", closed)
    assert "se cret" not in str(caught.value) and "se%20cret" not in str(caught.value)
    assert "ann:***@127.0.0.1:1/music" in str(caught.value)


# -- 4: bad input, one line each -----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "100", None])
def test_bad_sizes(engine: Engine, tmp_path: Path, size: object) -> None:
    if size is not None:
        with pytest.raises(FrameError, match=rf"chunksize={size!r} must be a whole number of rows, 1 or more"):
            frames.read_frame("SELECT 1 AS x", engine, chunksize=size)  # type: ignore[arg-type]
    if size is not None and size is not True:
        with pytest.raises(FrameError, match=rf"parallel={size!r} must be a whole number of connections"):
            frames.read_frame("SELECT 1 AS x", engine, parallel=size)  # type: ignore[arg-type]
    with pytest.raises(FrameError, match=rf"batch_rows={size!r} must be a whole number of rows"):
        frames.to_parquet("SELECT 1 AS x", tmp_path / "x.parquet", engine, batch_rows=size)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_parquet_targets_that_cannot_be(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(FrameError, match=r"folder '.*nowhere' does not exist; create it first"):
        frames.to_parquet("SELECT 1 AS x", tmp_path / "nowhere" / "x.parquet", engine)
    with pytest.raises(FrameError, match="it is a folder; name a file in it"):
        frames.to_parquet("SELECT 1 AS x", tmp_path, engine)
    mine = tmp_path / "x.parquet.partial"
    mine.write_text("not ours to delete")
    assert frames.to_parquet("SELECT 1 AS x", tmp_path / "x.parquet", engine) == 1
    assert mine.read_text() == "not ours to delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet", "x.parquet.partial"]


def test_one_trailing_semicolon_is_dropped(read: Read) -> None:
    for query in ("SELECT 7 AS x;", "SELECT 7 AS x ;\n\n", "SELECT 7 AS x; -- psql", "SELECT 7 AS x /* a */ ; /* b */"):
        assert read(query).x.tolist() == [7]
    for query in ("SELECT 1 AS x;;", "SELECT 1 AS x; SELECT 2 AS x", "SELECT ';' AS x; ;"):
        with pytest.raises(FrameError, match="cannot read query"):  # still one statement only
            read(query)


def test_colons_in_literals_and_comments_are_no_placeholders(read: Read) -> None:
    query = """SELECT ':b' AS a, $$:b$$ AS b, $t$:b 'x'$t$ AS c, E'\\':b' AS d, 1 AS "e:b", 'a::b' AS f,
               :b AS g -- :c
               /* :d /* :e */ :f */"""
    frame = read(query, {"b": "value"})
    assert frame.iloc[0].tolist() == [":b", ":b", ":b 'x'", "':b", 1, "a::b", "value"]
    assert read("SELECT ':b' AS x").x[0] == ":b"  # no params needed at all


def test_messages_never_echo_a_long_value(read: Read, engine: Engine) -> None:
    with pytest.raises(FrameError) as caught:
        read("SELECT CAST(:t AS int) AS n", {"t": "x" * 5000})
    assert "x" * 81 not in str(caught.value) and "invalid input syntax for type integer" in str(caught.value)
    with pytest.raises(FrameError) as caught:
        frames.read_frame(list(range(10_000)), engine)  # type: ignore[arg-type]
    assert len(str(caught.value)) < 200
    with pytest.raises(FrameError, match=r"params=\[1, 2\] must map placeholder names to values"):
        frames.read_frame("SELECT 1 AS x", engine, [1, 2])  # type: ignore[arg-type]


def test_an_int_beyond_bigint_is_sent_as_numeric_on_both_paths(engine: Engine) -> None:
    query, params = "SELECT CAST(:n AS numeric) AS n, :n + 1 AS m", {"n": 2**70}
    with engine.connect() as con:
        assert frames.read_frame(query, con, params).iloc[0].tolist() == [2**70, 2**70 + 1]  # psycopg: numeric
    assert frames.read_frame(query, engine, params).iloc[0].tolist() == [2**70, 2**70 + 1]
