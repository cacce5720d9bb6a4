"""Who is connected, and who blocks whom: ``pg_stat_activity`` and ``pg_locks`` made readable.

:mod:`playlist_tools.migrations.locks` uses these to say which session a blocked
migration waits for; ``playlist-tools db locks`` prints them. Each session
is a :class:`SessionInfo`: pid, ``application_name``, state, for how long,
and its (last) query.

Examples
--------
>>> from playlist_tools import db
>>> from playlist_tools.db import activity
>>> engine = db.create_engine()
>>> with engine.connect() as connection:
...     me = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
...     activity.blocking_sessions(connection, me)
[]
>>> engine.dispose()
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["SessionInfo", "advisory_holder", "lock_holders", "release_hint", "blocking_sessions", "waits"]

_PASSWORD_LITERAL = re.compile(r"(?i)(password\s+)(?:E?'(?:[^']|'')*'|\$\w*\$.*?\$\w*\$)")

_SESSION_COLUMNS = """
    a.pid, coalesce(a.application_name, '') AS application_name, coalesce(a.state, '') AS state,
    extract(epoch FROM clock_timestamp() - coalesce(a.state_change, a.backend_start)) AS seconds,
    coalesce(a.query, '') AS query
"""


@dataclass(frozen=True)
class SessionInfo:
    """A session from ``pg_stat_activity``, as a lock-timeout message shows it."""

    pid: int
    application_name: str
    state: str
    seconds: float
    query: str

    def describe(self) -> str:
        """One phrase: pid, application name, state, for how long, and its last query.

        A password literal in the query (``ALTER ROLE ... PASSWORD '...'``) is
        masked: this phrase ends up in error messages and notebook outputs.

        Examples
        --------
        >>> SessionInfo(7, "psql", "idle", 3.2, "ALTER ROLE ann PASSWORD 's3cret'").describe()
        "pid 7 (application_name 'psql', idle for 3s, query 'ALTER ROLE ann PASSWORD ***')"
        """
        query = _PASSWORD_LITERAL.sub(r"\1***", " ".join(self.query.split()))
        if len(query) > 80:
            query = query[:77] + "..."
        return (
            f"pid {self.pid} (application_name {self.application_name!r}, "
            f"{self.state or 'state unknown'} for {_duration(self.seconds)}, query {query!r})"
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"


def _sessions(connection: Connection, sql: str, **params: object) -> list[SessionInfo]:
    # pg_stat_activity is read once per transaction and then cached: a caller
    # polling inside one transaction would see the same states forever.
    connection.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
    rows = connection.execute(sa.text(sql), params).mappings()
    return [SessionInfo(**{key: row[key] for key in SessionInfo.__dataclass_fields__}) for row in rows]


def advisory_holder(connection: Connection, key: int) -> SessionInfo | None:
    """The session holding advisory lock ``key`` on this database, if any."""
    found = _sessions(
        connection,
        f"""
        SELECT {_SESSION_COLUMNS}
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
            SELECT oid FROM pg_database WHERE datname = current_database())
          AND ((l.classid::bigint << 32) | l.objid::bigint) = :key AND l.objsubid = 1
          AND l.pid <> pg_backend_pid()
        """,
        key=key,
    )
    return found[0] if found else None


def lock_holders(
    connection: Connection, relations: Sequence[str] | None = None, *, exclude: Sequence[int] = ()
) -> list[SessionInfo]:
    """Other sessions holding locks on tables of this database, in any state, oldest transaction first.

    A session idle in a transaction (a notebook after a ``SELECT``) and one
    busy with a long query (a dashboard) block a migration alike, so both
    are listed; :meth:`SessionInfo.describe` says which it is.

    Parameters
    ----------
    connection : sqlalchemy.engine.Connection
    relations : list of str, optional
        Only locks that matter to a statement naming these: a lock on a
        table of that name or on any of its indexes, or on the table of an
        index of that name (``DROP INDEX`` locks its table). By default
        every table lock.
    exclude : list of int, optional
        pids to leave out, e.g. the blocked session itself, whose aborted
        transaction still holds its earlier locks.

    Examples
    --------
    >>> from playlist_tools import db
    >>> with db.fresh_database() as url, db.connection(url) as connection:
    ...     lock_holders(connection), lock_holders(connection, ["songs"], exclude=[1])
    ([], [])
    """
    # The locked relation's table (an index counts as its table) must be the
    # table of a named relation (a named index counts as its table).
    on_relation = """EXISTS (
                SELECT 1 FROM pg_class named LEFT JOIN pg_index ni ON ni.indexrelid = named.oid
                WHERE named.relname = ANY(CAST(:names AS text[]))
                  AND coalesce(ni.indrelid, named.oid) = coalesce(i.indrelid, c.oid))""" if relations else "true"
    return _sessions(
        connection,
        f"""
        SELECT {_SESSION_COLUMNS}
        FROM pg_stat_activity a
        WHERE a.pid <> pg_backend_pid() AND a.pid <> ALL(CAST(:exclude AS integer[])) AND a.pid IN (
            SELECT l.pid FROM pg_locks l
            JOIN pg_class c ON c.oid = l.relation
            LEFT JOIN pg_index i ON i.indexrelid = c.oid
            WHERE l.granted AND l.locktype = 'relation'
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND c.relnamespace <> 'pg_catalog'::regnamespace
              AND {on_relation})
        ORDER BY a.xact_start NULLS LAST, a.pid
        """,
        names=list(relations or []),
        exclude=[int(pid) for pid in exclude],
    )


def release_hint(sessions: Sequence[SessionInfo]) -> str:
    """How to release the locks ``sessions`` hold: what to do about busy ones, then about idle ones.

    The lock-timeout message and ``playlist-tools db locks`` both end with this.

    Examples
    --------
    >>> print(release_hint([SessionInfo(7, "dash", "active", 40.0, "SELECT ..."),
    ...                     SessionInfo(9, "nb", "idle in transaction", 3.0, "SELECT 1")]))
    let the running query of pid 7 finish and its transaction end,
    or end the session with SELECT pg_terminate_backend(pid) for pid 7;
    commit or roll back in that session (a notebook's open connection or session: run .commit() or .rollback()
    there), or end it with SELECT pg_terminate_backend(pid) for pid 9
    """
    busy = ", ".join(str(s.pid) for s in sessions if s.state == "active")
    idle = ", ".join(str(s.pid) for s in sessions if s.state != "active")
    hints = [
        f"let the running query of pid {busy} finish and its transaction end, "
        f"or end the session with SELECT pg_terminate_backend(pid) for pid {busy}"
    ] if busy else []
    if idle:
        hints.append(
            "commit or roll back in that session (a notebook's open connection or session: "
            f"run .commit() or .rollback() there), or end it with SELECT pg_terminate_backend(pid) for pid {idle}"
        )
    return "; ".join(hints)


def blocking_sessions(connection: Connection, pid: int) -> list[SessionInfo]:
    """The sessions that ``pid`` is waiting for right now (``pg_blocking_pids``).

    Examples
    --------
    >>> from playlist_tools import db
    >>> engine = db.create_engine()
    >>> with engine.connect() as connection:
    ...     blocking_sessions(connection, connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    []
    >>> engine.dispose()
    """
    return _sessions(
        connection,
        f"SELECT {_SESSION_COLUMNS} FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids(:pid)) ORDER BY a.pid",
        pid=pid,
    )


def waits(connection: Connection) -> list[tuple[SessionInfo, list[SessionInfo]]]:
    """Sessions of this database waiting for a lock right now, each with the sessions it waits for.

    Examples
    --------
    >>> from playlist_tools import db
    >>> engine = db.create_engine()
    >>> with engine.connect() as connection:
    ...     [waiter for waiter, _ in waits(connection) if waiter.application_name == "doctest"]
    []
    >>> engine.dispose()
    """
    waiting = _sessions(
        connection,
        f"""
        SELECT {_SESSION_COLUMNS} FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
        ORDER BY a.pid
        """,
    )
    return [(waiter, blocking_sessions(connection, waiter.pid)) for waiter in waiting]
