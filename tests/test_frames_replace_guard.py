"""write_frame never destroys or duplicates what the caller did not name: replace's cascades, identity ALWAYS.

``if_exists="replace"`` deletes the table's rows; through other tables'
foreign keys (``ON DELETE CASCADE``, ``SET NULL``, ``SET DEFAULT``) that
delete would reach rows the caller never named. It is refused, naming
each table and its row count, unless ``allow_data_loss=True``. Every count
expected here is the server's own, taken before the write.
"""

from __future__ import annotations

import uuid

import pandas as pd
import psycopg
import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from playlist_tools import frames
from playlist_tools.errors import FrameError
from playlist_tools.models import Base


def sql(engine: Engine, statement: str) -> list[tuple]:
    """Run SQL through the driver itself, without parameters, so that a ``%`` in it is a ``%``."""
    with engine.begin() as con:
        cursor = con.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(statement)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


@pytest.fixture
def music(engine: Engine) -> Engine:
    """The models' tables: 3 playlists, 4 songs, 5 entries (playlist_song_association cascades from playlists)."""
    Base.metadata.create_all(engine)
    sql(engine, "INSERT INTO playlists (playlist_id, title) VALUES (1, 'Rock'), (2, 'Jazz'), (3, 'Empty');"
                "INSERT INTO songs (song_id, title) SELECT g, 'song ' || g FROM generate_series(1, 4) AS g;"
                "INSERT INTO playlist_song_association (playlist_id, song_id) "
                "VALUES (1, 1), (1, 2), (1, 3), (2, 3), (2, 4)")
    return engine


def test_replace_refuses_to_cascade_into_playlist_entries(music: Engine) -> None:
    playlists = frames.read_frame("SELECT * FROM playlists ORDER BY playlist_id", music)
    playlists.loc[0, "description"] = "edited"
    cascade = r"delete 5 rows of playlist_song_association \(ON DELETE CASCADE.*allow_data_loss=True"
    with pytest.raises(FrameError, match=cascade):
        frames.write_frame(playlists, "playlists", music, if_exists="replace")
    assert sql(music, "SELECT count(*) FROM playlist_song_association") == [(5,)]
    assert sql(music, "SELECT description FROM playlists WHERE playlist_id = 1") == [(None,)]


def test_replace_with_consent_cascades(music: Engine) -> None:
    playlists = frames.read_frame("SELECT * FROM playlists ORDER BY playlist_id", music)
    frames.write_frame(playlists, "playlists", music, if_exists="replace", allow_data_loss=True)
    assert sql(music, "SELECT count(*) FROM playlist_song_association") == [(0,)]
    assert sql(music, "SELECT count(*) FROM playlists") == [(3,)]


def test_replace_goes_ahead_when_nothing_references_the_rows(music: Engine) -> None:
    sql(music, "DELETE FROM playlist_song_association")
    frames.write_frame(pd.DataFrame({"playlist_id": [7], "title": ["New"]}), "playlists", music, if_exists="replace")
    assert sql(music, "SELECT playlist_id FROM playlists") == [(7,)]


def test_replace_follows_cascades_down_and_counts_set_null(engine: Engine) -> None:
    sql(engine, """
        CREATE TABLE a (id int PRIMARY KEY);
        CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a ON DELETE CASCADE);
        CREATE TABLE c (id int, b_id int REFERENCES b ON DELETE CASCADE);
        CREATE TABLE d (id int, a_id int REFERENCES a ON DELETE SET NULL);
        CREATE TABLE "Odd %s" (b_id int REFERENCES b ON DELETE SET DEFAULT);
        INSERT INTO a VALUES (1), (2);
        INSERT INTO b VALUES (10, 1), (11, 2), (12, NULL);
        INSERT INTO c VALUES (1, 10), (2, 10), (3, 12), (4, NULL);
        INSERT INTO d VALUES (1, 2), (2, NULL);
        INSERT INTO "Odd %s" VALUES (11), (12)""")
    with pytest.raises(FrameError) as refused:
        frames.write_frame(pd.DataFrame({"id": [1]}), "a", engine, if_exists="replace")
    message = str(refused.value)
    assert "\n" not in message
    # b: the 2 rows referencing a; c: only the 2 rows referencing those (b 12 has no a); d: 1 row set to NULL
    for effect in ("delete 2 rows of b (ON DELETE CASCADE", "delete 2 rows of c (ON DELETE CASCADE",
                   "set to NULL 1 rows of d (ON DELETE SET NULL", 'set to their default 1 rows of "Odd %s"'):
        assert effect in message
    assert sql(engine, "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b), (SELECT count(*) FROM c)") == [
        (2, 3, 4)]


def test_replace_through_a_callers_connection_leaves_its_transaction_usable(music: Engine) -> None:
    with music.connect() as con:
        con.exec_driver_sql("UPDATE songs SET title = 'kept' WHERE song_id = 1")
        with pytest.raises(FrameError, match="playlist_song_association"):
            frames.write_frame(pd.DataFrame({"playlist_id": [9], "title": ["x"]}), "playlists", con,
                               if_exists="replace")
        con.commit()
    assert sql(music, "SELECT title FROM songs WHERE song_id = 1") == [("kept",)]
    assert sql(music, "SELECT count(*) FROM playlist_song_association") == [(5,)]


def test_replace_of_restricted_rows_says_why(music: Engine) -> None:
    songs = frames.read_frame("songs", music)
    still_referenced = r"cannot delete the rows of songs: .*(RESTRICT|foreign key).*if_exists='append'"  # 15 and 18
    with pytest.raises(FrameError, match=still_referenced):
        frames.write_frame(songs, "songs", music, if_exists="replace", allow_data_loss=True)
    assert sql(music, "SELECT count(*) FROM songs") == [(4,)]


# -- identity ALWAYS -------------------------------------------------------------------------------


@pytest.fixture
def always(engine: Engine) -> Engine:
    sql(engine, "CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY, x text); INSERT INTO t (x) VALUES ('a'), ('b')")
    return engine


def test_identity_always_column_is_refused(always: Engine) -> None:
    with pytest.raises(FrameError, match=r"column 'id' is GENERATED ALWAYS AS IDENTITY.*df.drop\(columns='id'\)"):
        frames.write_frame(pd.DataFrame({"id": [1], "x": ["dup"]}), "t", always)
    assert sql(always, "SELECT id, x FROM t ORDER BY id") == [(1, "a"), (2, "b")]
    frames.write_frame(pd.DataFrame({"x": ["numbered"]}), "t", always)  # the advised fix works
    assert sql(always, "SELECT id FROM t WHERE x = 'numbered'") == [(3,)]


def test_identity_always_with_overriding_system_value(always: Engine) -> None:
    frames.write_frame(pd.DataFrame({"id": [10], "x": ["mine"]}), "t", always, overriding_system_value=True)
    assert sql(always, "SELECT id FROM t WHERE x = 'mine'") == [(10,)]
    with always.begin() as con:  # the sequence moved past it, as after INSERT ... OVERRIDING SYSTEM VALUE + setval
        assert con.execute(sa.text("INSERT INTO t (x) VALUES ('next') RETURNING id")).scalar_one() == 11


def test_identity_by_default_still_takes_values(engine: Engine) -> None:
    sql(engine, "CREATE TABLE t (id int GENERATED BY DEFAULT AS IDENTITY, x text)")
    frames.write_frame(pd.DataFrame({"id": [5], "x": ["given"]}), "t", engine)
    assert sql(engine, "SELECT id FROM t") == [(5,)]


def test_replace_refuses_what_it_cannot_count(music: Engine) -> None:
    role = f"pt_cannot_count_{uuid.uuid4().hex[:8]}"  # roles are server-wide: a name of its own, dropped after
    try:
        sql(music, f"CREATE ROLE {role}")
    except (psycopg.errors.InsufficientPrivilege, psycopg2.errors.InsufficientPrivilege):
        pytest.skip("the server's user may not create roles")
    sql(music, f"GRANT {role} TO current_user; GRANT SELECT, INSERT, DELETE, UPDATE ON playlists TO {role}; "
               f"GRANT USAGE ON SCHEMA public TO {role}")
    try:
        with music.connect() as con:
            con.exec_driver_sql(f"SET ROLE {role}")
            with pytest.raises(FrameError, match=r"cannot count the rows .*permission denied.*allow_data_loss=True"):
                frames.write_frame(pd.DataFrame({"playlist_id": [9], "title": ["x"]}), "playlists", con,
                                   if_exists="replace")
            con.rollback()
    finally:
        sql(music, f"DROP OWNED BY {role}; DROP ROLE {role}")
    assert sql(music, "SELECT count(*) FROM playlist_song_association") == [(5,)]
