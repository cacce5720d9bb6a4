"""Whether a server takes writes: a hot standby (in recovery) or a read-only session does not.

Private to :mod:`playlist_tools.db`, which re-exports :func:`in_recovery`
and :func:`require_writable`. Every step of ours that writes (migrations,
``write_frame``, ``load_sample``) asks once, before it starts, with one
query (``pg_is_in_recovery()`` and ``transaction_read_only``, which any
role may read), so that a standby is refused for what it is rather than
failing half-way with a message about the statement ("cannot execute DROP
INDEX in a read-only transaction") whose advice, to fix the migration or to
write again, would fail forever. Reads, ``alembic current`` and foresight
ask nothing and work on a standby.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from playlist_tools.db._url import DATABASE_URL_ENV, mask_url
from playlist_tools.errors import PlaylistToolsError

__all__ = ["in_recovery", "require_writable"]

_ASK = "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"


def _ask(conn: Connection | Any) -> tuple[bool, bool]:
    """(in recovery, read-only transaction) on a SQLAlchemy connection or a psycopg/psycopg2 connection.

    A SQLAlchemy connection that was not in a transaction is left without
    one, so whoever decides what "the caller's transaction" means still can.
    """
    if isinstance(conn, Connection):
        began = not conn.in_transaction()
        try:
            recovering, read_only = conn.exec_driver_sql(_ASK).one()
        finally:
            if began:
                conn.rollback()
    else:
        with conn.cursor() as cursor:
            cursor.execute(_ASK)
            recovering, read_only = cursor.fetchone()
    return bool(recovering), bool(read_only)


def _where(conn: Connection | Any) -> str:
    """The server, as a masked URL (SQLAlchemy) or ``host:port/dbname`` (a driver's connection)."""
    if isinstance(conn, Connection):
        return mask_url(conn.engine.url)
    info = conn.info  # psycopg 3 and psycopg2 (2.8+) alike
    return f"{info.host}:{info.port}/{info.dbname}"


def in_recovery(conn: Connection | Any) -> bool:
    """Whether ``conn``'s server is a hot standby (``pg_is_in_recovery()``): it serves reads only.

    ``conn`` is a SQLAlchemy ``Connection`` or a psycopg / psycopg2
    connection; it is used, not closed.

    Examples
    --------
    >>> from playlist_tools import db
    >>> with db.connection() as conn:
    ...     in_recovery(conn)
    False
    """
    return _ask(conn)[0]


def require_writable(conn: Connection | Any, doing: str, error: type[PlaylistToolsError]) -> None:
    """Refuse, in one line, to ``doing`` on a server or session that takes no writes.

    Called once per call of a writing step, before it starts (one query).
    A standby is named as such, with the fix: point ``DATABASE_URL`` (or the
    URL given) at the primary. A primary whose session is read-only
    (``default_transaction_read_only``, a read-only engine) is named too.

    Parameters
    ----------
    conn : sqlalchemy.engine.Connection, or a psycopg / psycopg2 connection
        Used, not closed; a SQLAlchemy connection not in a transaction is
        left without one.
    doing : str
        What was refused, as the message says it (``"migrate"``,
        ``"write to songs"``, ``"load the sample"``).
    error : type of PlaylistToolsError
        The caller's room's error, so that ``except FrameError`` still
        catches a refused ``write_frame``.

    Examples
    --------
    >>> from playlist_tools import db
    >>> from playlist_tools.errors import FrameError
    >>> with db.connection() as conn:
    ...     require_writable(conn, "write to songs", FrameError)
    ...     _ = conn.exec_driver_sql("SET default_transaction_read_only = on")
    ...     conn.commit()  # the next transaction is read-only
    ...     require_writable(conn, "write to songs", FrameError)
    Traceback (most recent call last):
    ...
    playlist_tools.errors.FrameError: cannot write to songs: the session on ... is read-only ...
    """
    recovering, read_only = _ask(conn)
    if recovering:
        raise error(
            f"cannot {doing}: {_where(conn)} is a read-only standby (in recovery); point {DATABASE_URL_ENV} "
            "(or the URL you pass) at the primary server, which takes writes and migrations"
        )
    if read_only:
        raise error(
            f"cannot {doing}: the session on {_where(conn)} is read-only (default_transaction_read_only "
            "or a read-only engine); use a connection that may write"
        )
