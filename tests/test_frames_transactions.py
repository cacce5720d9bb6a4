"""Transactions as SQLAlchemy 2 users expect, chunks that never hold the connection, and a failed write's reason.

On a caller's Connection, read_frame and write_frame join its transaction
(begun as SQLAlchemy's autobegin would) and the caller commits; an Engine
or a URL is one transaction per call. Both drivers, psycopg 3 and psycopg2.
A read that once hung forever runs in a subprocess with a deadline, so the
suite cannot hang.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from playlist_tools import frames
from playlist_tools.errors import FrameError

DRIVERS = ["postgresql+psycopg", "postgresql+psycopg2"]


@pytest.fixture(params=DRIVERS)
def any_engine(request: pytest.FixtureRequest, database_url: URL) -> Iterator[Engine]:
    engine = sa.create_engine(database_url.set(drivername=request.param))
    with engine.begin() as con:
        con.exec_driver_sql("CREATE TABLE t (id int PRIMARY KEY, x text NOT NULL)")
        con.exec_driver_sql("INSERT INTO t SELECT g, 'old' FROM generate_series(1, 10) AS g")
    yield engine
    engine.dispose()


def within_deadline(body: Callable[[], None], seconds: float = 60) -> None:
    """Run ``body`` in a thread of its own and fail if it has not finished by the deadline: a hang fails the test
    instead of stalling the suite (the stuck thread is a daemon; the database's drop ends its session)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            body()
        except BaseException as err:  # handed to the test's own thread
            failure.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: blocked"
    if failure:
        raise failure[0]


def rows(engine: Engine) -> list[tuple]:
    """What another session sees: a connection of its own."""
    with engine.connect() as other:
        return [tuple(r) for r in other.exec_driver_sql("SELECT id, x FROM t ORDER BY id")]


NEW = pd.DataFrame({"id": [99], "x": ["new"]})


@pytest.mark.parametrize("if_exists", ["append", "replace"])
def test_write_on_a_connection_is_the_callers_to_commit_or_roll_back(any_engine: Engine, if_exists: str) -> None:
    before = rows(any_engine)
    with any_engine.connect() as con:
        frames.write_frame(NEW, "t", con, if_exists=if_exists)
        assert con.in_transaction()
        assert rows(any_engine) == before  # no other session sees the rows before the commit
        assert (99, "new") in [tuple(r) for r in con.exec_driver_sql("SELECT id, x FROM t")]
        con.rollback()
    assert rows(any_engine) == before
    with any_engine.connect() as con:
        frames.write_frame(NEW, "t", con, if_exists=if_exists)
        con.commit()
    assert (99, "new") in rows(any_engine)


def test_write_in_a_begun_transaction_and_a_failed_write_keep_it(any_engine: Engine) -> None:
    with any_engine.begin() as con:
        con.exec_driver_sql("UPDATE t SET x = 'mine' WHERE id = 1")
        with pytest.raises(FrameError, match="already exists"):
            frames.write_frame(pd.DataFrame({"id": [2], "x": ["dup"]}), "t", con)
        frames.write_frame(NEW, "t", con)
    assert rows(any_engine)[0] == (1, "mine") and (99, "new") in rows(any_engine)


def test_read_on_a_connection_joins_its_transaction(any_engine: Engine) -> None:
    def body() -> None:
        with any_engine.connect() as con:
            read = frames.read_frame("SELECT pg_current_xact_id()::text AS xact", con).xact[0]
            assert con.in_transaction()
            assert con.exec_driver_sql("SELECT pg_current_xact_id()::text").scalar_one() == read
            chunks = frames.read_frame("SELECT pg_current_xact_id()::text AS xact", con, chunksize=1)
            assert next(chunks).xact[0] == read
            con.rollback()

    within_deadline(body)


def test_engine_and_url_are_one_transaction_per_call(any_engine: Engine) -> None:
    frames.write_frame(NEW, "t", any_engine)
    assert (99, "new") in rows(any_engine)
    frames.write_frame(pd.DataFrame({"id": [100], "x": ["url"]}), "t", any_engine.url)
    assert (100, "url") in rows(any_engine)


def test_autocommit_connection_gets_a_transaction_per_call(any_engine: Engine) -> None:
    with any_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
        with pytest.raises(FrameError, match="already exists"):  # all or nothing: 99 is not left behind
            frames.write_frame(pd.DataFrame({"id": [99, 1], "x": ["a", "b"]}), "t", con)
        frames.write_frame(NEW, "t", con)
    assert rows(any_engine)[-1] == (99, "new") and len(rows(any_engine)) == 11


# -- chunks -----------------------------------------------------------------------------------------

_CHUNKS_THEN_A_STATEMENT = """
import sqlalchemy as sa
from playlist_tools import frames
engine = sa.create_engine({url!r})
with engine.connect() as con:
    chunks = frames.read_frame("SELECT id FROM t ORDER BY id", con, chunksize=3)
    first = next(chunks)
    between = con.exec_driver_sql("SELECT count(*) FROM t").scalar_one()
    rest = [len(chunk) for chunk in chunks]
    print(first.id.tolist(), between, rest)
engine.dispose()
"""


def test_a_statement_between_chunks_does_not_hang(any_engine: Engine) -> None:
    url = any_engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_CHUNKS_THEN_A_STATEMENT.format(url=url))],
                          capture_output=True, text=True, timeout=60, check=False)  # a hang is a failure, not a stall
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[1, 2, 3] 10 [3, 3, 1]"


def test_the_iterator_owns_its_cursor_until_closed(any_engine: Engine) -> None:
    def body() -> None:
        with any_engine.connect() as con:
            chunks = frames.read_frame("SELECT id FROM t ORDER BY id", con, chunksize=4)
            assert next(chunks).id.tolist() == [1, 2, 3, 4]
            con.exec_driver_sql("UPDATE t SET x = 'between' WHERE id = 1")  # the connection is the caller's meanwhile
            assert con.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 1
            chunks.close()
            assert con.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 0
            assert con.exec_driver_sql("SELECT x FROM t WHERE id = 1").scalar_one() == "between"  # nothing undone
            con.rollback()

    within_deadline(body)


def test_ending_the_transaction_between_chunks_is_one_clear_error(any_engine: Engine) -> None:
    def body() -> None:
        with any_engine.connect() as con:
            chunks = frames.read_frame("SELECT id FROM t ORDER BY id", con, chunksize=4)
            next(chunks)
            con.commit()
            with pytest.raises(FrameError, match="ended with the transaction it was opened in"):
                next(chunks)
            assert con.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 10  # the connection still works

    within_deadline(body)


def test_chunks_on_an_autocommit_connection(any_engine: Engine) -> None:
    def body() -> None:
        with any_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
            chunks = frames.read_frame("SELECT id FROM t ORDER BY id", con, chunksize=4)
            assert next(chunks).id.tolist() == [1, 2, 3, 4]
            assert con.exec_driver_sql("SELECT 1").scalar_one() == 1
            assert [len(chunk) for chunk in chunks] == [4, 2]
            assert con.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 0

    within_deadline(body)


def test_a_failing_chunked_query_leaves_the_transaction_usable(any_engine: Engine) -> None:
    def body() -> None:
        with any_engine.connect() as con:
            con.exec_driver_sql("UPDATE t SET x = 'kept' WHERE id = 1")
            chunks = frames.read_frame("SELECT 1 / (id - 5) AS q FROM t ORDER BY id", con, chunksize=2)
            with pytest.raises(FrameError, match="division by zero"):
                list(chunks)
            assert con.exec_driver_sql("SELECT x FROM t WHERE id = 1").scalar_one() == "kept"
            con.commit()

    within_deadline(body)


# -- a failed write through a URL says why ------------------------------------------------------------


@pytest.mark.parametrize(("df", "table", "reason"), [
    (pd.DataFrame({"id": ["one"], "x": ["a"]}), "t", "column 'id' is str but int4"),
    (pd.DataFrame({"id": [50], "x": [None]}), "t", "column 'x' has 1 NULL"),
    (pd.DataFrame({"id": [50], "x": ["a"], "y": [1]}), "t", r"columns \['y'\] are not in t"),
    (pd.DataFrame({"id": [50]}), "nope", "table nope does not exist"),
    (pd.DataFrame({"id": [1], "x": ["a"]}), "t", "duplicate key value"),
])
@pytest.mark.parametrize("how", ["url", "default"])
def test_a_failed_write_through_a_url_says_the_reason(
    any_engine: Engine, df: pd.DataFrame, table: str, reason: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = any_engine.url.render_as_string(hide_password=False)
    if how == "default":
        monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(FrameError, match=reason) as failed:
        frames.write_frame(df, table, url if how == "url" else None)
    assert "connection was lost" not in str(failed.value)
    assert len(rows(any_engine)) == 10
