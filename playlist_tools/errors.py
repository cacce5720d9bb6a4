"""Errors that playlist-tools raises for people to read.

Every error is one line: it names the bad value and says how to fix it.
The original exception, when there is one, is kept as ``__cause__``
(``raise ... from err``) for anyone who wants the full story.

Examples
--------
>>> from playlist_tools.errors import PlaylistToolsError, DatabaseURLError
>>> issubclass(DatabaseURLError, PlaylistToolsError)
True
>>> str(DatabaseURLError("bad scheme 'mysql'; use postgresql://"))
"bad scheme 'mysql'; use postgresql://"
"""

from __future__ import annotations

__all__ = [
    "PlaylistToolsError",
    "DatabaseURLError",
    "DatabaseUnavailableError",
    "RevisionError",
    "MigrationError",
    "DataLossError",
    "FrameError",
    "LockTimeoutError",
    "SettingError",
    "SampleError",
    "SchemaError",
    "QueryError",
    "MESSAGE_LIMIT",
    "first_line",
    "sqlstate",
    "one_line",
]

MESSAGE_LIMIT = 300
"""The longest message we raise: long enough for the bad value and the fix, never a dump of SQL or data."""


def first_line(err: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none.

    Drivers and Alembic often say several lines; our messages quote only
    the first, which is the one that names the problem.

    Examples
    --------
    >>> first_line(ValueError("bad value\\nDETAIL: more"))
    'bad value'
    >>> first_line(KeyError())
    'KeyError'
    """
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def sqlstate(err: BaseException) -> str | None:
    """The SQLSTATE (``42P01``...) of a driver's error, psycopg 3, psycopg2 or ADBC, or of the one SQLAlchemy wraps.

    Examples
    --------
    >>> class Psycopg2Error(Exception):
    ...     pgcode = "55006"
    >>> sqlstate(Psycopg2Error()), sqlstate(ValueError())
    ('55006', None)
    """
    err = getattr(err, "orig", None) or err  # sqlalchemy.exc.DBAPIError: the driver's own error
    return getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)


class PlaylistToolsError(Exception):
    """Base of every error playlist-tools raises on purpose.

    The message is a single line meant for a person: what was wrong, and
    what to do about it. The command line prints it without a traceback.
    """


class DatabaseURLError(PlaylistToolsError, ValueError):
    """A database URL that cannot work: bad scheme, unparsable, wrong driver."""


class DatabaseUnavailableError(PlaylistToolsError, ConnectionError):
    """The database named by a good URL could not be reached."""


class RevisionError(PlaylistToolsError, LookupError):
    """A migration revision id that the history does not know."""


class MigrationError(PlaylistToolsError, RuntimeError):
    """A migration that could not run (blocked, failed, or refused)."""


class DataLossError(MigrationError):
    """An upgrade or downgrade that would destroy data, refused until told it is fine."""


class FrameError(PlaylistToolsError, ValueError):
    """A DataFrame or query that does not fit its table or its parameters."""


class LockTimeoutError(MigrationError):
    """A migration that waited too long for a lock another session holds.

    The message names the blocking sessions and how to release them; the
    same facts are on :attr:`blockers` for code that wants them.
    """

    def __init__(self, message: str, blockers: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.blockers = blockers


class SettingError(PlaylistToolsError, ValueError):
    """A setting (environment variable or option) whose value cannot work."""


class SampleError(PlaylistToolsError, ValueError):
    """The sample does not fit the database: rows differ, or the schema is not at head."""


class SchemaError(PlaylistToolsError, LookupError):
    """A table the database does not have."""


class QueryError(PlaylistToolsError, LookupError):
    """A playlist or song that is not there, or a title that names several playlists."""


def one_line(text: object, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line (each run of whitespace one space), cut to ``limit`` characters.

    What a message quotes of a driver's error, a value or a query goes
    through this, so that no message dumps a statement or its parameters.

    Examples
    --------
    >>> one_line("no such\\n   revision")
    'no such revision'
    >>> shown = one_line("x" * 1000)
    >>> len(shown), shown[-4:]
    (300, 'x...')
    """
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
