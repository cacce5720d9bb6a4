"""Whether a connection reaches PostgreSQL through a pooler such as PgBouncer.

A pooler in transaction mode lends a server connection for one
transaction at a time, so anything a client leaves on a *session* (a
session-level ``SET``, a session-level advisory lock, a prepared
statement) ends up on a connection someone else gets next, and the next
transaction of the same client may run on another server connection.

How we tell: at start-up the server sends each client its process id
(libpq's ``PQbackendPID``). A direct connection reports the id of the
backend that serves it, the one ``pg_backend_pid()`` returns; a pooler
makes up its own (PgBouncer: a random key, so it can route cancel
requests), which never matches. One query, no privileges, and it works
for PgBouncer, pgcat, Odyssey and managed proxies alike. A pooler in
session mode is treated the same way: it is rare, and what is safe in
transaction mode is safe there too.

What changes behind a pooler (see ``docs/pgbouncer.md``):

* a run of migrations is one transaction holding a transaction-level
  advisory lock (:mod:`playlist_tools.migrations.locks`);
* reads hand ADBC only the connection's own start-up parameters
  (:mod:`playlist_tools.frames`);
* psycopg 3 connections of our engines do not prepare statements
  (:func:`unprepared_behind_pooler`), as a pooler before PgBouncer 1.21
  cannot carry them from one transaction to the next.

Examples
--------
>>> from playlist_tools import db
>>> with db.fresh_database() as url:
...     engine = db.create_engine(url)
...     with engine.connect() as connection:
...         db.behind_pooler(connection)
...     engine.dispose()
False
"""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa

__all__ = ["behind_pooler", "unprepared_behind_pooler"]

_SERVER_PID = "SELECT pg_backend_pid()"


def behind_pooler(connection: sa.Connection | Any) -> bool:
    """Whether ``connection`` goes through a pooler: the process id it was given is not its server's.

    Parameters
    ----------
    connection : sqlalchemy.engine.Connection or a psycopg / psycopg2 cursor
        A SQLAlchemy connection (the query autobegins its transaction, which
        the caller ends as it sees fit), or a driver cursor to run the query
        on (inside whatever transaction its connection has).
    """
    if isinstance(connection, sa.Connection):
        client = connection.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
        server = connection.exec_driver_sql(_SERVER_PID).scalar_one()
    else:
        connection.execute(_SERVER_PID)
        server = connection.fetchone()[0]
        client = connection.connection.info.backend_pid
    return bool(client != server)


def unprepared_behind_pooler(dbapi_connection: Any, connection_record: Any) -> None:
    """``connect`` listener of our engines: a psycopg 3 connection through a pooler prepares no statements.

    psycopg 3 prepares a statement on the server after its fifth run
    (``prepare_threshold``); behind a pooler in transaction mode the next
    run may reach another server connection, where that statement does not
    exist (``prepared statement "_pg3_0" does not exist``). psycopg2 never
    prepares; a ``prepare_threshold`` the caller chose (``connect_args``)
    other than psycopg's default is kept.
    """
    if not isinstance(dbapi_connection, psycopg.Connection) or dbapi_connection.prepare_threshold != 5:
        return
    with dbapi_connection.cursor() as cursor:
        pooled = behind_pooler(cursor)
    dbapi_connection.rollback()  # the query began a transaction unless autocommit; leave none open
    if pooled:
        dbapi_connection.prepare_threshold = None
