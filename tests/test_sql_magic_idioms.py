"""jupysql's idioms in %sql: each works as in jupysql, or fails with one UsageError line naming ours.

The table of idioms these cases come from is docs/sql-magic.md; nothing may
come back silently wrong, raise SystemExit or a misleading syntax error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from playlist_tools import sample
from playlist_tools.models import Base


@pytest.fixture
def songs(engine: Engine, shell: InteractiveShell) -> Iterator[Engine]:
    Base.metadata.create_all(engine)
    sample.load_sample(engine, progress=False)
    shell.user_ns.update(engine=engine, genre="Jazz")
    yield engine
    for name in ("engine", "genre", "top", "x", "y", "url", "s", "conn"):
        shell.user_ns.pop(name, None)


def sql(shell: InteractiveShell, line: str, cell: str | None = None) -> pd.DataFrame | None:
    return shell.run_line_magic("sql", line) if cell is None else shell.run_cell_magic("sql", line, cell)


def refused(shell: InteractiveShell, line: str, cell: str | None = None) -> str:
    """The UsageError's message; it must be one line (no SystemExit, no other exception)."""
    with pytest.raises(UsageError) as caught:
        sql(shell, line, cell)
    message = str(caught.value)
    assert "\n" not in message
    return message


def jazz(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM songs WHERE genre = 'Jazz'")).scalar_one()


# ---- idioms that work as in jupysql ----------------------------------------------------------------------------


def test_line_and_cell_select_with_a_bound_variable(shell: InteractiveShell, songs: Engine) -> None:
    line = sql(shell, "--con engine SELECT count(*) AS n FROM songs WHERE genre = :genre")
    cell = sql(shell, "--con engine", "SELECT count(*) AS n\nFROM songs\nWHERE genre = :genre;")
    assert line["n"].tolist() == cell["n"].tolist() == [jazz(songs)]


@pytest.mark.parametrize("line", ["top << --con engine", "--con engine top <<", "--con engine top= <<",
                                  "--con engine top =<<"])
def test_result_stored_with_double_angle(shell: InteractiveShell, songs: Engine, line: str) -> None:
    assert sql(shell, f"{line} SELECT song_id FROM songs ORDER BY 1 LIMIT 2") is None
    assert shell.user_ns["top"]["song_id"].tolist() == [1, 2]
    shell.user_ns.pop("top")
    assert sql(shell, line, "SELECT song_id FROM songs ORDER BY 1 LIMIT 2") is None
    assert shell.user_ns["top"]["song_id"].tolist() == [1, 2]


def test_statements_that_return_no_rows_run_and_commit(shell: InteractiveShell, songs: Engine) -> None:
    with capture_output() as captured:
        assert sql(shell, "--con engine CREATE TABLE notes (id int, body text)") is None
        assert sql(shell, "--con engine INSERT INTO notes VALUES (1, 'a'), (2, 'b')") is None
    assert captured.stdout.splitlines() == ["Done.", "2 rows affected."]
    with songs.connect() as connection:  # committed: another connection sees the rows
        assert connection.execute(sa.text("SELECT count(*) FROM notes")).scalar_one() == 2


def test_several_statements_return_the_last_result(shell: InteractiveShell, songs: Engine) -> None:
    shell.user_ns["x"] = 7
    frame = sql(shell, "--con engine", "CREATE TABLE t (x int);\nINSERT INTO t VALUES (:x);\nSELECT x FROM t;")
    assert frame["x"].tolist() == [7]
    assert frame.dtypes.astype(str).tolist() == ["Int32"]


def test_a_failing_statement_undoes_the_whole_call(shell: InteractiveShell, songs: Engine) -> None:
    message = refused(shell, "--con engine", "CREATE TABLE half (x int); INSERT INTO nowhere VALUES (1)")
    assert 'relation "nowhere" does not exist' in message
    with songs.connect() as connection:
        assert connection.execute(sa.text("SELECT to_regclass('half')")).scalar_one() is None


def test_returning_show_and_explain_give_rows(shell: InteractiveShell, songs: Engine) -> None:
    sql(shell, "--con engine CREATE TABLE r (id int GENERATED ALWAYS AS IDENTITY, note text)")
    returned = sql(shell, "--con engine INSERT INTO r (note) VALUES ('a'), (NULL) RETURNING id, note")
    assert returned["id"].tolist() == [1, 2]
    assert returned["note"].isna().tolist() == [False, True]  # NULL is NA, never the text 'None'
    assert sql(shell, "--con engine SHOW TimeZone").columns.tolist() == ["TimeZone"]
    assert not sql(shell, "--con engine EXPLAIN SELECT 1").empty


def test_file_option_runs_the_file(shell: InteractiveShell, songs: Engine, tmp_path: Path) -> None:
    query = tmp_path / "jazz.sql"
    query.write_text("SELECT count(*) AS n FROM songs WHERE genre = :genre\n")
    assert sql(shell, f"--con engine --file {query}")["n"].tolist() == [jazz(songs)]
    assert "cannot read it" in refused(shell, f"--file {tmp_path / 'missing.sql'}")


def test_dollar_quotes_and_array_literals_are_left_alone(shell: InteractiveShell, songs: Engine) -> None:
    """IPython's $name and {name} expansion is off for %sql: it would turn $$a$$ into $a$."""
    frame = sql(shell, "--con engine SELECT $$a$b$$ AS d, '{rock,jazz}'::text[] AS tags, '{x}' AS braces")
    assert frame["d"].tolist() == ["a$b"]
    assert frame["braces"].tolist() == ["{x}"]


def test_a_sql_comment_after_the_options_is_no_option(shell: InteractiveShell, songs: Engine) -> None:
    assert sql(shell, "--con engine -- how many\nSELECT 1 AS one")["one"].tolist() == [1]


def test_config_displaylimit_sets_the_rows_shown(shell: InteractiveShell) -> None:
    before = pd.get_option("display.max_rows")
    try:
        shell.run_line_magic("config", "SqlMagic.displaylimit = 7")
        assert pd.get_option("display.max_rows") == 7
        shell.run_line_magic("config", "SqlMagic.displaylimit = 0")
        assert pd.get_option("display.max_rows") is None
    finally:
        pd.set_option("display.max_rows", before)


def test_config_settings_we_do_not_take_say_so(shell: InteractiveShell, caplog: pytest.LogCaptureFixture) -> None:
    shell.run_line_magic("config", "SqlMagic.autopandas = True")  # what %sql always does: quietly fine
    assert not caplog.records
    shell.run_line_magic("config", "SqlMagic.autolimit = 3")
    assert [r.getMessage() for r in caplog.records] == [
        "SqlMagic.autolimit is jupysql's setting, which %sql does not take (not taken: write LIMIT n in the query);"
        " docs/sql-magic.md lists jupysql's idioms and ours"
    ]


def test_help_prints_usage(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        assert sql(shell, "--help") is None
    assert captured.stdout.startswith("usage: %sql [--con NAME]")


# ---- idioms refused with one line that names ours --------------------------------------------------------------


def test_templating_in_quotes_is_refused_not_silently_empty(shell: InteractiveShell, songs: Engine) -> None:
    """jupysql pastes {{genre}}; without that, WHERE genre = '{{genre}}' would return an empty frame."""
    message = refused(shell, "--con engine SELECT * FROM songs WHERE genre = '{{genre}}'")
    assert message.startswith("%sql does not paste {{genre}} into the SQL (jupysql's templating")
    assert "bind the value as :genre without the quotes" in message
    assert "{{genre}}" in refused(shell, "--con engine", "SELECT * FROM songs\nWHERE genre = '{{ genre }}'".replace(
        "{{ genre }}", "{{genre}}"))


@pytest.mark.parametrize(("query", "shown"), [
    ("SELECT * FROM {{table}}", "{{table}}"),
    ("SELECT * FROM songs WHERE genre = {genre}", "{genre}"),
    ("SELECT * FROM songs WHERE genre = $genre", "$genre"),
])
def test_pasting_outside_quotes_is_refused(shell: InteractiveShell, songs: Engine, query: str, shown: str) -> None:
    message = refused(shell, f"--con engine {query}")
    assert message.startswith(f"%sql does not paste {shown} into the SQL")
    assert "syntax error" not in message


@pytest.mark.parametrize(("option", "ours"), [
    ("--save jazz", "WITH name AS"), ("-S jazz", "WITH name AS"), ("--with jazz", "WITH name AS"),
    ("--no-execute", "WITH name AS"), ("--persist df", "write_frame"), ("--persist-replace df", "write_frame"),
    ("--append df", "write_frame"), ("-l", "--con NAME"), ("--connections", "--con NAME"),
    ("--close engine", "engine.dispose()"), ("-x engine", "engine.dispose()"), ("--alias a", "create_engine"),
    ("--connection_arguments {}", "create_engine"), ("--creator f", "create_engine"), ("--interact x", ":name"),
])
def test_jupysql_options_name_ours(shell: InteractiveShell, songs: Engine, option: str, ours: str) -> None:
    message = refused(shell, f"{option} SELECT 1")
    assert f"(jupysql's {option.split()[0]})" in message
    assert ours in message


def test_unknown_option_is_one_line_not_systemexit(shell: InteractiveShell) -> None:
    assert refused(shell, "--bogus SELECT 1").startswith("%sql: unknown option --bogus; usage: %sql [--con NAME]")
    assert refused(shell, "--con").startswith("%sql --con needs a value")


def test_a_url_as_first_word_is_refused_without_its_password(shell: InteractiveShell) -> None:
    message = refused(shell, "postgresql://ann:s3cret@db.example.org/music SELECT 1")
    assert "jupysql's %sql URL" in message and "--con url" in message
    assert "s3cret" not in message


def test_a_connection_as_first_word_says_con(shell: InteractiveShell, songs: Engine) -> None:
    assert "%sql --con engine SELECT" in refused(shell, "engine SELECT 1")


def test_transaction_control_is_refused(shell: InteractiveShell, songs: Engine) -> None:
    for statement in ("BEGIN", "COMMIT", "ROLLBACK"):
        assert refused(shell, f"--con engine {statement}").startswith(f"%sql runs no {statement}: each %sql call")


@pytest.mark.parametrize(("value", "kind"), [(42, "an int"), ("session", "a Session")])
def test_con_that_is_no_connection_is_one_line(shell: InteractiveShell, songs: Engine, value: object,
                                               kind: str) -> None:
    """Issue 17: %sql --con x with x = 42, or an ORM Session, gave a TypeError traceback."""
    with Session(songs) as session:
        shell.user_ns["x"] = session if value == "session" else value
        message = refused(shell, "--con x SELECT 1")
    assert message.startswith(f"--con x: x is {kind}, not an Engine, Connection or URL")


def test_a_connection_joins_its_owners_transaction(shell: InteractiveShell, songs: Engine) -> None:
    with songs.connect() as conn:
        shell.user_ns["conn"] = conn
        sql(shell, "--con conn CREATE TABLE mine (x int)")
        conn.rollback()  # the owner decides: nothing was committed behind its back
    with songs.connect() as other:
        assert other.execute(sa.text("SELECT to_regclass('mine')")).scalar_one() is None
