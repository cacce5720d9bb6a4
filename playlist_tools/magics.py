"""The IPython extension: ``%load_ext playlist_tools`` gives ``%sql``, ``%%sql`` and ``%alembic``.

* ``%sql SELECT ...`` / ``%%sql``: the query through
  :func:`playlist_tools.frames.read_frame`, faithful dtypes and all; the
  DataFrame is the cell's value (``df = %sql ...``, or ``_`` after a cell;
  ``%%sql df <<`` also stores it, as jupysql users write it). ``:name``
  placeholders take their values from the notebook's variables and are
  always bound, never pasted into the SQL. ``--con NAME`` reads through
  the notebook variable ``NAME`` (an Engine, Connection or URL); the
  default is the current workspace's database
  (:func:`playlist_tools.workspace.current_workspace`), else
  ``$DATABASE_URL``, else the embedded server.
* ``%alembic ARGS``: the real Alembic command line, run in-process on the
  current workspace's ``alembic.ini`` and database (else the repo's),
  printing exactly what ``alembic ARGS`` prints in a terminal (its log
  lines included, on the cell's standard output in the order they come),
  with the workspace's folder left out of paths so the output is the same
  on every run.
  ``revision`` and ``merge`` without ``--rev-id`` get the next readable
  id (``0006`` after ``0005``), never a random one.
* Display: nothing to set. pandas already shows DataFrames in JupyterLab
  as HTML tables of at most 60 rows and 20 columns; notebooks keep those
  defaults rather than hiding set-up cells of their own.

Errors are one line (IPython's ``UsageError``), with no traceback.

Examples
--------
>>> from IPython.core.interactiveshell import InteractiveShell
>>> ip = InteractiveShell.instance()
>>> ip.run_line_magic("load_ext", "playlist_tools")
>>> ip.user_ns["n"] = 6
>>> ip.run_line_magic("sql", "SELECT CAST(:n AS int) * 7 AS answer")
   answer
0      42
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import sys
from typing import Any

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from playlist_tools import frames
from playlist_tools.errors import PlaylistToolsError

_CAPTURE = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*)\s*<<\s*(?P<rest>.*)$", re.DOTALL)


def _sql_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%sql", add_help=False, exit_on_error=False)
    parser.add_argument("--con", metavar="NAME", help="a notebook variable holding an Engine, Connection or URL")
    return parser


def _split_options(line: str) -> tuple[list[str], str]:
    """Leading ``--option value`` pairs, and the rest of the line as it is (SQL keeps its quotes)."""
    options: list[str] = []
    rest = line.lstrip()
    while rest.startswith("--"):
        words = rest.split(None, 2)
        if len(words) < 2:
            raise UsageError(f"{words[0]} needs a value, e.g. %sql --con engine SELECT 1")
        options += words[:2]
        rest = words[2] if len(words) > 2 else ""
    return options, rest


@magics_class
class PlaylistMagics(Magics):
    """``%sql``, ``%%sql`` and ``%alembic``; see the module docstring."""

    def _connectable(self, name: str | None) -> Any:
        if name is not None:
            if name not in self.shell.user_ns:
                raise UsageError(f"--con {name}: no notebook variable named {name!r}; assign an engine to it first")
            return self.shell.user_ns[name]
        from playlist_tools.workspace import current_workspace

        workspace = current_workspace()
        return workspace.engine if workspace is not None else None

    def _params(self, sql: str) -> dict[str, Any]:
        names = frames.placeholders(sql)
        missing = [name for name in names if name not in self.shell.user_ns]
        if missing:
            raise UsageError(f"the query uses :{missing[0]}, but no notebook variable {missing[0]!r} exists; define it")
        return {name: self.shell.user_ns[name] for name in names}

    @line_cell_magic
    def sql(self, line: str, cell: str | None = None) -> pd.DataFrame | None:
        """Run one query; return its DataFrame (``%sql --con NAME`` picks the database)."""
        capture = _CAPTURE.match(line) if cell is not None else None
        if capture:
            line = capture["rest"]
        words, inline = _split_options(line)
        try:
            options = _sql_parser().parse_args(words)
        except argparse.ArgumentError as err:
            raise UsageError(f"%sql: {err}; usage: %sql [--con NAME] SELECT ...") from err
        query = (inline if cell is None else f"{inline}\n{cell}").strip()
        if not query:
            raise UsageError("%sql needs a query, e.g. %sql SELECT * FROM songs LIMIT 5")
        try:
            frame = frames.read_frame(query, self._connectable(options.con), self._params(query))
        except PlaylistToolsError as err:
            raise UsageError(str(err)) from err
        if capture:
            self.shell.user_ns[capture["name"]] = frame
            return None
        return frame  # type: ignore[return-value]

    @line_magic
    def alembic(self, line: str) -> None:
        """Run ``alembic LINE`` in-process on the current workspace, printing what the CLI prints."""
        from playlist_tools.workspace import current_workspace

        workspace = current_workspace()
        argv = shlex.split(line)
        # One stream, as a terminal interleaves them: Alembic's log lines (stderr) between its output (stdout),
        # shown as the cell's text rather than as the red boxes JupyterLab gives stderr, which means errors.
        both = io.StringIO()
        with contextlib.redirect_stdout(both), contextlib.redirect_stderr(both):
            _run_alembic(argv, workspace)
        text = both.getvalue()
        if workspace is not None:
            text = text.replace(f"{workspace.directory}/", "")
        sys.stdout.write(text)


def _run_alembic(argv: list[str], workspace: Any) -> None:
    """``alembic.config.main`` with the workspace's ini and database filled in; exits are kept in."""
    from alembic.config import CommandLine, Config
    from alembic.script import ScriptDirectory

    from playlist_tools.history import REPO_ROOT, next_id

    command_line = CommandLine(prog="alembic")
    try:
        options = command_line.parser.parse_args(argv)
        if not hasattr(options, "cmd"):
            command_line.parser.error("too few arguments")
        home = workspace.directory if workspace is not None else REPO_ROOT
        ini = options.config[0] if options.config else str(home / "alembic.ini")
        # stdout: Alembic's default is the sys.stdout of its import, not the one redirected now.
        config = Config(file_=ini, ini_section=options.name, cmd_opts=options, stdout=sys.stdout)
        if workspace is not None:
            config.attributes.update(
                (key, value) for key, value in workspace.config.attributes.items() if key in ("url", "target_metadata")
            )
        if getattr(options, "rev_id", "n/a") is None:
            # revision and merge without --rev-id: the next readable id, as env.py gives autogenerate
            # on the plain CLI; hand-written revisions and merges never run env.py's hook.
            options.rev_id = next_id(ScriptDirectory.from_config(config))
        command_line.run_cmd(config, options)
    except SystemExit:
        pass  # argparse and alembic's FAILED: line have said why, as the CLI does


def load(shell: InteractiveShell) -> None:
    """Register the magics (what ``%load_ext playlist_tools`` calls)."""
    shell.register_magics(PlaylistMagics)
