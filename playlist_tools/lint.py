"""Safety lint for migrations: squawk over the SQL they would run.

:func:`lint` renders the offline SQL of a revision range (what ``alembic
upgrade START:END --sql`` prints) or takes SQL text, runs `squawk
<https://squawkhq.com>`_ (the ``squawk-cli`` wheel) over it, and returns
the findings as a DataFrame, one row per finding, each tied to the revision
whose SQL it is about. An empty frame means the SQL passed.

Which rules apply is set in ``.squawk.toml`` at the repo root, which lists
each rule left out and why; :func:`config_path` says how it is found.

Examples
--------
>>> from playlist_tools.lint import lint
>>> len(lint("base:head"))  # the committed history passes
0
>>> lint("SET lock_timeout = '10s'; ALTER TABLE songs DROP COLUMN album;")[["rule", "line"]]
              rule  line
0  ban-drop-column     1
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from playlist_tools.errors import PlaylistToolsError, RevisionError

__all__ = ["COLUMNS", "CONFIG_NAME", "lint", "offline_sql", "squawk_path", "config_path"]

COLUMNS = ["revision", "rule", "level", "message", "help", "line"]
"""Columns of :func:`lint`'s DataFrame."""

CONFIG_NAME = ".squawk.toml"
"""squawk's own config file name, so that ``squawk`` run by hand finds it too."""

_REPO_ROOT = Path(__file__).resolve().parent.parent
_MARKER = re.compile(r"^-- Running upgrade (?:\S+ )?-> (?P<revision>\S+)", re.MULTILINE)


def squawk_path() -> Path:
    """The ``squawk`` binary: beside this Python (a venv's ``bin``), else on ``PATH``.

    Raises
    ------
    PlaylistToolsError
        When there is none.
    """
    beside = Path(sys.executable).parent / "squawk"
    found = beside if beside.exists() else shutil.which("squawk")
    if not found:
        raise PlaylistToolsError("no squawk binary beside Python or on PATH; pip install squawk-cli")
    return Path(found)


def config_path(config: Config | None = None) -> Path | None:
    """The squawk config to use: beside the alembic.ini, else the repo's, else none (squawk's defaults)."""
    places = [Path(config.config_file_name).parent] if config and config.config_file_name else []
    for place in [*places, _REPO_ROOT]:
        if (place / CONFIG_NAME).is_file():
            return place / CONFIG_NAME
    return None


def _default_config() -> Config:
    config = Config(str(_REPO_ROOT / "alembic.ini"))
    config.attributes["skip_logging_config"] = True  # no INFO lines in notebook outputs
    return config


def offline_sql(revision_range: str = "base:head", config: Config | None = None) -> str:
    """The SQL ``alembic upgrade REVISION_RANGE --sql`` prints; no database needed.

    Parameters
    ----------
    revision_range : str
        ``"START:END"`` as for alembic (``"base:head"``, ``"0002:0004"`` for
        0003 and 0004), or one revision for just that revision: an id, or
        ``"head"`` for the newest (the one you just wrote).
    config : alembic.config.Config, optional
        Default: the repo's ``alembic.ini``.

    Raises
    ------
    RevisionError
        For a revision the history does not know.

    Examples
    --------
    >>> print(offline_sql("0004").split("-- ")[1].splitlines()[2])
    ALTER TABLE songs RENAME media_type TO file_format;
    """
    config = config or _default_config()
    buffer, saved = io.StringIO(), config.output_buffer
    config.output_buffer = buffer
    try:
        if ":" not in revision_range:
            revision_range = f"{_parent(config, revision_range)}:{revision_range}"
        command.upgrade(config, revision_range, sql=True)
    except CommandError as err:
        hint = "" if "alembic history" in str(err) else "; run `alembic history` to list the known revisions"
        raise RevisionError(f"cannot lint {revision_range!r}: {err}{hint}") from err
    finally:
        config.output_buffer = saved
    return buffer.getvalue()


def _parent(config: Config, revision: str) -> str:
    """The revision before ``revision`` (``base`` for the first), so one id lints just itself."""
    script = ScriptDirectory.from_config(config).get_revision(revision)
    if script is None or isinstance(script.down_revision, (tuple, list)):
        raise CommandError("give a START:END range for merges and for base")
    return script.down_revision or "base"


def _revisions_by_line(sql: str) -> list[str | None]:
    """For each line of the offline SQL, the revision it belongs to (None before the first)."""
    owner: list[str | None] = []
    current: str | None = None
    for line in sql.splitlines():
        match = _MARKER.match(line)
        if match:
            current = match["revision"].rstrip(",")
        owner.append(current)
    return owner


def lint(
    sql_or_range: str = "base:head", config: Config | None = None, *, squawk_config: str | Path | None = None
) -> pd.DataFrame:
    """Run squawk over a revision range's offline SQL, or over SQL text.

    Parameters
    ----------
    sql_or_range : str
        A revision range or id (see :func:`offline_sql`), or SQL text
        (anything with a space or a semicolon in it).
    config : alembic.config.Config, optional
        The migrations to render; default the repo's ``alembic.ini``.
    squawk_config : str or Path, optional
        A squawk config file; default see :func:`config_path`.

    Returns
    -------
    pandas.DataFrame
        Columns ``revision, rule, level, message, help, line``: ``revision``
        is the migration the finding is in (missing for SQL text and for
        Alembic's own ``alembic_version`` table), ``line`` is 1-based in
        the rendered SQL.

    Raises
    ------
    RevisionError
        For an unknown revision.
    PlaylistToolsError
        When squawk is missing or fails.
    """
    is_sql = bool(re.search(r"[\s;]", sql_or_range.strip()))
    sql = sql_or_range if is_sql else offline_sql(sql_or_range, config)
    settings = Path(squawk_config) if squawk_config is not None else config_path(config)
    argv = [str(squawk_path()), "--reporter", "json", "--stdin-filepath", "migration.sql"]
    if settings is not None:
        if not settings.is_file():
            raise PlaylistToolsError(f"squawk config {str(settings)!r} does not exist; pass an existing file or None")
        argv += ["--config", str(settings)]
    done = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=120)
    try:
        findings = json.loads(done.stdout or "[]")
    except json.JSONDecodeError as err:
        reason = (done.stderr.strip().splitlines() or ["no output"])[0]
        raise PlaylistToolsError(f"squawk failed (exit {done.returncode}): {reason}") from err
    owners = _revisions_by_line(sql)
    rows = [
        {
            "revision": None if is_sql or finding["line"] >= len(owners) else owners[finding["line"]],
            "rule": finding["rule_name"],
            "level": finding["level"],
            "message": finding["message"],
            "help": finding.get("help"),
            "line": finding["line"] + 1,  # squawk counts from 0
        }
        for finding in findings
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({column: "string" for column in COLUMNS[:-1]} | {"line": "Int64"})
