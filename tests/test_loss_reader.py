"""The one reader of what a step destroys: what it reads from SQL, and what it counts on a real database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import URL, Engine

from playlist_tools import cli, migrations
from playlist_tools.errors import MigrationError
from playlist_tools.migrations._loss_reader import Uncountable, comment, count, read_sql

from helpers import revision_source, url_text


def keys(sql: str) -> list[tuple[object, ...]]:
    return [(d.kind, d.relation, d.column, d.cascade, d.only) for d in read_sql(sql) if d.kind != "calls"]


@pytest.mark.parametrize(("sql", "expected"), [
    ("DROP TABLE a, s.b", [("drop", (None, "a"), None, False, False), ("drop", ("s", "b"), None, False, False)]),
    ('drop   table if exists "My Table" cascade',
     [("drop", (None, "My Table"), None, True, False)]),
    ("DROP TABLE Playlists", [("drop", (None, "playlists"), None, False, False)]),  # folded as the server folds
    ("alter table only t drop column if exists c, drop d cascade, add e int",
     [("drop_column", (None, "t"), "c", False, True), ("drop_column", (None, "t"), "d", True, True)]),
    ("ALTER TABLE t ALTER COLUMN c TYPE int USING c::int",
     [("alter_type", (None, "t"), "c", False, False)]),
    ("TRUNCATE ONLY a, b RESTART IDENTITY CASCADE",
     [("truncate", (None, "a"), None, True, True), ("truncate", (None, "b"), None, True, False)]),
    ("DELETE FROM ONLY t WHERE x > 1", [("delete", (None, "t"), None, False, True)]),
    ("CREATE TABLE t (id int); CREATE INDEX ON t (id); INSERT INTO t VALUES (1); SELECT 1", []),
    ("DROP INDEX ix; DROP VIEW v; DROP SEQUENCE s; DROP TYPE ty", []),  # RESTRICT: nothing with data goes
    ("-- DROP TABLE songs\nSELECT 'DROP TABLE songs'", []),  # a comment and a string are not statements
])
def test_read_sql(sql: str, expected: list[tuple[object, ...]]) -> None:
    assert keys(sql) == expected


def test_the_text_of_a_using_clause_and_a_new_type_is_kept() -> None:
    (change,) = [d for d in read_sql("alter table t alter column c set data type numeric(3, 1) using round(c, 1)")
                 if d.kind == "alter_type"]
    assert (change.new_type, change.expression) == ("numeric(3, 1)", "round(c, 1)")


@pytest.mark.parametrize(("sql", "reason"), [
    ("DO $$ BEGIN DROP TABLE t; END $$", "a DO block"),
    ("DROP TABLEE t", "PostgreSQL's grammar cannot read it"),
    ("EXECUTE wipe", "EXECUTE runs a prepared statement"),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "MERGE can update and delete"),
    ("DROP DATABASE other", "DROP DATABASE destroys a whole database"),
    ("DROP OWNED BY someone", "DROP OWNED drops every object of a role"),
    ("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 2", "INSERT ... ON CONFLICT DO UPDATE"),
    ("COPY t FROM PROGRAM 'cat x'", "COPY ... PROGRAM runs a command"),
    ("UPDATE t SET (a, b) = (1, 2)", "an UPDATE that assigns through"),
    ("ALTER TYPE pair DROP ATTRIBUTE b CASCADE", "ALTER TYPE ... DROP/ALTER ATTRIBUTE"),
    ("DELETE FROM t WHERE CURRENT OF c", "WHERE CURRENT OF"),
    ("CALL tidy()", "CALL runs a procedure"),
])
def test_what_the_reader_cannot_read_is_uncountable(sql: str, reason: str) -> None:
    found = [d for d in read_sql(sql) if d.kind == "uncountable"]
    assert len(found) == 1 and found[0].reason is not None and found[0].reason.startswith(reason), found


def test_sql_comments_name_each_table_and_skip_alembics_bookkeeping() -> None:
    assert comment("DROP TABLE a, b;") == "-- destroys the rows of a\n-- destroys the rows of b\n"
    assert comment("alter table t drop column c;") == "-- destroys the values of t.c\n"
    assert comment("DO $$ BEGIN END $$;").startswith("-- cannot tell what this destroys: a DO block")
    assert comment("UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0003';") == ""
    assert comment("CREATE TABLE t (id int);") == ""


SCHEMA = """
CREATE TABLE parents (id int PRIMARY KEY, label text);
CREATE TABLE children (id int PRIMARY KEY, parent_id int REFERENCES parents ON DELETE CASCADE, note text);
CREATE TABLE grandchildren (child_id int REFERENCES children ON DELETE CASCADE);
CREATE TABLE orphans (parent_id int REFERENCES parents ON DELETE SET NULL);
INSERT INTO parents VALUES (1, 'a'), (2, 'b'), (3, NULL);
INSERT INTO children VALUES (10, 1, 'x'), (11, 1, NULL), (12, 2, 'y');
INSERT INTO grandchildren VALUES (10), (10), (12);
INSERT INTO orphans VALUES (1), (3);
CREATE TABLE measured (id int, grams numeric(6, 2));
INSERT INTO measured VALUES (1, 1.00), (2, 2.50), (3, NULL);
CREATE TABLE log (id int) PARTITION BY RANGE (id);
CREATE TABLE log_low PARTITION OF log FOR VALUES FROM (0) TO (10);
CREATE TABLE log_high PARTITION OF log FOR VALUES FROM (10) TO (20);
INSERT INTO log VALUES (1), (2), (15);
CREATE TABLE watched (id int);
INSERT INTO watched VALUES (1);
CREATE FUNCTION nothing() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE TRIGGER on_delete AFTER DELETE ON watched FOR EACH ROW EXECUTE FUNCTION nothing();
"""


@pytest.fixture
def conn(engine: Engine):  # noqa: ANN201 - a Connection in a transaction, rolled back
    with engine.connect() as connection:
        connection.exec_driver_sql(SCHEMA)
        yield connection
        connection.rollback()


def losses(conn: sa.Connection, *statements: str) -> list[tuple[str, str, int, str]]:
    return [loss[1:] for loss, _ in count(conn, [("0009", read_sql(sql)) for sql in statements])]


def test_delete_counts_what_its_foreign_keys_cascade_to(conn: sa.Connection) -> None:
    assert losses(conn, "DELETE FROM parents WHERE label = 'a'") == [
        ("parents", "*", 1, "rows"),
        ("children", "*", 2, "rows, by ON DELETE CASCADE"),
        ("grandchildren", "*", 2, "rows, by ON DELETE CASCADE"),
        ("orphans", "parent_id", 1, "non-null values, by ON DELETE SET NULL"),
    ]


def test_truncate_cascade_follows_every_referencing_table(conn: sa.Connection) -> None:
    assert losses(conn, "TRUNCATE parents CASCADE") == [
        ("parents", "*", 3, "rows"), ("children", "*", 3, "rows, by cascade"),
        ("orphans", "*", 2, "rows, by cascade"), ("grandchildren", "*", 3, "rows, by cascade"),
    ]


def test_drop_table_cascade_drops_the_foreign_keys_not_the_rows_of_other_tables(conn: sa.Connection) -> None:
    found = losses(conn, "DROP TABLE parents CASCADE")
    assert found[0] == ("parents", "*", 3, "rows")
    assert {what for *_, what in found[1:]} == {"dropped by cascade"}
    assert sorted(table for table, *_ in found[1:]) == [
        "constraint children_parent_id_fkey on table children", "constraint orphans_parent_id_fkey on table orphans"]


def test_a_partitioned_table_loses_the_rows_of_its_partitions(conn: sa.Connection) -> None:
    assert sorted(losses(conn, "DROP TABLE log")) == [("log_high", "*", 1, "rows"), ("log_low", "*", 2, "rows")]
    assert losses(conn, "TRUNCATE log") == [("log", "*", 3, "rows")]


def test_type_changes_count_only_the_values_that_change(conn: sa.Connection) -> None:
    assert losses(conn, "ALTER TABLE measured ALTER COLUMN grams TYPE numeric(8, 2)") == [
        ("measured", "grams", 0, "values changed by the new type")]
    assert losses(conn, "ALTER TABLE measured ALTER COLUMN grams TYPE int") == [
        ("measured", "grams", 1, "values changed by the new type")]
    assert losses(conn, "ALTER TABLE measured ALTER COLUMN grams TYPE int USING 0") == [
        ("measured", "grams", 2, "values changed by the new type")]


def test_update_counts_the_non_null_values_it_changes(conn: sa.Connection) -> None:
    assert losses(conn, "UPDATE parents SET label = upper(label)") == [
        ("parents", "label", 2, "non-null values overwritten")]
    assert losses(conn, "UPDATE parents SET label = 'b' WHERE id > 1") == [
        ("parents", "label", 0, "non-null values overwritten")]  # 'b' stays 'b'; NULL filled: nothing lost


def test_names_are_followed_through_renames(conn: sa.Connection) -> None:
    assert losses(conn, "ALTER TABLE children RENAME note TO remark", "ALTER TABLE children RENAME TO kids",
                  "ALTER TABLE kids DROP COLUMN remark") == [("children", "note", 2, "non-null values")]
    assert losses(conn, "CREATE TABLE fresh (id int)", "DROP TABLE fresh") == []  # created by the run


def test_a_trigger_on_delete_makes_a_delete_uncountable(conn: sa.Connection) -> None:
    with pytest.raises(Uncountable, match=r"^a trigger or rule on watched fires on DELETE"):
        losses(conn, "DELETE FROM watched")


def test_a_function_outside_pg_catalog_is_uncountable_and_builtins_are_not(conn: sa.Connection) -> None:
    builtins = "SELECT setval(pg_get_serial_sequence('parents', 'id'), coalesce(max(id), 1)) FROM parents"
    assert losses(conn, builtins) == []
    with pytest.raises(Uncountable, match=r"^it calls nothing, which can run anything"):
        losses(conn, "SELECT nothing()")
    with pytest.raises(Uncountable, match=r"^it calls lo_unlink"):
        losses(conn, "SELECT lo_unlink(42)")


def test_counting_leaves_nothing_behind(conn: sa.Connection) -> None:
    before = conn.exec_driver_sql("SELECT count(*) FROM parents").scalar_one()
    losses(conn, "ALTER TABLE measured ALTER COLUMN grams TYPE int USING grams::text::int",
           "DELETE FROM parents", "UPDATE nowhere SET x = 1")
    assert conn.exec_driver_sql("SELECT count(*) FROM parents").scalar_one() == before


# -- migrate plan: one row per dropped table, with its rows and its lock ---------------------------------


def test_migrate_plan_base_names_every_dropped_table_with_rows_and_lock(
        alembic_config: Config, engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = migrations.config(alembic_config.attributes["url"])
    migrations.upgrade(cfg)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO songs (song_id, title) VALUES (1, 'x'), (2, 'y');"
            "INSERT INTO playlists (playlist_id, title) VALUES (1, 'a');"
            "INSERT INTO playlist_song_association (playlist_id, song_id, position) VALUES (1, 1, 1), (1, 2, 2)")
    plan = migrations.impact(cfg, "base")
    drops = plan[plan["sql"] == "DROP TABLE " + plan["table"]].set_index("table")
    assert sorted(drops.index) == ["playlist_song_association", "playlists", "songs"]
    assert drops.loc["playlist_song_association", "destroys"] == "playlist_song_association (2 rows)"
    assert drops.loc["songs", "destroys"] == "songs (2 rows)"
    assert drops.loc["playlists", "destroys"] == "playlists (1 row)"
    assert set(drops["lock"]) == {"ACCESS EXCLUSIVE"}
    monkeypatch.setenv("DATABASE_URL", url_text(alembic_config.attributes["url"]))
    assert cli.main(["migrate", "plan", "base"]) == 0
    shown = [line for line in capsys.readouterr().out.splitlines() if "playlist_song_association (2 rows)" in line]
    assert len(shown) == 1 and "ACCESS EXCLUSIVE" in shown[0], shown


# -- a history that does not load: one line naming the file ----------------------------------------------


@pytest.fixture
def broken(tmp_path, database_url: URL):  # noqa: ANN001, ANN201 - Path; a workspace-like ini with a bad file
    from helpers import scratch_config, scratch_history

    ini = scratch_history(tmp_path, failing=None)
    return ini, scratch_config(ini, database_url)


@pytest.mark.parametrize(("source", "message"), [
    (revision_source("Points nowhere", "pass", down="0099"),
     "0006_bad.py: down_revision '0099' names no revision of the history (0001, 0002, 0003, 0004, 0005, 0006); "
     "set it to the revision 0006 follows, or delete the file"),
    ('revision = "0006"\ndown_revision = "0005"\ndef upgrade(:\n    pass\n',
     "0006_bad.py does not load (line 3: invalid syntax); fix it or delete it, then run the command again"),
    ('revision = "0006"\ndown_revision = "0005"\nraise RuntimeError("half-written")\n',
     "0006_bad.py does not load (RuntimeError: half-written); fix it or delete it, then run the command again"),
])
def test_a_broken_revision_file_is_one_line_naming_it(broken, capsys, source: str, message: str) -> None:  # noqa: ANN001
    ini, cfg = broken
    (ini.parent / "alembic" / "versions" / "0006_bad.py").write_text(source)
    with pytest.raises(MigrationError) as caught:
        migrations.history(cfg)
    assert str(caught.value).endswith(message)
    for command in (["migrate", "plan", "-c", str(ini)], ["lint", "-c", str(ini)]):
        assert cli.main(command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.rstrip().endswith(message), err


def test_a_percent_sign_in_the_steps_own_sql_is_counted_as_written(conn: sa.Connection) -> None:
    assert losses(conn, "DELETE FROM grandchildren WHERE child_id::text LIKE '1%'") == [
        ("grandchildren", "*", 3, "rows")]


def test_delete_using_a_with_clause_and_quoted_aliases(conn: sa.Connection) -> None:
    assert losses(conn, "WITH old AS (SELECT 2 AS id) DELETE FROM parents AS \"P\" USING old WHERE \"P\".id <= old.id"
                  ) == [("parents", "*", 2, "rows"), ("children", "*", 3, "rows, by ON DELETE CASCADE"),
                        ("grandchildren", "*", 3, "rows, by ON DELETE CASCADE"),
                        ("orphans", "parent_id", 1, "non-null values, by ON DELETE SET NULL")]
