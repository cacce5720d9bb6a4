"""Moving a serial or identity column's sequence past the values a write put in it: :func:`advance_sequence`.

Private to :mod:`playlist_tools.frames`, which re-exports it (``sample`` uses it too) and ``_write`` calls
it after each ``COPY``. A module of its own, with no import beyond the standard library, so that
``import playlist_tools.frames`` can offer it without loading the write path (issue 21).
"""

from __future__ import annotations

from typing import Any

_ADVANCE_SEQUENCE = """
SELECT setval(s.seqrelid, %(largest)s::bigint) FROM pg_sequence s
WHERE s.seqrelid = pg_get_serial_sequence(%(table)s, %(column)s)::regclass AND s.seqincrement > 0
  AND %(largest)s::bigint >= coalesce(pg_sequence_last_value(s.seqrelid)::numeric + s.seqincrement, s.seqstart)
"""


def advance_sequence(table: str, column: str, largest: int) -> tuple[str, dict[str, Any]]:
    """SQL and parameters that move ``column``'s own sequence past ``largest``, never backwards.

    A no-op when the column owns no sequence (neither serial nor identity),
    when the sequence counts down, or when its next value is already past
    ``largest``. The parameters are in the ``pyformat`` style of psycopg and
    psycopg2 alike (``cursor.execute(*...)``, ``connection.exec_driver_sql(*...)``).

    Parameters
    ----------
    table : str
        The table's name as SQL would write it (quoted where it must be).
    column : str
        The column's exact name.
    largest : int
        The largest value written into it.

    Examples
    --------
    >>> from playlist_tools import db
    >>> with db.fresh_database() as url, db.transaction(url) as con:
    ...     _ = con.exec_driver_sql("CREATE TABLE t (id serial, x int); INSERT INTO t (id) VALUES (5)")
    ...     _ = con.exec_driver_sql(*advance_sequence("t", "id", 5))
    ...     _ = con.exec_driver_sql(*advance_sequence("t", "id", 3))  # never backwards
    ...     con.exec_driver_sql("INSERT INTO t (x) VALUES (0) RETURNING id").scalar_one()
    6
    """
    return _ADVANCE_SEQUENCE, {"table": table, "column": column, "largest": largest}
