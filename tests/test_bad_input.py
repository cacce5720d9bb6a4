"""The bad-input catalogue: each mistake gives one clear line, fails, and changes nothing.

Every case runs against one prepared database (at head, sample loaded)
whose tables are compared before and after. Command-line cases run the
real ``playlist-tools`` and ``alembic`` commands: no traceback, non-zero
exit, the message on the last line. API cases raise a
``PlaylistToolsError`` (``ValueError`` for the one foundation check that
predates it) whose message is one line. Each case carries the cause and
the fix that the README's Troubleshooting table shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, frames, migrations, queries, sample, schema
from playlist_tools.errors import PlaylistToolsError
from playlist_tools.workspace import Workspace

from helpers import REPO_ROOT, run_cli, snapshot, url_text

PASSWORD = "s3cr3t-pw"
CLOSED_PORT = f"postgresql://ann:{PASSWORD}@127.0.0.1:1/music"


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    needles: tuple[str, ...]
    cause: str
    fix: str
    argv: tuple[str, ...] = ()  # a command line, or
    call: Callable[[Engine, Config], object] | None = None  # an API call on the prepared database
    env: dict[str, str] = field(default_factory=dict)  # "{server}/name": that database on our server; "{tmp}": a scratch dir
    exit: int | None = None  # expected exit status when it is not simply "non-zero"


def _api_config(url: URL, **attributes: object) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes.update(url=url, skip_logging_config=True, **attributes)
    return config


def _empty_database_load() -> None:
    with db.fresh_database(prefix="pt_test") as url:
        sample.load_sample(url, progress=False)


def _workspace(upto: str) -> None:
    Workspace.open(upto=upto).close()


CASES = [
    # -- URL and environment ------------------------------------------------------------
    Case("url-closed-port", "URL and environment", ("cannot connect to postgresql://ann:***@127.0.0.1:1/music", "Connection refused"),
         "`DATABASE_URL` names a server that is not running there", "start that server, fix the host/port, or unset `DATABASE_URL` to use the embedded one",
         argv=("alembic", "upgrade", "head"), env={"DATABASE_URL": CLOSED_PORT}),
    Case("url-bad-scheme", "URL and environment", ("'mysql'", "postgresql://user:password@host:port/dbname"),
         "`DATABASE_URL` is not a PostgreSQL URL", "write `postgresql://user:password@host:port/dbname`",
         argv=("playlist-tools", "db", "status"), env={"DATABASE_URL": CLOSED_PORT.replace("postgresql", "mysql")}),
    Case("url-unparsable", "URL and environment", ("is not a URL",),
         "`DATABASE_URL` cannot be parsed (e.g. a port that is not a number)", "same form: `postgresql://user:password@host:port/dbname`",
         argv=("alembic", "current"), env={"DATABASE_URL": CLOSED_PORT.replace(":1/", ":port/")}),
    Case("url-unknown-driver", "URL and environment", ("names driver 'nodriver'",),
         "`postgresql+DRIVER://` names a driver SQLAlchemy does not know", "write `postgresql://` (psycopg 3) or `postgresql+psycopg2://`",
         argv=("alembic", "current"), env={"DATABASE_URL": "postgresql+nodriver://ann@localhost/music"}),
    Case("url-driver-not-installed", "URL and environment", ("needs the Python package 'pg8000'",),
         "the URL names a driver whose package is not installed", "`pip install` it, or write `postgresql://` to use psycopg 3",
         argv=("alembic", "current"), env={"DATABASE_URL": "postgresql+pg8000://ann@localhost/music"}),
    Case("url-no-such-database", "URL and environment", ('database "pt_no_such_database" does not exist',),
         "the server is there but the database is not", "create it (`createdb`), or fix the database name in the URL",
         argv=("alembic", "upgrade", "head"), env={"DATABASE_URL": "{server}/pt_no_such_database"}),
    Case("lock-timeout-no-unit", "URL and environment", ("PLAYLIST_TOOLS_LOCK_TIMEOUT '10' has no unit",),
         "`PLAYLIST_TOOLS_LOCK_TIMEOUT` is a bare number (PostgreSQL would read milliseconds)", "give a unit: `500ms`, `10s`, `2min`; `0` waits forever",
         argv=("alembic", "upgrade", "head"), env={"PLAYLIST_TOOLS_LOCK_TIMEOUT": "10"}),
    Case("lock-timeout-not-a-duration", "URL and environment", ("PLAYLIST_TOOLS_LOCK_TIMEOUT 'soon' is not a duration",),
         "`PLAYLIST_TOOLS_LOCK_TIMEOUT` is not a duration", "same: `500ms`, `10s`, `2min`",
         argv=("alembic", "upgrade", "head"), env={"PLAYLIST_TOOLS_LOCK_TIMEOUT": "soon"}),
    Case("pgdata-is-a-file", "URL and environment", ("is a file", "PLAYLIST_TOOLS_PGDATA"),
         "`PLAYLIST_TOOLS_PGDATA` points at a file", "point it at a directory (created if missing)",
         argv=("playlist-tools", "db", "start"), env={"PLAYLIST_TOOLS_PGDATA": "{tmp}/a-file", "DATABASE_URL": ""}),
    Case("pgdata-too-long", "URL and environment", ("too long for a Unix socket path", "PLAYLIST_TOOLS_PGDATA"),
         "the data directory's path leaves no room for the server's socket name (about 93 bytes at most)", "set `PLAYLIST_TOOLS_PGDATA` to a shorter path",
         argv=("playlist-tools", "db", "start"), env={"PLAYLIST_TOOLS_PGDATA": "{tmp}/" + "x" * 100, "DATABASE_URL": ""}),
    # -- command-line arguments ------------------------------------------------------------
    Case("cli-unknown-action", "CLI arguments", ("invalid choice: 'explode'",),
         "a `playlist-tools` command that does not exist", "`playlist-tools --help` lists them", argv=("playlist-tools", "db", "explode"), exit=2),
    Case("cli-unknown-option", "CLI arguments", ("unrecognized arguments: --bogus",),
         "an option the command does not have", "`playlist-tools db url --help`", argv=("playlist-tools", "db", "url", "--bogus"), exit=2),
    Case("cli-reset-unconfirmed", "CLI arguments", ("refusing to delete", "pass --yes"),
         "`db reset` with no terminal to ask on (a script, CI)", "add `--yes`",
         argv=("playlist-tools", "db", "reset"), env={"PLAYLIST_TOOLS_PGDATA": "{tmp}/pgdata", "DATABASE_URL": ""}, exit=1),
    Case("cli-lint-missing-ini", "CLI arguments", ("no alembic.ini at '/nonexistent/alembic.ini'",),
         "`playlist-tools lint -c` names no file", "pass the path of an existing alembic.ini", argv=("playlist-tools", "lint", "-c", "/nonexistent/alembic.ini")),
    Case("alembic-missing-revision", "CLI arguments", ("the following arguments are required: revision",),
         "`alembic upgrade`/`downgrade` without a target", "add one: `head`, `base`, an id, `+1`, `-1`", argv=("alembic", "downgrade"), exit=2),
    Case("alembic-range-online", "CLI arguments", ("Range revision not allowed",),
         "`START:END` ranges only exist for `--sql` output", "give one target, or add `--sql` to print the SQL", argv=("alembic", "upgrade", "0003:0005")),
    # -- revision ids ------------------------------------------------------------------------
    Case("revision-unknown-upgrade", "revision ids", ("'nope'", "alembic history"),
         "a revision id the history does not have", "`alembic history` lists them; or use `head`, `base`, `+N`, `-N`", argv=("alembic", "upgrade", "nope")),
    Case("revision-unknown-downgrade", "revision ids", ("'0042'", "alembic history"),
         "same, on the way down", "same", argv=("alembic", "downgrade", "0042")),
    Case("revision-past-head", "revision ids", ("Relative revision +9 didn't produce 9 migrations", "alembic current"),
         "`+N` goes beyond head", "`alembic current` and `alembic history` show how far it can go", argv=("alembic", "upgrade", "+9")),
    Case("revision-past-base", "revision ids", ("Relative revision -9 didn't produce 9 migrations", "alembic current"),
         "`-N` goes below base", "same; `alembic downgrade base` goes all the way", argv=("alembic", "downgrade", "-9")),
    Case("revision-lint-unknown", "revision ids", ("unknown revision 'nope'", "alembic history"),
         "`playlist-tools lint` with an unknown revision", "`alembic history`", argv=("playlist-tools", "lint", "nope")),
    Case("revision-api-unknown", "revision ids", ("'nope'",),
         "`migrations.upgrade(config, 'nope')`", "`migrations.history()` lists the ids",
         call=lambda engine, config: migrations.upgrade(config, "nope")),
    # -- DataFrames ---------------------------------------------------------------------------
    Case("frame-unknown-column", "DataFrames", ("'rating'", "not in songs", "rename or drop"),
         "the frame has a column the table lacks", "rename or drop it (the message lists the table's columns)",
         call=lambda engine, config: frames.write_frame(pd.DataFrame({"song_id": [90001], "title": ["t"], "rating": [5]}), "songs", engine)),
    Case("frame-value-too-big", "DataFrames", ("song_id", "int4"),
         "a value that does not fit the column's type", "fix those values, or widen the column with a migration",
         call=lambda engine, config: frames.write_frame(pd.DataFrame({"song_id": [2**40], "title": ["t"]}), "songs", engine)),
    Case("frame-null-in-not-null", "DataFrames", ("'title'", "NULL"),
         "missing values in a NOT NULL column", "fill or drop those rows",
         call=lambda engine, config: frames.write_frame(pd.DataFrame({"song_id": [90001], "title": pd.array([None], dtype="string")}), "songs", engine)),
    Case("frame-duplicate-key", "DataFrames", ("nothing was written",),
         "rows whose keys are already in the table", "drop those rows, or `if_exists='replace'`",
         call=lambda engine, config: frames.write_frame(pd.DataFrame({"song_id": [90001, 1], "title": ["new", "dup"]}), "songs", engine)),
    Case("frame-no-such-table", "DataFrames", ("does not exist",),
         "writing to a table that is not there", "`alembic upgrade head`, or check the name",
         call=lambda engine, config: frames.write_frame(pd.DataFrame({"x": [1]}), "sogns", engine)),
    Case("frame-hostile-table-name", "DataFrames", ("not a plain identifier",),
         "a table name with SQL in it", "pass the plain name, e.g. `'songs'`",
         call=lambda engine, config: frames.write_frame(pd.DataFrame({"x": [1]}), "songs; DROP TABLE songs", engine)),
    Case("frame-bad-if-exists", "DataFrames", ("if_exists='merge'",),
         "`if_exists` other than append, fail, replace", "use one of those",
         call=lambda engine, config: frames.write_frame(pd.DataFrame({"x": [1]}), "songs", engine, if_exists="merge")),
    # -- SQL parameters -------------------------------------------------------------------------
    Case("sql-missing-parameter", "SQL parameters", ("'t'",),
         "a `:name` placeholder with no value in `params=`", "pass `params={'t': ...}`",
         call=lambda engine, config: frames.read_frame("SELECT * FROM songs WHERE title = :t", engine)),
    Case("sql-parameter-wrong-type", "SQL parameters", ("cannot read",),
         "a parameter whose value cannot be the column's type", "pass a value of the right type",
         call=lambda engine, config: frames.read_frame("SELECT * FROM songs WHERE song_id = :id", engine, params={"id": "abc"})),
    Case("sql-two-statements", "SQL parameters", ("cannot read",),
         "more than one statement in one query", "one SELECT per call",
         call=lambda engine, config: frames.read_frame("SELECT 1; DELETE FROM songs", engine)),
    Case("sql-syntax-error", "SQL parameters", ("syntax error",),
         "SQL PostgreSQL cannot parse", "fix the query (the message quotes PostgreSQL)",
         call=lambda engine, config: frames.read_frame("SELEC title FROM songs", engine)),
    # -- the notebook API ---------------------------------------------------------------------------
    Case("api-lossy-downgrade", "notebook API", ("would destroy", "allow_data_loss=True"),
         "a downgrade that drops data (here 0002's descriptions, 0003's positions)", "pass `allow_data_loss=True` if that is intended",
         call=lambda engine, config: migrations.downgrade(migrations.config(engine.url), "0001")),
    Case("api-workspace-unknown", "notebook API", ("unknown revision 'nope'",),
         "`Workspace.open(upto=...)` with an unknown id", "use `base`, `head` or a listed id", call=lambda engine, config: _workspace("nope")),
    Case("api-schema-unknown-table", "notebook API", ("'sogns'",),
         "`schema.columns()` of a table that is not there", "`schema.tables()` lists them",
         call=lambda engine, config: schema.columns("sogns", engine)),
    Case("api-ambiguous-playlist", "notebook API", ("playlists are titled 'Music'", "pass the id"),
         "a playlist title that several playlists share", "pass the playlist id",
         call=lambda engine, config: queries.playlist_songs("Music", engine)),
    Case("api-sample-without-schema", "notebook API", ("alembic upgrade head",),
         "`load_sample()` into a database without the schema", "`migrations.upgrade(config, 'head')` first",
         call=lambda engine, config: _empty_database_load()),
    Case("api-lint-unknown", "notebook API", ("unknown revision 'nope'",),
         "`migrations.lint(None, 'nope')`", "a range like `'base:head'` or a listed id",
         call=lambda engine, config: migrations.lint(None, "nope")),
    Case("api-lock-timeout-negative", "notebook API", ("lock timeout -1 is negative",),
         "`config.attributes['lock_timeout']` below zero", "seconds >= 0, or text like `'10s'`",
         call=lambda engine, config: command.upgrade(_api_config(engine.url, lock_timeout=-1), "head")),
    Case("api-fresh-database-prefix", "notebook API", ("'Bad Prefix'", "lower-case identifier"),
         "`fresh_database(prefix=...)` that is not a plain lower-case name", "letters, digits, underscores",
         call=lambda engine, config: db.fresh_database(prefix="Bad Prefix").__enter__()),
]


@pytest.fixture(scope="module")
def prepared(server_url: URL) -> Iterator[tuple[URL, Engine]]:
    """One database at head with the sample loaded; every case must leave it exactly so."""
    with db.fresh_database(server_url, prefix="pt_test") as url:
        command.upgrade(_api_config(url), "head")
        engine = db.create_engine(url)
        sample.load_sample(engine, progress=False)
        with engine.begin() as connection:  # something for a lossy downgrade to lose
            connection.exec_driver_sql("UPDATE playlists SET description = 'about ' || title WHERE playlist_id < 5")
        yield url, engine
        engine.dispose()


def _fill(value: str, url: URL, tmp: Path) -> str:
    if value.startswith("{server}/"):  # same server and credentials, another database
        return url_text(url.set(database=value.removeprefix("{server}/")))
    return value.replace("{tmp}", str(tmp))


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing printed"
    return lines[-1]


KNOWN_BUGS: dict[str, str] = {}
"""Cases that fail for a reported bug: id -> why. xfail(strict) flags the fix."""


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, marks=pytest.mark.xfail(reason=KNOWN_BUGS[case.id], strict=True)) if case.id in KNOWN_BUGS else case
     for case in CASES],
    ids=[case.id for case in CASES],
)
def test_bad_input(case: Case, prepared: tuple[URL, Engine], tmp_path: Path) -> None:
    url, engine = prepared
    (tmp_path / "a-file").write_text("not a directory\n")
    before = snapshot(engine)
    if case.argv:
        env = {"DATABASE_URL": url_text(url), **{k: _fill(v, url, tmp_path) for k, v in case.env.items()}}
        result = run_cli(*case.argv, env=env, input="")
        assert result.returncode == case.exit if case.exit is not None else result.returncode != 0, result
        shown = result.stdout + result.stderr
        assert "Traceback" not in shown and PASSWORD not in shown, shown
        if case.argv[0] == "alembic" and case.exit is None:
            line = last_line(result.stdout)  # alembic's one line: "FAILED: ..."
            assert line.startswith("FAILED: ")
        else:
            line = last_line(result.stderr)
    else:
        assert case.call is not None
        with pytest.raises((PlaylistToolsError, CommandError, ValueError)) as caught:
            case.call(engine, _api_config(url))
        line = str(caught.value)
        assert "\n" not in line.strip(), line
        assert PASSWORD not in line
    for needle in case.needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert snapshot(engine) == before, "a refused input changed the database"
    assert not (tmp_path / ("x" * 100)).exists() and not (tmp_path / "pgdata").exists()


def test_catalogue_covers_every_area() -> None:
    areas = {case.area for case in CASES}
    assert areas == {"URL and environment", "CLI arguments", "revision ids", "DataFrames", "SQL parameters", "notebook API"}
    assert len(CASES) >= 20
    assert len({case.id for case in CASES}) == len(CASES)


def troubleshooting_rows() -> str:
    """The README's Troubleshooting table, from the catalogue (``python tests/test_bad_input.py``)."""
    rows = ["| you see | cause | fix |", "| --- | --- | --- |"]
    for case in CASES:
        rows.append(f"| `{' … '.join(case.needles)}` | {case.cause} | {case.fix} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    print(troubleshooting_rows())
