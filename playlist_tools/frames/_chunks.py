"""Rows through a caller's Connection, a chunk at a time, from a server-side cursor the iterator owns.

Private to :mod:`playlist_tools.frames`; its ``_read`` module reads a
caller's ``Connection`` through :func:`server_chunks`, with either driver.

Who owns what: the rows come from a server-side cursor (``DECLARE ... CURSOR``
then ``FETCH``) that the iterator owns from its first chunk until it is
exhausted or closed, when it closes the cursor. Between two chunks the
Connection is the caller's: any statement may run on it (nothing holds the
connection, as psycopg's streaming would: it blocked every other statement
until the last row). The cursor lives in the Connection's transaction, so it
sees that transaction's rows; committing or rolling back before the last
chunk ends the cursor, and the next chunk then fails with one line that says
so. On a Connection in ``AUTOCOMMIT`` isolation the cursor is ``WITH HOLD``:
the server computes the whole result when it is declared and keeps it until
the cursor is closed.

Each ``DECLARE`` and ``FETCH`` runs in a savepoint (its own transaction in
autocommit), so a query that fails leaves the caller's transaction usable.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

from playlist_tools.errors import FrameError, sqlstate
from playlist_tools.frames._dates import wire_cursor
from playlist_tools.frames._driver import ERRORS, Driver

_CURSORS = itertools.count()  # names of our server-side cursors, unique in a session
_INVALID_CURSOR_NAME = "34000"
_GONE = ("the chunks' cursor ended with the transaction it was opened in (the connection committed or rolled back "
         "before the last chunk); read the chunks before ending the transaction, or read again")


def server_chunks(conn: Driver, sql: str, params: Any, rows: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``sql``, ``rows`` at a time; dates and timestamps as integers since 1970 (see ``_dates``)."""
    name = f"_frames_{next(_CURSORS)}"
    hold = conn.autocommit  # no transaction to live in: the cursor keeps its rows itself
    cursor = (wire_cursor(conn.conn, name, hold) if conn.psycopg3
              else conn.conn.cursor(name=name, withhold=hold))
    try:
        with conn.transaction():
            cursor.execute(sql, params)
        while True:
            if not hold and conn.idle:  # the caller ended the transaction, and the cursor with it
                raise FrameError(_GONE)
            try:
                with conn.transaction():
                    chunk = cursor.fetchmany(rows)
            except ERRORS as err:
                if sqlstate(err) == _INVALID_CURSOR_NAME:
                    raise FrameError(_GONE) from err
                raise
            if not chunk:
                return
            yield chunk
    finally:
        # In a savepoint of its own: a CLOSE that fails (the cursor already gone) must not doom the transaction.
        with contextlib.suppress(*ERRORS), conn.transaction():
            cursor.close()
