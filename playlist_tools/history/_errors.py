"""The one translator of Alembic's exceptions into ours, keyed on their types.

Alembic reports a bad revision as a :class:`alembic.util.CommandError`
whose ``__cause__`` says what kind of problem it is (an unknown id, several
heads, a relative step past the end), or, from the public revision-map
API, as that cause itself; an empty id (``''``, or a range with a missing
end such as ``'0003:'``) trips a bare ``AssertionError`` in its revision map.
:func:`translate` turns each into one of :mod:`playlist_tools.errors`, one
line of at most :data:`playlist_tools.errors.MESSAGE_LIMIT` characters naming the bad value and
the fix. It never reads Alembic's message text to decide anything.
:func:`check_revision` refuses empty ids before Alembic sees them, so that
the message can quote what was typed.

There are two doors, and both use :func:`translate`:

* the Python API wraps every call into Alembic in :func:`alembic_errors`;
* ``alembic/env.py`` runs inside :func:`cli_errors`, which hands our error
  to the ``alembic`` CLI as a ``CommandError`` (printed as one ``FAILED:``
  line, no traceback) with ours as its cause, which :func:`alembic_errors`
  unwraps again when the API called in.

Examples
--------
>>> from alembic.script import ScriptDirectory
>>> from alembic.script.revision import ResolutionError
>>> from playlist_tools import migrations
>>> script = ScriptDirectory.from_config(migrations.config())
>>> print(translate(ResolutionError("No such revision", "nope"), script))  # doctest: +ELLIPSIS
unknown revision 'nope'; known revisions: 0001, 0002, ...; or use head, base, +N or -N (`alembic history` lists them)
>>> check_revision("0003:")
Traceback (most recent call last):
...
playlist_tools.errors.RevisionError: revision range '0003:' has no end; write START:END, such as '0003:head'
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import MultipleHeads, ResolutionError
from alembic.script.revision import RevisionError as AlembicRevisionError
from alembic.util import CommandError

from playlist_tools.errors import MigrationError, PlaylistToolsError, RevisionError, SettingError, one_line

_EMPTY_HINT = (
    "name one: an id such as 0004, head, base, +N or -N, or a range START:END such as base:head "
    "(`alembic history` lists the ids)"
)


def _shown(value: object) -> str:
    """A value as quoted in a message: its repr, cut so the fix after it still fits."""
    return one_line(repr(value), 80)


def check_revision(text: str) -> None:
    """Refuse an empty revision id, alone or as one end of a ``START:END`` range.

    Alembic's revision map meets these with a bare ``AssertionError``; this
    says which value was wrong and what to write instead.

    Raises
    ------
    RevisionError
        For ``''``, blanks, ``':'``, ``'0003:'``, ``':0003'`` or ``'a:b:c'``.

    Examples
    --------
    >>> check_revision("base:head"), check_revision("0004")
    (None, None)
    >>> check_revision("")
    Traceback (most recent call last):
    ...
    playlist_tools.errors.RevisionError: empty revision ''; name one: an id such as 0004, ...
    """
    if not text.strip():
        raise RevisionError(f"empty revision {_shown(text)}; {_EMPTY_HINT}")
    if ":" not in text:
        return
    start, _, end = text.partition(":")
    if ":" in end:
        problem, example = "more than one ':'", "base:head"
    elif not start.strip() and not end.strip():
        problem, example = "neither start nor end", "base:head"
    elif not end.strip():
        problem, example = "no end", f"{start}:head"
    elif not start.strip():
        problem, example = "no start", f"base:{end}"
    else:
        return
    raise RevisionError(f"revision range {_shown(text)} has {problem}; write START:END, such as {example!r}")


def read_config(cfg: Config) -> None:
    """Read ``cfg``'s ini file now, so that a file that is not one fails with one line naming it.

    configparser's own message quotes the file's first line, which for a
    mistyped ``-c`` can be anything (``/etc/passwd``); ours does not.

    Raises
    ------
    SettingError
        When the file is not an INI file, or has no ``script_location``.
    """
    name = cfg.config_file_name
    try:
        location = cfg.get_alembic_option("script_location")
    except (configparser.Error, UnicodeDecodeError, CommandError) as err:
        raise _not_an_ini(name, err) from err
    if not location:
        raise SettingError(
            f"{str(name)!r} has no script_location in an [alembic] section, so it is not an alembic.ini; "
            "pass the path of an alembic.ini"
        )


def _not_an_ini(name: object, err: BaseException) -> SettingError:
    return SettingError(
        f"{str(name)!r} is not an alembic.ini (an INI file with an [alembic] section, "
        f"{type(err).__name__}); pass the path of an alembic.ini"
    )


def _known(script: ScriptDirectory) -> str:
    ids = sorted(s.revision for s in script.walk_revisions())
    if len(ids) > 8:  # a long history: the message must stay one readable line
        return f"{', '.join(ids[:3])}, ..., {', '.join(ids[-3:])} ({len(ids)} in all)"
    return ", ".join(ids) if ids else "none yet"


def _from_revision_map(err: BaseException) -> bool:
    """Whether ``err`` is the bare ``AssertionError`` Alembic's revision map raises for an empty id."""
    if not isinstance(err, AssertionError):
        return False
    frame = err.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    return frame is not None and frame.tb_frame.f_globals.get("__name__") == "alembic.script.revision"


def _frames(err: BaseException) -> list[tuple[str, str]]:
    """``(module name, file name)`` of each frame ``err`` passed through, outermost first."""
    found, frame = [], err.__traceback__
    while frame is not None:
        found.append((str(frame.tb_frame.f_globals.get("__name__")), frame.tb_frame.f_code.co_filename))
        frame = frame.tb_next
    return found


def _revision_files(script: ScriptDirectory) -> list[tuple[Path, object, tuple[str, ...]]]:
    """``(path, revision, down revisions)`` of every revision file, read with Python's own parser, never run.

    What a broken history's message needs: the revision map cannot be built then.
    """
    found = []
    for folder in script.version_locations or [script.versions]:
        for path in sorted(Path(folder).glob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError, OSError):
                continue
            names: dict[str, object] = {}
            for node in tree.body:
                target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
                    node.target if isinstance(node, ast.AnnAssign) else None)
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and node.value:
                    with contextlib.suppress(ValueError, SyntaxError):
                        names[target.id] = ast.literal_eval(node.value)
            down = names.get("down_revision")
            downs = (down,) if isinstance(down, str) else tuple(d for d in down or () if isinstance(d, str))
            found.append((path, names.get("revision"), downs))
    return found


def broken_history(err: BaseException, script: ScriptDirectory) -> MigrationError | None:
    """One line for a history Alembic cannot load, naming the revision file and the fix; ``None`` for other errors.

    Two ways a revision file breaks every command: it is not valid Python (or
    fails when loaded), and its ``down_revision`` names no revision, for which
    Alembic's revision map raises a bare ``KeyError``.
    """
    frames = _frames(err)
    if isinstance(err, KeyError) and frames and frames[-1][0] == "alembic.script.revision" and err.args:
        missing = err.args[0]
        files = _revision_files(script)
        ids = ", ".join(sorted(str(rev) for _, rev, _ in files if isinstance(rev, str))) or "none"
        for path, rev, downs in files:
            if missing in downs:
                return MigrationError(one_line(
                    f"{path}: down_revision {missing!r} names no revision of the history ({ids}); "
                    f"set it to the revision {rev} follows, or delete the file"))
        return None
    if any(module == "alembic.util.pyfiles" for module, _ in frames):
        # pyfiles also runs env.py, and env.py runs our code: only a file in the versions folders is a revision's.
        folders = [Path(folder).resolve() for folder in script.version_locations or [script.versions]]
        if isinstance(err, SyntaxError):
            where, detail = err.filename, f"line {err.lineno}: {err.msg}"
        else:
            where = next((name for _, name in reversed(frames) if name.endswith(".py")
                          and Path(name).resolve().parent in folders), None)
            detail = f"{type(err).__name__}: {err}"
        if where is None or Path(where).resolve().parent not in folders:
            return None
        return MigrationError(one_line(
            f"revision file {where} does not load ({detail}); fix it or delete it, "
            "then run the command again"))
    return None


def _behind_head(err: BaseException) -> tuple[str, ...] | None:
    """The database's heads, when ``err`` is autogenerate's refusal of a database behind head, else None.

    ``alembic check`` and ``alembic revision --autogenerate`` compare the models with head and refuse a database
    that is not there with a bare "Target database is not up to date."; the revisions the database is at are the
    ``rev`` it was refused for, in the raising frame (``RevisionContext._run_environment``).
    """
    if not isinstance(err, CommandError):
        return None
    frame = err.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    if frame is None or frame.tb_frame.f_globals.get("__name__") != "alembic.autogenerate.api":
        return None
    local = frame.tb_frame.f_locals
    if frame.tb_frame.f_code.co_name != "_run_environment" or not local.get("autogenerate"):
        return None
    if (local.get("self") and getattr(local["self"], "command_args", {}).get("sql")):
        return None  # the other refusal there: --sql with --autogenerate
    rev = local.get("rev")
    return tuple(rev) if isinstance(rev, (tuple, list)) else ((rev,) if rev else ())


def translate(err: BaseException, script: ScriptDirectory, typed: Sequence[str] = ()) -> PlaylistToolsError:
    """Our error for one of Alembic's, with ``err`` as its ``__cause__``; one of ours passes as it is.

    Parameters
    ----------
    err : BaseException
        A ``CommandError`` (its ``__cause__`` decides), an Alembic
        ``RevisionError``, the revision map's ``AssertionError``, or one of ours.
    script : alembic.script.ScriptDirectory
        The history, to list the known revisions in the message.
    typed : sequence of str
        The revisions typed on the command line, named in the message when
        the revision map cannot resolve one (``head+1``).

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> message = str(translate(CommandError("it broke\\n" * 100), ScriptDirectory.from_config(migrations.config())))
    >>> len(message), "\\n" in message
    (300, False)
    """
    cause = err.__cause__ if isinstance(err, CommandError) and err.__cause__ is not None else err
    if isinstance(cause, PlaylistToolsError):
        return cause
    ours: PlaylistToolsError
    if isinstance(cause, ResolutionError):
        ours = RevisionError(
            f"unknown revision {_shown(cause.argument)}; known revisions: {_known(script)}; "
            "or use head, base, +N or -N (`alembic history` lists them)"
        )
    elif isinstance(cause, MultipleHeads):
        ours = RevisionError(
            f"{_shown(cause.argument)} is ambiguous: the history has several heads "
            f"({one_line(', '.join(sorted(cause.heads)), 80)}); "
            "use 'heads', name one, or merge them (`alembic merge heads`, migrations.merge())"
        )
    elif isinstance(cause, AlembicRevisionError):
        ours = RevisionError(
            f"{one_line(err, 160)}; `alembic current` says where the database is, "
            "`alembic history` lists the revisions"
        )
    elif (behind := _behind_head(cause)) is not None:
        ours = MigrationError(
            f"the database is not up to date (it is at {', '.join(behind) or 'base'}, head is "
            f"{', '.join(sorted(script.get_heads()))}), and autogenerate compares the models with head; "
            "run `alembic upgrade head` (migrations.upgrade(config)) first, then this command again"
        )
    elif _from_revision_map(cause):
        # Alembic's revision map asserts both for an empty id and for a step past either end ('head+1').
        given = [value for value in typed if value.strip()]
        what = f"revision {_shown(given[0])}" if len(given) == 1 else "a revision id"
        ours = RevisionError(
            f"{what} is empty or steps past the end of the history (an empty string, a range with a "
            f"missing end such as '0003:', or a step such as 'head+1'; the history: {_known(script)}); "
            + _EMPTY_HINT
        )
    else:
        ours = MigrationError(one_line(err))
    ours.__cause__ = err
    return ours


@contextlib.contextmanager
def alembic_errors(cfg: Config) -> Iterator[None]:
    """Alembic's errors raised in the block leave it as ours (see :func:`translate`).

    So does configparser's, for a config file that is not an INI file
    (:class:`SettingError` naming the file, never quoting it), and a history
    that does not load (:func:`broken_history`); Alembic's warning about that
    history is then left out, since the one line says it.
    """
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    except configparser.Error as err:  # its message quotes the file's lines: not ours to print
        raise _not_an_ini(cfg.config_file_name, err) from err
    except (CommandError, AlembicRevisionError, AssertionError) as err:
        if isinstance(err, AssertionError) and not _from_revision_map(err):
            raise  # not Alembic's empty-id check: a real bug, keep its traceback
        ours = translate(err, ScriptDirectory.from_config(cfg))
        raise ours from ours.__cause__
    except Exception as err:  # a revision file that does not load or names an unknown down_revision
        broken = broken_history(err, ScriptDirectory.from_config(cfg))
        if broken is None:
            raise  # not a broken history: a real bug, keep its traceback
        caught.clear()
        raise broken from err
    finally:
        for warning in caught:  # the block's own warnings, as if nothing had recorded them
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _typed_revisions(cfg: Config | None) -> list[str]:
    """The revision arguments typed on the ``alembic`` command line (``upgrade X``, ``stamp X Y``)."""
    options = cfg.cmd_opts if cfg is not None else None
    typed = [getattr(options, "revision", None), *(getattr(options, "revisions", None) or [])]
    return [value for value in typed if isinstance(value, str)]


@contextlib.contextmanager
def cli_errors(script: ScriptDirectory, cfg: Config | None = None) -> Iterator[None]:
    """For ``alembic/env.py``: every error we know leaves as one ``CommandError`` line, ours as its cause.

    With ``cfg``, the revisions typed on the command line are checked first
    (:func:`check_revision`), before anything connects.
    """
    try:
        for typed in _typed_revisions(cfg):
            check_revision(typed)
        yield
    except (PlaylistToolsError, CommandError, AlembicRevisionError, AssertionError) as err:
        if isinstance(err, AssertionError) and not _from_revision_map(err):
            raise
        ours = translate(err, script, _typed_revisions(cfg))
        raise CommandError(str(ours)) from ours
    except Exception as err:
        broken = broken_history(err, script)
        if broken is None:
            raise
        raise CommandError(str(broken)) from broken
