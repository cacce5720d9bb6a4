"""The loss guard, end to end: a revision holding each spelling of a destructive step is refused, nothing destroyed.

Each case writes a revision 0006 into a scratch workspace at 0005 (with rows
in every table) and runs ``migrations.upgrade`` (the API) or a plain
``alembic upgrade head`` (a subprocess): the run is refused before any step,
in one line naming what would be destroyed and how to consent, and the
database is as it was. The pattern-matching guard let most of these through
with exit status 0 (issue 17).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from playlist_tools import migrations
from playlist_tools.errors import DataLossError
from playlist_tools.workspace import Workspace

from helpers import revision_source, run_cli, snapshot, url_text

SETUP = """
INSERT INTO songs (song_id, title) VALUES (1, 'x'), (2, 'y'), (3, 'z');
INSERT INTO playlists (playlist_id, title, description)
    VALUES (1, 'a', 'one'), (2, 'b', 'two'), (3, 'c', 'three'), (4, 'd', NULL);
INSERT INTO playlist_song_association (playlist_id, song_id, position)
    VALUES (1, 1, 1), (1, 2, 2), (2, 1, 1), (3, 3, 1);
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE notes (id int PRIMARY KEY, score numeric(4, 2), mood mood, body text);
INSERT INTO notes VALUES (1, 1.5, 'happy', 'x'), (2, 2.25, 'sad', NULL);
CREATE SCHEMA extra;
CREATE TABLE extra.archive (id int);
INSERT INTO extra.archive VALUES (1);
CREATE VIEW described AS SELECT title, description FROM playlists;
CREATE FUNCTION cleanup() RETURNS void LANGUAGE sql AS 'DELETE FROM notes';
CREATE TABLE "Tracks" ("Name" text);
INSERT INTO "Tracks" VALUES ('p'), ('q');
CREATE TABLE events (id int);
CREATE TABLE events_2024 () INHERITS (events);
INSERT INTO events VALUES (1);
INSERT INTO events_2024 VALUES (2), (3);
"""

DESCRIPTIONS = "playlists.description (3 non-null values)"

# (id, the revision's upgrade() body, what the refusal names); each was let through, or named less, by the patterns
SPELLINGS = [
    ("op.drop_table schema=", 'op.drop_table("playlist_song_association", schema="public")',
     "playlist_song_association (4 rows)"),
    ("op.drop_column schema=", 'op.drop_column("playlists", "description", schema="public")', DESCRIPTIONS),
    ("lowercase drop column", 'op.execute("alter table playlists drop column description")', DESCRIPTIONS),
    ("quoted identifiers, schema",
     """op.execute('ALTER TABLE "public"."playlists" DROP COLUMN "description"')""", DESCRIPTIONS),
    ("ALTER TABLE ONLY", 'op.execute("ALTER TABLE ONLY playlists DROP COLUMN description")', DESCRIPTIONS),
    ("IF EXISTS twice, CASCADE",
     'op.execute("ALTER TABLE IF EXISTS playlists DROP COLUMN IF EXISTS description CASCADE")', DESCRIPTIONS),
    ("several ALTER actions", 'op.execute("ALTER TABLE playlists ADD COLUMN rating int, DROP COLUMN description")',
     DESCRIPTIONS),
    ("DROP TABLE CASCADE", 'op.execute("DROP TABLE events CASCADE")',
     "events (1 row), events_2024 (2 rows, by cascade)"),
    ("TRUNCATE reaches children", 'op.execute("TRUNCATE events")', "events (3 rows)"),
    ("lowercase drop table cascade", 'op.execute("drop table notes cascade")', "notes (2 rows)"),
    ("DROP TABLE a, b", 'op.execute("DROP TABLE notes, extra.archive")', "notes (2 rows), extra.archive (1 row)"),
    ("DROP TABLE IF EXISTS", 'op.execute("DROP TABLE IF EXISTS nothing_here, notes")', "notes (2 rows)"),
    ("spacing, newline, comment", 'op.execute("Drop\\n  Table\\t/* gone */ notes -- and nothing else")',
     "notes (2 rows)"),
    ("quoted mixed case, schema", """op.execute('drop table public."Tracks"')""", "Tracks (2 rows)"),
    ("two statements in one string", 'op.execute("DELETE FROM notes; DROP TABLE extra.archive")',
     "notes (2 rows), extra.archive (1 row)"),
    ("TRUNCATE CASCADE", 'op.execute("TRUNCATE playlists CASCADE")',
     "playlists (4 rows), playlist_song_association (4 rows, by cascade)"),
    ("TRUNCATE a, b", 'op.execute("TRUNCATE notes, extra.archive")', "notes (2 rows), extra.archive (1 row)"),
    ("TRUNCATE TABLE ONLY RESTART IDENTITY", 'op.execute("truncate table only notes restart identity")',
     "notes (2 rows)"),
    ("sa.text TRUNCATE", 'op.execute(sa.text("TRUNCATE TABLE notes"))', "notes (2 rows)"),
    ("DROP SCHEMA CASCADE", 'op.execute("DROP SCHEMA extra CASCADE")', "extra.archive (1 row, by cascade)"),
    ("DROP TYPE CASCADE", 'op.execute("DROP TYPE mood CASCADE")', "notes.mood (2 non-null values, by cascade)"),
    ("ALTER COLUMN TYPE USING",
     'op.execute("ALTER TABLE playlists ALTER COLUMN description TYPE varchar(2) USING left(description, 2)")',
     "playlists.description (3 values changed by the new type)"),
    ("ALTER COLUMN TYPE narrowing", 'op.execute("ALTER TABLE notes ALTER COLUMN score TYPE numeric(4, 0)")',
     "notes.score (2 values changed by the new type)"),
    ("DELETE without WHERE", 'op.execute("DELETE FROM notes")', "notes (2 rows)"),
    ("sa.delete construct", 'op.execute(sa.delete(sa.table("notes")))', "notes (2 rows)"),
    ("DELETE that cascades", """op.execute("delete from playlists where title = 'a'")""",
     "playlists (1 row), playlist_song_association (2 rows, by ON DELETE CASCADE)"),
    ("UPDATE that overwrites", 'op.execute("UPDATE playlists SET description = NULL")',
     "playlists.description (3 non-null values overwritten)"),
    ("renamed then dropped", 'op.execute("alter table notes rename to old_notes")\nop.execute("drop table old_notes")',
     "notes (2 rows)"),
    ("moved then dropped", 'op.execute("ALTER TABLE notes SET SCHEMA extra")\nop.execute("DROP TABLE extra.notes")',
     "notes (2 rows)"),
]

# Spellings the patterns already read: kept, so that the reader does at least as well.
REGRESSIONS = [
    ("op.drop_table", 'op.drop_table("notes")', "notes (2 rows)"),
    ("batch drop_column", 'with op.batch_alter_table("playlists") as batch:\n    batch.drop_column("description")',
     DESCRIPTIONS),
    ("quoted identifiers", """op.execute('ALTER TABLE "playlists" DROP COLUMN "description"')""", DESCRIPTIONS),
    ("DROP TABLE playlists CASCADE", 'op.execute("DROP TABLE playlists CASCADE")', "playlists (4 rows)"),
    ("renamed", 'op.execute("ALTER TABLE notes RENAME TO old_notes")\nop.execute("DROP TABLE old_notes")',
     "notes (2 rows)"),
]

# (id, body, the start of the reason the step is uncountable)
UNCOUNTABLE = [
    ("DO block", 'op.execute("DO $$ BEGIN DELETE FROM notes; END $$")',
     "a DO block runs procedural code, which the guard cannot read"),
    ("unparseable", 'op.execute("DROP TABLEE notes")', "PostgreSQL's grammar cannot read it: syntax error"),
    ("a function of ours", 'op.execute("SELECT cleanup()")', "it calls cleanup, which can run anything"),
    ("CALL", 'op.execute("CALL tidy()")', "CALL runs a procedure"),
]


@pytest.fixture(scope="module")
def workspace() -> Iterator[Workspace]:
    """A workspace at 0005 with rows everywhere; each case adds (and removes) its own 0006."""
    with Workspace.open(upto="0005") as ws:
        migrations.upgrade(ws.config)
        with ws.engine.begin() as connection:
            connection.exec_driver_sql(SETUP)
        yield ws


_files = itertools.count()


def _everything(engine: Engine) -> dict[str, object]:
    state = snapshot(engine)
    with engine.connect() as connection:
        state["extra.archive"] = connection.exec_driver_sql("SELECT count(*) FROM extra.archive").scalar_one()
        state["version"] = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    return state


@pytest.fixture
def step(workspace: Workspace) -> Iterator[callable]:
    """Write a revision 0006 with the given upgrade() body (a new file each time: no stale bytecode)."""
    written = []

    def write(body: str) -> None:
        path = workspace.directory / "alembic" / "versions" / f"0006_case_{next(_files)}.py"
        path.write_text(revision_source("A destructive step", body))
        written.append(path)

    yield write
    for path in written:
        path.unlink()


@pytest.mark.parametrize(("body", "named"), [case[1:] for case in SPELLINGS + REGRESSIONS],
                         ids=[case[0] for case in SPELLINGS + REGRESSIONS])
def test_each_spelling_is_refused_and_nothing_is_destroyed(workspace: Workspace, step, body: str, named: str) -> None:
    step(body)
    before = _everything(workspace.engine)
    with pytest.raises(DataLossError) as refused:
        migrations.upgrade(workspace.config)
    assert str(refused.value) == (
        f"upgrade to 'head' would destroy {named}; pass allow_data_loss=True to upgrade anyway")
    assert "\n" not in str(refused.value)
    assert _everything(workspace.engine) == before


@pytest.mark.parametrize(("body", "reason"), [case[1:] for case in UNCOUNTABLE], ids=[case[0] for case in UNCOUNTABLE])
def test_what_cannot_be_read_is_refused_until_consent(workspace: Workspace, step, body: str, reason: str) -> None:
    step(body)
    before = _everything(workspace.engine)
    with pytest.raises(DataLossError) as refused:
        migrations.upgrade(workspace.config)
    message = str(refused.value)
    assert message.startswith(f"cannot tell what upgrading 0006 destroys: {reason}"), message
    assert message.endswith("; check it by hand, then pass allow_data_loss=True to upgrade anyway")
    assert "\n" not in message
    assert _everything(workspace.engine) == before


CLI_CASES = [case for case in SPELLINGS if case[0] in (
    "op.drop_table schema=", "lowercase drop column", "lowercase drop table cascade", "DROP TABLE a, b",
    "TRUNCATE CASCADE", "DROP SCHEMA CASCADE")]


@pytest.mark.parametrize(("body", "named"), [case[1:] for case in CLI_CASES], ids=[case[0] for case in CLI_CASES])
def test_plain_alembic_upgrade_head_refuses_in_one_line(workspace: Workspace, step, body: str, named: str) -> None:
    step(body)
    before = _everything(workspace.engine)
    result = run_cli("alembic", "-c", str(workspace.directory / "alembic.ini"), "upgrade", "head",
                     env={"DATABASE_URL": url_text(workspace.url)})
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert failed == [f"FAILED: upgrade to head would destroy {named}; run it with -x allow_data_loss=true to go ahead"]
    assert _everything(workspace.engine) == before


def test_a_do_block_is_refused_by_the_cli_too(workspace: Workspace, step) -> None:
    step(UNCOUNTABLE[0][1])
    result = run_cli("alembic", "-c", str(workspace.directory / "alembic.ini"), "upgrade", "head",
                     env={"DATABASE_URL": url_text(workspace.url)})
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and "a DO block" in failed[0] and "-x allow_data_loss=true" in failed[0], result.stdout


def test_data_loss_lists_what_cascade_reaches(workspace: Workspace, step) -> None:
    step('op.execute("ALTER TABLE playlists DROP COLUMN description CASCADE")')
    loss = migrations.data_loss(workspace.config, "head")
    assert loss.values.tolist() == [
        ["0006", "playlists", "description", 3, "non-null values"],
        ["0006", "view described", "*", 0, "dropped by cascade"],
    ]


def test_sql_output_comments_every_table_of_one_statement(workspace: Workspace, step) -> None:
    step('op.execute("DROP TABLE notes, extra.archive CASCADE")')
    result = run_cli("alembic", "-c", str(workspace.directory / "alembic.ini"), "upgrade", "0005:head", "--sql",
                     env={"DATABASE_URL": url_text(workspace.url)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    at = lines.index("DROP TABLE notes, extra.archive CASCADE;")
    assert lines[at - 2:at] == [
        "-- destroys the rows of notes (and what CASCADE reaches)",
        "-- destroys the rows of extra.archive (and what CASCADE reaches)",
    ]


def test_what_loses_nothing_runs_without_consent_and_a_loss_runs_with_it() -> None:
    with Workspace.open(upto="0005") as ws:
        migrations.upgrade(ws.config)
        with ws.engine.begin() as connection:
            connection.exec_driver_sql(SETUP)
        versions = ws.directory / "alembic" / "versions"
        (versions / "0006_widens.py").write_text(revision_source("Widens and drops what is not there", """
            op.execute("ALTER TABLE notes ALTER COLUMN score TYPE numeric(8, 2)")
            op.execute("DROP SCHEMA IF EXISTS nowhere CASCADE")
            op.execute("DELETE FROM notes WHERE id > 100")
        """))
        assert migrations.upgrade(ws.config)["rev"].tolist() == ["0006"]
        (versions / "0007_truncates.py").write_text(
            revision_source("Truncates", 'op.execute("TRUNCATE playlists CASCADE")', rev="0007", down="0006"))
        with pytest.raises(DataLossError):
            migrations.upgrade(ws.config)
        assert migrations.upgrade(ws.config, allow_data_loss=True)["rev"].tolist() == ["0007"]
        with ws.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM playlist_song_association").scalar_one() == 0
