"""PostgreSQL's table-level lock modes, which of them conflict, and who on a live database holds one that does.

Private to :mod:`playlist_tools.migrations` (:func:`~playlist_tools.migrations.impact`).
The modes a statement takes are measured on a replay; only the conflict
table is kept here, because it is PostgreSQL's documented one ("Conflicting
Lock Modes", the table of section 13.3.1 of the manual), the same on every
version since 8.2.

Examples
--------
>>> mode_name("ShareUpdateExclusiveLock")
'SHARE UPDATE EXCLUSIVE'
>>> strongest({"ACCESS SHARE", "SHARE ROW EXCLUSIVE", "ROW SHARE"})
'SHARE ROW EXCLUSIVE'
>>> conflicts("ACCESS SHARE", {"ACCESS EXCLUSIVE"}), conflicts("ROW EXCLUSIVE", {"SHARE UPDATE EXCLUSIVE"})
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from playlist_tools.db import activity

__all__ = ["MODES", "blockers", "conflicts", "mode_name", "quoted", "row_count", "strongest"]

MODES = (
    "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE",
    "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE",
)
"""The table-level lock modes, weakest first (the order of PostgreSQL's manual)."""

_CONFLICTS: dict[str, frozenset[str]] = {
    "ACCESS SHARE": frozenset({"ACCESS EXCLUSIVE"}),
    "ROW SHARE": frozenset({"EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "ROW EXCLUSIVE": frozenset({"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "SHARE UPDATE EXCLUSIVE": frozenset(
        {"SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "SHARE": frozenset({"ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE",
                        "ACCESS EXCLUSIVE"}),
    "SHARE ROW EXCLUSIVE": frozenset({"ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
                                      "EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "EXCLUSIVE": frozenset(set(MODES) - {"ACCESS SHARE"}),
    "ACCESS EXCLUSIVE": frozenset(MODES),
}

_HELD = sa.text("""
    SELECT l.pid, l.mode FROM pg_locks l
    WHERE l.locktype = 'relation' AND l.granted AND l.relation = to_regclass(:name)
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.pid <> pg_backend_pid()
      -- An autovacuum worker gives way by itself: PostgreSQL cancels it when a lock
      -- request waits on it (deadlock_timeout), unless it runs to prevent wraparound.
      AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.pid
                      AND a.backend_type = 'autovacuum worker' AND a.query NOT LIKE '%(to prevent wraparound)%')
""")


def quoted(connection: Connection, table: str) -> str:
    """``table`` (``name``, or ``schema.name`` outside the current schema, as measured) quoted for SQL."""
    quote = connection.dialect.identifier_preparer.quote
    return ".".join(quote(part) for part in table.split(".", 1))


def mode_name(pg_locks_mode: str) -> str:
    """``pg_locks.mode`` (``AccessExclusiveLock``) as the manual and ``LOCK TABLE`` spell it (``ACCESS EXCLUSIVE``)."""
    return " ".join(re.findall(r"[A-Z][a-z]*", pg_locks_mode.removesuffix("Lock"))).upper()


def strongest(modes: Iterable[str]) -> str:
    """The strongest of ``modes`` in :data:`MODES` order."""
    return max(modes, key=MODES.index)


def conflicts(held: str, taken: Iterable[str]) -> bool:
    """Whether a session holding ``held`` makes a statement taking any of ``taken`` wait."""
    return any(held in _CONFLICTS[mode] for mode in taken)


def blockers(connection: Connection, table: str, taken: Iterable[str]) -> list[activity.SessionInfo]:
    """The other sessions of ``connection``'s database holding a lock on ``table`` that conflicts with ``taken``.

    Granted locks only, on the table itself (a session reading through an
    index holds a lock on the table too). Autovacuum workers are left out,
    since PostgreSQL cancels them for a waiting lock request, except those
    preventing wraparound, which it does not. Oldest transaction first, as
    :func:`playlist_tools.db.activity.lock_holders` orders them.
    """
    taken = set(taken)
    held = connection.execute(_HELD, {"name": quoted(connection, table)}).all()
    pids = {pid for pid, mode in held if conflicts(mode_name(mode), taken)}
    if not pids:
        return []
    return [s for s in activity.lock_holders(connection, [table]) if s.pid in pids]


def row_count(connection: Connection, table: str, exact_below: int) -> int | None:
    """``table``'s rows: ``count(*)`` when the planner estimates fewer than ``exact_below``, else that estimate.

    ``None`` when there is no such table (yet) in that database. A table
    never analysed (``reltuples`` -1) is counted exactly.
    """
    name = quoted(connection, table)
    estimate = connection.execute(
        sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:name)"), {"name": name}
    ).scalar()
    if estimate is None:
        return None
    if estimate >= exact_below:
        return int(estimate)
    return int(connection.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())
