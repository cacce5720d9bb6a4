"""The one translator of Alembic's exceptions into ours, keyed on their types.

Alembic reports a bad revision as a :class:`alembic.util.CommandError`
whose ``__cause__`` says what kind of problem it is (an unknown id, several
heads, a relative step past the end), or, from the public revision-map
API, as that cause itself. :func:`translate` turns either into one of
:mod:`playlist_tools.errors`, one line naming the bad value and the fix.
It never reads Alembic's message text to decide anything.

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
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import MultipleHeads, ResolutionError
from alembic.script.revision import RevisionError as AlembicRevisionError
from alembic.util import CommandError

from playlist_tools.errors import MigrationError, PlaylistToolsError, RevisionError


def _known(script: ScriptDirectory) -> str:
    ids = sorted(s.revision for s in script.walk_revisions())
    return ", ".join(ids) if ids else "none yet"


def translate(err: BaseException, script: ScriptDirectory) -> PlaylistToolsError:
    """Our error for one of Alembic's, with ``err`` as its ``__cause__``; one of ours passes as it is.

    Parameters
    ----------
    err : BaseException
        A ``CommandError`` (its ``__cause__`` decides), an Alembic
        ``RevisionError``, or one of ours.
    script : alembic.script.ScriptDirectory
        The history, to list the known revisions in the message.
    """
    cause = err.__cause__ if isinstance(err, CommandError) and err.__cause__ is not None else err
    if isinstance(cause, PlaylistToolsError):
        return cause
    ours: PlaylistToolsError
    if isinstance(cause, ResolutionError):
        ours = RevisionError(
            f"unknown revision {cause.argument!r}; known revisions: {_known(script)}; "
            "or use head, base, +N or -N (`alembic history` lists them)"
        )
    elif isinstance(cause, MultipleHeads):
        ours = RevisionError(
            f"{cause.argument!r} is ambiguous: the history has several heads ({', '.join(sorted(cause.heads))}); "
            "use 'heads', name one, or merge them (`alembic merge heads`, migrations.merge())"
        )
    elif isinstance(cause, AlembicRevisionError):
        ours = RevisionError(
            f"{' '.join(str(err).split())}; `alembic current` says where the database is, "
            "`alembic history` lists the revisions"
        )
    else:
        ours = MigrationError(" ".join(str(err).split()))
    ours.__cause__ = err
    return ours


@contextlib.contextmanager
def alembic_errors(cfg: Config) -> Iterator[None]:
    """Alembic's errors raised in the block leave it as ours (see :func:`translate`)."""
    try:
        yield
    except (CommandError, AlembicRevisionError) as err:
        ours = translate(err, ScriptDirectory.from_config(cfg))
        raise ours from ours.__cause__


@contextlib.contextmanager
def cli_errors(script: ScriptDirectory) -> Iterator[None]:
    """For ``alembic/env.py``: every error we know leaves as one ``CommandError`` line, ours as its cause."""
    try:
        yield
    except (PlaylistToolsError, CommandError, AlembicRevisionError) as err:
        ours = translate(err, script)
        raise CommandError(str(ours)) from ours
