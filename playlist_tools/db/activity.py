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
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["SessionInfo", "advisory_holder", "lock_holders", "blocking_sessions", "waits"]

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


def lock_holders(connection: Connection, relations: list[str] | None = None) -> list[SessionInfo]:
    """Other sessions holding locks on tables of this database, oldest transaction first.

    Parameters
    ----------
    connection : sqlalchemy.engine.Connection
    relations : list of str, optional
        Only locks on tables (or their indexes and sequences) with these
        names. By default every session that holds a table lock and is idle
        in a transaction: the usual suspects.
    """
    # An index lock counts as a lock on its table: name the table.
    on_relation = "coalesce(owner.relname, c.relname) = ANY(:names)" if relations else "true"
    suspect = "true" if relations else "a.state LIKE 'idle in transaction%'"
    return _sessions(
        connection,
        f"""
        SELECT {_SESSION_COLUMNS}
        FROM pg_stat_activity a
        WHERE a.pid <> pg_backend_pid() AND {suspect} AND a.pid IN (
            SELECT l.pid FROM pg_locks l
            JOIN pg_class c ON c.oid = l.relation
            LEFT JOIN pg_index i ON i.indexrelid = c.oid
            LEFT JOIN pg_class owner ON owner.oid = i.indrelid
            WHERE l.granted AND l.locktype = 'relation'
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND c.relnamespace <> 'pg_catalog'::regnamespace
              AND {on_relation})
        ORDER BY a.xact_start NULLS LAST, a.pid
        """,
        names=list(relations or []),
    )


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
