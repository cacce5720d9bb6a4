"""The IPython extension: ``%load_ext playlist_tools`` gives ``%sql``, ``%%sql`` and ``%alembic``.

* ``%sql SELECT ...`` / ``%%sql``: the query through
  :func:`playlist_tools.frames.read_frame`, faithful dtypes and all; the
  DataFrame is the cell's value (``df = %sql ...``, or ``_`` after a cell;
  ``df << SELECT ...`` and ``df= <<`` also store it, as jupysql users write
  it). ``:name`` placeholders take their values from the notebook's
  variables and are always bound, never pasted into the SQL. ``--con NAME``
  reads through the notebook variable ``NAME`` (an Engine, Connection or
  URL); the default is the current workspace's database
  (:func:`playlist_tools.workspace.current_workspace`), else
  ``$DATABASE_URL``, else the embedded server. ``--file PATH`` runs a file.

  Decisions, against jupysql's habits (``docs/sql-magic.md`` has the table
  of idioms): statements that return no rows (``CREATE TABLE``,
  ``INSERT``) run, as in jupysql, and print ``Done.`` or ``N rows
  affected.``; all statements of one call are one transaction, committed
  at its end (a Connection's is joined: its owner commits), so
  ``BEGIN``/``COMMIT`` are refused. Rows of a statement that is not a
  query (``RETURNING``, ``SHOW``, ``EXPLAIN``) come through the driver in
  pandas' nullable dtypes. ``{{name}}`` templating is *not* supported, nor
  IPython's ``{name}``/``$name`` expansion (off for ``%sql``: it would paste
  values into SQL and mangle ``$$`` quotes): each is refused in one line
  that says to bind ``:name``. jupysql's other options (``--save``,
  ``--persist``, ``-l``, a URL as first word ...) are refused in one line
  naming ours, and ``%config SqlMagic.displaylimit`` sets pandas'
  ``display.max_rows``.
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
>>> _ = ip.extension_manager.load_extension("playlist_tools")  # %load_ext playlist_tools
>>> ip.user_ns["n"] = 6
>>> ip.run_line_magic("sql", "SELECT CAST(:n AS int) * 7 AS answer")
   answer
0      42
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from alembic.config import CommandLine, Config
from alembic.script import ScriptDirectory
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from sqlalchemy.engine import URL, Connection, Engine
from traitlets import Any as AnyTrait
from traitlets import Bool, observe
from traitlets.config import Configurable

from playlist_tools import db, frames, history
from playlist_tools._sql_text import sql_text, tokens
from playlist_tools.errors import PlaylistToolsError, first_line, one_line
from playlist_tools.history import REPO_ROOT, next_id
from playlist_tools.workspace import current_workspace

# `name <<`, `name= <<`, `name =<<`: jupysql's (and ipython-sql's) ways of storing the result in a variable.
_CAPTURE = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*)\s*=?\s*<<\s*(?P<rest>.*)$", re.DOTALL)
_OPTION = re.compile(r"-[A-Za-z]|--[A-Za-z]")  # `-- note` (a space after) is an SQL comment, not an option
_URL = re.compile(r"[A-Za-z][\w+.-]*://")
_TEMPLATE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_EXPANSION = re.compile(r"\{\{?\s*(\w+)\s*\}?\}|\$([A-Za-z_]\w*)")
USAGE = "%sql [--con NAME] [--file PATH] [NAME <<] SQL"
HELP = f"""usage: {USAGE}

Run SQL on the database; the last statement's rows come back as a pandas DataFrame.

  --con NAME     the notebook variable NAME (an Engine, Connection or URL) picks the database;
                 default: the current workspace's, else $DATABASE_URL, else the embedded server
  --file PATH    run the SQL in the file PATH
  NAME <<        also store the DataFrame in the notebook variable NAME
  :name          binds the notebook variable name (never pasted into the SQL)

Statements that return no rows (CREATE, INSERT ...) run too; all statements of one call are one
transaction, committed at its end (on a Connection: joined, and its owner commits).
Settings: %config SqlMagic.displaylimit = 20 (rows shown). See docs/sql-magic.md."""
_DOCS = "docs/sql-magic.md lists jupysql's idioms and ours"

# What the first word of a statement says about it.
_QUERIES = {"select", "with", "values", "table", "("}  # rows, read by frames.read_frame with its type map
_WRITES_IN_WITH = {"insert", "update", "delete", "merge"}
_DML = {"insert", "update", "delete", "merge", "copy"}
_TRANSACTION = {"begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release"}

_CONNECTIONS = ("%sql uses one database per call, not a list of connections (jupysql's {option}): the current "
                "workspace's, else $DATABASE_URL, else the embedded server; pick another with --con NAME")
_MAKES_NO_CONNECTIONS = ("%sql makes no connections of its own (jupysql's {option}); make an engine "
                         "(engine = playlist_tools.db.create_engine(url, ...)) and pass it: "
                         "%sql --con engine SELECT ...")
_WRITES_NO_FRAMES = ("%sql does not write DataFrames (jupysql's {option}); write one with "
                     "playlist_tools.frames.write_frame(df, 'table', con, if_exists='replace' or 'append')")
_NO_SNIPPETS = ("%sql keeps no saved snippets (jupysql's {option}); name the query in the cell "
                "(WITH name AS (...) SELECT ...), keep it in a Python string (read_frame(query)), "
                "or save it in the database (%sql CREATE VIEW name AS ...)")
JUPYSQL_OPTIONS = {
    **dict.fromkeys(("-l", "--connections"), _CONNECTIONS),
    **dict.fromkeys(("-x", "--close"), "%sql keeps no connection open to close (jupysql's {option}): each call "
                    "borrows one and gives it back; dispose of your own engine with engine.dispose()"),
    **dict.fromkeys(("-c", "--creator", "-s", "--section", "-a", "--connection_arguments", "--connection-arguments",
                     "-A", "--alias"), _MAKES_NO_CONNECTIONS),
    **dict.fromkeys(("-p", "--persist", "-P", "--persist-replace", "--append", "-n", "--no-index"), _WRITES_NO_FRAMES),
    **dict.fromkeys(("-S", "--save", "-w", "--with", "-N", "--no-execute"), _NO_SNIPPETS),
    "--interact": ("%sql has no widgets (jupysql's {option}); bind a notebook variable with :name "
                   "and run the cell again after changing it"),
}
"""jupysql's options that %sql does not take, each with the one-line message naming what to do instead."""


def _options(line: str) -> tuple[dict[str, str], str]:
    """The leading options of a ``%sql`` line (``--con NAME``, ``--con=NAME``), and the SQL after them as typed."""
    options: dict[str, str] = {}
    rest = line.lstrip()
    while _OPTION.match(rest):
        word, _, rest = rest.partition(" ") if " " in rest.split("\n", 1)[0] else rest.partition("\n")
        name, equals, value = word.partition("=")
        if name in JUPYSQL_OPTIONS:
            raise UsageError(JUPYSQL_OPTIONS[name].format(option=name) + f"; {_DOCS}")
        if name in ("-h", "--help"):
            options["help"] = "yes"
            rest = rest.lstrip()
            continue
        if name in ("--con", "--file", "-f"):
            if not equals:
                value, _, rest = rest.lstrip().partition(" ") if rest.strip() else ("", "", "")
            if not value.strip():
                example = "--con engine SELECT 1" if name == "--con" else "--file query.sql"
                raise UsageError(f"%sql {name} needs a value, e.g. %sql {example}")
            options["file" if name == "-f" else name.lstrip("-")] = value.strip()
            rest = rest.lstrip()
            continue
        raise UsageError(f"%sql: unknown option {one_line(name, 40)}; usage: {USAGE}; {_DOCS}")
    return options, rest


def _words(sql: str) -> list[str]:
    """The lower-cased words and single characters of ``sql`` outside literals and comments."""
    return [piece.lower() for kind, piece in tokens(sql) if kind in ("word", None) and not piece.isspace()]


def statements(sql: str) -> list[str]:
    """``sql`` cut at each ``;`` outside literals and comments; statements of only comments are left out.

    Examples
    --------
    >>> statements("CREATE TABLE t (x text); INSERT INTO t VALUES (';'); -- done")
    ['CREATE TABLE t (x text)', " INSERT INTO t VALUES (';')"]
    """
    pieces: list[list[str]] = [[]]
    for kind, piece in tokens(sql):
        if kind is None and piece == ";":
            pieces.append([])
        else:
            pieces[-1].append(piece)
    texts = ["".join(piece) for piece in pieces]
    return [text.rstrip() for text in texts if _words(text)]


def _check_no_pasting(sql: str) -> None:
    """Refuse ``{{name}}`` (jupysql's templating), ``{name}`` and ``$name`` (IPython's): %sql binds, never pastes.

    In a string literal only ``{{name}}`` is refused: ``'{rock,jazz}'`` is an array literal.
    """
    pieces = list(tokens(sql))
    outside = "".join(piece if kind in ("word", None) else " " for kind, piece in pieces)
    found = _EXPANSION.search(outside)
    quoted = False
    if found is None:
        literals = (_TEMPLATE.search(piece) for kind, piece in pieces if kind in ("string", "escaped"))
        found, quoted = next((match for match in literals if match), None), True
    if found is None:
        return
    name = next(group for group in found.groups() if group)
    whose = "jupysql's templating" if found.group().startswith("{{") else "IPython's expansion"
    raise UsageError(
        f"%sql does not paste {found.group()} into the SQL ({whose}: open to SQL injection); bind the value "
        f"as :{name}{' without the quotes' if quoted else ''}, e.g. WHERE x = :{name}; a table or column name "
        "goes in the SQL itself (or build the query in Python and use frames.read_frame)"
    )


def _first_word(statement: str) -> str:
    words = _words(statement)
    return words[0] if words else ""


def _is_query(statement: str) -> bool:
    """Whether frames.read_frame can read ``statement`` (a SELECT, WITH, VALUES or TABLE that writes nothing)."""
    words = _words(statement)
    if not words or words[0] not in _QUERIES:
        return False
    return words[0] != "with" or not _WRITES_IN_WITH.intersection(words)


def _check_connectable(name: str, value: object) -> None:
    if isinstance(value, (Engine, Connection, URL, str)):
        return
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    if kind == "Session" or hasattr(value, "get_bind"):
        fix = f"pass its connection (conn = {name}.connection(); %sql --con conn ...) or its engine"
    else:
        fix = "pass the name of a variable holding an Engine, a Connection or a URL"
    raise UsageError(f"--con {name}: {name} is {article} {kind}, not an Engine, Connection or URL; {fix}")


def _driver_frame(result: sa.CursorResult[Any]) -> pd.DataFrame:
    """Rows of a statement frames.read_frame cannot read (RETURNING, SHOW, EXPLAIN), in nullable dtypes."""
    return pd.DataFrame(result.fetchall(), columns=list(result.keys())).convert_dtypes()


class SqlMagic(Configurable):
    """jupysql's settings, so that ``%config SqlMagic.NAME = value`` does what it says or says why not.

    ``displaylimit`` is honoured (pandas' ``display.max_rows``; 0 or None
    shows every row); ``autopandas``, ``named_parameters`` and
    ``autocommit`` are what %sql always does; every other setting is refused
    with one line naming what to do instead (``%config`` prints it as an error).
    """

    displaylimit = AnyTrait(None, allow_none=True, help="rows shown of a result: pandas' display.max_rows").tag(
        config=True)
    autopandas = Bool(True, help="always on: %sql returns a pandas DataFrame").tag(config=True)
    named_parameters = AnyTrait("enabled", help="always on: :name binds a notebook variable").tag(config=True)
    autocommit = Bool(True, help="always on: each %sql call is one transaction, committed").tag(config=True)
    autolimit = AnyTrait(None, allow_none=True, help="not taken: write LIMIT n in the query").tag(config=True)
    autopolars = Bool(False, help="not taken: polars.from_pandas(df)").tag(config=True)
    feedback = AnyTrait(None, allow_none=True, help="not taken").tag(config=True)
    style = AnyTrait(None, allow_none=True, help="not taken: DataFrames render as pandas' HTML tables").tag(config=True)
    short_errors = Bool(True, help="always on: errors are one line").tag(config=True)
    displaycon = Bool(False, help="not taken").tag(config=True)
    dsn_filename = AnyTrait(None, allow_none=True, help="not taken: --con NAME").tag(config=True)
    lazy_execution = Bool(False, help="not taken").tag(config=True)
    column_local_vars = Bool(False, help="not taken: df['column']").tag(config=True)
    polars_dataframe_kwargs = AnyTrait(None, allow_none=True, help="not taken").tag(config=True)

    _ALWAYS = {"autopandas": (True,), "named_parameters": ("enabled", True), "autocommit": (True,),
               "short_errors": (True,)}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loaded = True  # settings from a config file at start-up are not refused: %load_ext must work

    @observe("displaylimit", "autopandas", "named_parameters", "autocommit", "autolimit", "autopolars", "feedback",
             "style", "short_errors", "displaycon", "dsn_filename", "lazy_execution", "column_local_vars",
             "polars_dataframe_kwargs")
    def _changed(self, change: dict[str, Any]) -> None:
        name, value = change["name"], change["new"]
        if name == "displaylimit":
            if value is not None and (not isinstance(value, int) or value < 0):
                raise UsageError(f"SqlMagic.displaylimit = {value!r}: give a whole number of rows (0: all)")
            pd.set_option("display.max_rows", value or None)
            return
        if (name in self._ALWAYS and value in self._ALWAYS[name]) or not getattr(self, "_loaded", False):
            return
        help_text = self.class_traits()[name].help
        fix = help_text if help_text.startswith(("always", "not taken:")) else "not taken"
        raise UsageError(f"SqlMagic.{name} is jupysql's setting, which %sql does not take ({fix}); {_DOCS}")


@magics_class
class PlaylistMagics(Magics):
    """``%sql``, ``%%sql`` and ``%alembic``; see the module docstring."""

    def _connectable(self, name: str | None) -> Any:
        if name is not None:
            if name not in self.shell.user_ns:
                raise UsageError(f"--con {name}: no notebook variable named {name!r}; assign an engine to it first")
            value = self.shell.user_ns[name]
            _check_connectable(name, value)
            return value
        workspace = current_workspace()
        return workspace.engine if workspace is not None else None

    def _params(self, sql: str) -> dict[str, Any]:
        names = frames.placeholders(sql)
        missing = [name for name in names if name not in self.shell.user_ns]
        if missing:
            raise UsageError(f"the query uses :{missing[0]}, but no notebook variable {missing[0]!r} exists; define it")
        return {name: self.shell.user_ns[name] for name in names}

    def _check_first_word(self, sql: str) -> None:
        """jupysql's ``%sql URL`` and ``%sql engine`` (a connection as the first word) get our spelling."""
        if _URL.match(sql):  # never echoed: it may hold a password
            raise UsageError(
                "%sql takes no connection URL as its first word (jupysql's %sql URL); put it in a variable "
                "and pass that: url = '...' then %sql --con url SELECT ..."
            )
        first = sql.split(None, 1)[0] if sql.split() else ""
        if isinstance(self.shell.user_ns.get(first), (Engine, Connection, URL)):
            raise UsageError(
                f"%sql takes its connection with --con (jupysql's %sql {first} switches to it): "
                f"%sql --con {first} SELECT ..."
            )

    @no_var_expand
    @line_cell_magic
    def sql(self, line: str, cell: str | None = None) -> pd.DataFrame | None:
        """Run SQL; return the last statement's rows as a DataFrame. ``%sql --help`` says more."""
        capture = _CAPTURE.match(line)
        if capture:
            line = capture["rest"]
        options, inline = _options(line)
        if capture is None:  # `%sql --con engine x << SELECT ...` too
            capture = _CAPTURE.match(inline)
            inline = capture["rest"] if capture else inline
        if "help" in options:
            print(HELP)
            return None
        query = (inline if cell is None else f"{inline}\n{cell}").strip()
        if "file" in options:
            if query:
                raise UsageError(f"%sql --file {options['file']}: give the SQL in the file or after %sql, not both")
            query = self._read_file(options["file"])
        self._check_first_word(query)
        todo = statements(query)
        if not todo:
            raise UsageError("%sql needs a query, e.g. %sql SELECT * FROM songs LIMIT 5")
        _check_no_pasting(query)
        for statement in todo:
            if _first_word(statement) in _TRANSACTION:
                raise UsageError(
                    f"%sql runs no {_first_word(statement).upper()}: each %sql call is one transaction, committed "
                    "at its end; for a longer one pass a Connection (conn = engine.connect(); %sql --con conn ...) "
                    "and call conn.commit() or conn.rollback()"
                )
        con = self._connectable(options.get("con"))
        try:
            frame = self._run(todo, con)
        except PlaylistToolsError as err:
            raise UsageError(str(err)) from err
        except sa.exc.DBAPIError as err:
            raise UsageError(f"%sql: {one_line(first_line(err.orig or err))}") from err
        if capture and frame is not None:
            self.shell.user_ns[capture["name"]] = frame
            return None
        return frame

    def _read_file(self, path: str) -> str:
        try:
            return Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            why = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
            raise UsageError(f"%sql --file {path}: cannot read it ({why}); pass the path of an SQL file") from err

    def _run(self, todo: list[str], con: db.Connectable) -> pd.DataFrame | None:
        """One query alone goes straight to frames.read_frame; anything else runs in one transaction on ``con``.

        A Connection's transaction is joined (its statements in a savepoint, so a failure undoes only them):
        its owner commits.
        """
        if len(todo) == 1 and _is_query(todo[0]):
            return frames.read_frame(todo[0], con, self._params(todo[0]))
        if isinstance(con, Connection):  # a savepoint in its (auto-begun) transaction, which its owner commits
            with con.begin_nested():
                return self._run_all(todo, con)
        with db.transaction(con) as connection:
            return self._run_all(todo, connection)

    def _run_all(self, todo: list[str], connection: Connection) -> pd.DataFrame | None:
        for statement in todo[:-1]:
            connection.execute(sa.text(sql_text(statement)), self._params(statement))
        last = todo[-1]
        if _is_query(last):
            return frames.read_frame(last, connection, self._params(last))
        result = connection.execute(sa.text(sql_text(last)), self._params(last))
        if result.returns_rows:
            return _driver_frame(result)
        print(f"{result.rowcount} rows affected." if _first_word(last) in _DML else "Done.")
        return None

    @line_magic
    def alembic(self, line: str) -> None:
        """Run ``alembic LINE`` in-process on the current workspace, printing what the CLI prints."""
        workspace = current_workspace()
        try:
            argv = shlex.split(line)
        except ValueError as err:  # shlex: "No closing quotation", "No escaped character"
            raise UsageError(
                f"%alembic {one_line(line, 80)}: {err} (the line is split as a shell would); close the quote, "
                "or quote the argument with the other kind: %alembic upgrade \"it's\""
            ) from err
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
    command_line = CommandLine(prog="alembic")
    try:
        options = command_line.parser.parse_args(argv)
        if not hasattr(options, "cmd"):
            command_line.parser.error("too few arguments")
        home = workspace.directory if workspace is not None else REPO_ROOT
        ini = options.config[0] if options.config else str(home / "alembic.ini")
        if options.config:  # checked first: configparser's own error quotes the file's first line
            try:
                history.config(ini=ini)
            except PlaylistToolsError as err:
                raise UsageError(f"%alembic -c {ini}: {err}") from err
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
    """Register the magics (what ``%load_ext playlist_tools`` calls), and jupysql's settings for ``%config``."""
    shell.register_magics(PlaylistMagics)
    if not any(type(c).__name__ == "SqlMagic" for c in shell.configurables):  # jupysql's own, or ours already
        shell.configurables.append(SqlMagic(parent=shell))
