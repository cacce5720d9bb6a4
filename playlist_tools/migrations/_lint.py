"""Safety lint for migrations: squawk over the SQL they would run.

Private to :mod:`playlist_tools.migrations`, which re-exports :func:`lint`.
It renders the offline SQL (:func:`playlist_tools.migrations.sql`, what
``alembic upgrade START:END --sql`` prints) and hands it to :func:`findings`,
which runs `squawk <https://squawkhq.com>`_ (the ``squawk-cli`` wheel) and
returns one row per finding, each tied to the revision whose SQL it is about.

Which rules apply is set in ``.squawk.toml`` at the repo root, which lists
each rule left out and why; :func:`config_path` says how it is found.

Examples
--------
>>> findings("SET lock_timeout = '10s'; ALTER TABLE songs DROP COLUMN album;", config_path(None))[["rule", "line"]]
              rule  line
0  ban-drop-column     1
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import RangeNotAncestorError

from playlist_tools.errors import PlaylistToolsError, RevisionError
from playlist_tools.history import REPO_ROOT, alembic_errors, check_revision, read_config, resolve
from playlist_tools.migrations._verbs import sql

LINT_COLUMNS = ["revision", "rule", "level", "message", "help", "line"]
"""Columns of :func:`playlist_tools.migrations.lint`'s DataFrame."""

CONFIG_NAME = ".squawk.toml"
"""squawk's own config file name, so that ``squawk`` run by hand finds it too."""

SAFETY_RULES = (
    "require-concurrent-index-creation", "adding-not-nullable-field", "constraint-missing-not-valid",
    "adding-foreign-key-constraint", "disallowed-unique-constraint",
)
"""Rules a new revision must pass even where the squawk config leaves them out.

The tutorial's committed revisions (the ids in the repo's ``alembic/versions``)
keep ``.squawk.toml``'s documented exclusions; every other revision is linted
again with these five switched on, because autogenerate now writes the
lock-safe forms (:mod:`playlist_tools.migrations.safe`) that pass them.
"""


def _tutorial_revisions() -> set[str]:
    return {path.name.split("_", 1)[0] for path in (REPO_ROOT / "alembic" / "versions").glob("*.py")}


def _strict(settings: Path | None, folder: Path) -> Path:
    """A copy of ``settings`` (squawk's TOML) with :data:`SAFETY_RULES` taken out of ``excluded_rules``."""
    text = settings.read_text() if settings is not None else ""
    for rule in SAFETY_RULES:
        text = re.sub(rf'"{re.escape(rule)}"\s*,?', "", text)
    strict = folder / CONFIG_NAME
    strict.write_text(text)
    return strict


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
    for place in [*places, REPO_ROOT]:
        if (place / CONFIG_NAME).is_file():
            return place / CONFIG_NAME
    return None


def as_range(config: Config, sql_or_range: str) -> str:
    """A revision range that holds at least one migration, upward; one revision as the range of itself alone.

    A range must run from older to newer, as ``alembic upgrade START:END
    --sql`` does: a reversed one (``'0005:0001'``) or an empty one
    (``'0005:0005'``) would render no SQL, and "no findings" for SQL never
    linted would be a lie, so both are refused, with the range to write.

    Raises
    ------
    RevisionError
        For an empty or unknown revision, a range with a missing end, a
        reversed or empty range, or one revision that is a merge or base.

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> as_range(migrations.config(), "0004"), as_range(migrations.config(), "base:0002")
    ('0003:0004', 'base:0002')
    >>> as_range(migrations.config(), "0005:0001")
    Traceback (most recent call last):
    ...
    playlist_tools.errors.RevisionError: revision range '0005:0001' runs backwards (0005 is newer than 0001);
    lint those migrations with '0001:0005'
    """
    check_revision(sql_or_range)
    script = ScriptDirectory.from_config(config)
    if ":" not in sql_or_range:
        with alembic_errors(config):
            alone = script.get_revision(sql_or_range)
        if alone is None or isinstance(alone.down_revision, (tuple, list)):
            raise RevisionError(
                f"cannot lint {sql_or_range!r} alone: give a START:END range for merges and for base, e.g. 'base:head'"
            )
        return f"{alone.down_revision or 'base'}:{sql_or_range}"
    start, _, end = sql_or_range.partition(":")
    with alembic_errors(config):
        try:
            between = list(script.iterate_revisions(end, start))
        except RangeNotAncestorError as err:
            list(script.iterate_revisions(start, end))  # parallel branches raise here too, and say so
            raise RevisionError(
                f"revision range {sql_or_range!r} runs backwards ({start} is newer than {end}); "
                f"lint those migrations with '{end}:{start}'"
            ) from err
    if not between:
        raise RevisionError(
            f"revision range {sql_or_range!r} holds no migration (it starts where it ends); "
            f"lint one revision alone with {end!r}, or widen the range, e.g. 'base:{end}'"
        )
    return sql_or_range


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


def is_sql(sql_or_range: str) -> bool:
    """Whether ``sql_or_range`` is SQL text (it has a space or a semicolon) rather than revisions."""
    return bool(re.search(r"[\s;]", sql_or_range.strip()))


def findings(sql: str, settings: Path | None, *, by_revision: bool = True) -> pd.DataFrame:
    """Run squawk over ``sql`` with the config file ``settings``; one row per finding.

    ``by_revision`` ties each finding to the revision whose ``-- Running
    upgrade`` block it is in (offline SQL from Alembic); SQL text has none.
    """
    argv = [str(squawk_path()), "--reporter", "json", "--stdin-filepath", "migration.sql"]
    if settings is not None:
        if not settings.is_file():
            raise PlaylistToolsError(f"squawk config {str(settings)!r} does not exist; pass an existing file or None")
        argv += ["--config", str(settings)]
    done = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=120)
    try:
        found = json.loads(done.stdout or "[]")
    except json.JSONDecodeError as err:
        reason = (done.stderr.strip().splitlines() or ["no output"])[0]
        raise PlaylistToolsError(f"squawk failed (exit {done.returncode}): {reason}") from err
    owners = _revisions_by_line(sql) if by_revision else []
    rows = [
        {
            "revision": owners[finding["line"]] if finding["line"] < len(owners) else None,
            "rule": finding["rule_name"],
            "level": finding["level"],
            "message": finding["message"],
            "help": finding.get("help"),
            "line": finding["line"] + 1,  # squawk counts from 0
        }
        for finding in found
    ]
    frame = pd.DataFrame(rows, columns=LINT_COLUMNS)
    return frame.astype({column: "string" for column in LINT_COLUMNS[:-1]} | {"line": "Int64"})


def lint(
    config: Config | None = None, sql_or_range: str = "base:head", *, squawk_config: str | Path | None = None
) -> pd.DataFrame:
    """Run squawk over the offline SQL of a revision range, or over SQL text.

    ``playlist-tools lint RANGE`` on the command line. The rules, and the
    reason for each one left out, are in the repo's ``.squawk.toml``; a
    revision that is not one of the tutorial's committed ones is also held
    to :data:`SAFETY_RULES` (``CONCURRENTLY``, ``NOT VALID``, ...).

    Parameters
    ----------
    config : alembic.config.Config or None
        See the module docstring; no database is needed.
    sql_or_range : str
        ``"START:END"`` as for :func:`sql`, or one revision (an id, or
        ``"head"`` for the newest: the one you just wrote) for that revision
        alone, or SQL text (anything with a space or a semicolon in it).
    squawk_config : str or Path, optional
        A squawk config file; default the ``.squawk.toml`` beside the
        config's ``alembic.ini``, else the repo's, else squawk's defaults.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LINT_COLUMNS`: ``revision`` is the migration the
        finding is in (missing for SQL text and for Alembic's own
        ``alembic_version`` table), ``line`` is 1-based in the SQL. Empty
        when the SQL passes.

    Raises
    ------
    RevisionError
        For an unknown or empty revision, or a range that is reversed,
        empty or missing an end (see :func:`as_range`).
    SettingError
        When the config's file is not an alembic.ini.
    PlaylistToolsError
        When squawk is missing or fails.

    Examples
    --------
    >>> lint(None, "0001:0002").empty
    True
    >>> lint(None, "SET lock_timeout = '10s'; ALTER TABLE songs DROP COLUMN album;")[["rule", "line"]]
                  rule  line
    0  ban-drop-column     1
    """
    cfg = resolve(config)
    read_config(cfg)
    settings = Path(squawk_config) if squawk_config is not None else config_path(cfg)
    if is_sql(sql_or_range):
        return findings(sql_or_range, settings, by_revision=False)
    text = sql(cfg, as_range(cfg, sql_or_range))
    found = findings(text, settings)
    tutorial = _tutorial_revisions()
    if all(owner is None or owner in tutorial for owner in _revisions_by_line(text)):
        return found
    with tempfile.TemporaryDirectory(prefix="playlist-tools-squawk-") as folder:
        strict = findings(text, _strict(settings, Path(folder)))
    new = strict[strict["rule"].isin(SAFETY_RULES) & strict["revision"].notna()
                 & ~strict["revision"].isin(sorted(tutorial))]
    return pd.concat([found, new]).sort_values("line", kind="stable").reset_index(drop=True)
