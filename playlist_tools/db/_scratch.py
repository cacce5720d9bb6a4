"""Where throwaway databases for a database can be made: its own server, or the embedded one.

Private to :mod:`playlist_tools.db`, which re-exports :func:`scratch_server`
and :class:`ScratchServer`. Foresight (the schema at a revision, what a
migration would lock, which saved queries it breaks) replays the history
into throwaway databases. Their best home is the user's own server: its
version and rules apply. But many roles on shared servers may not create
databases (managed services, careful teams), and a hot standby creates
nothing at all. There, the throwaway databases go to the server the
toolkit controls, the embedded PostgreSQL, and whoever reports what was
measured says so (:attr:`ScratchServer.elsewhere`), naming both versions:
locks and rewrites are the same between versions for most operations, but
not all. Nothing is created on the user's server to find out: one catalog
query tells whether the role may create databases and whether the server
is in recovery.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import URL, Connection, Engine

from playlist_tools.db._engine import Connectable, connection
from playlist_tools.db._url import resolve_url
from playlist_tools.db.embedded import start_embedded

__all__ = ["ScratchServer", "scratch_server"]

_ASK = """
    SELECT pg_is_in_recovery(), r.rolsuper OR r.rolcreatedb, current_user, current_setting('server_version')
    FROM pg_roles r WHERE r.rolname = current_user
"""
_VERSION = "SELECT current_setting('server_version')"


@dataclass(frozen=True)
class ScratchServer:
    """Where to make throwaway databases for a database, and why it is not the database's own server if so."""

    url: URL
    """A URL on the server to make them on (its database is the server's maintenance one or the user's)."""
    elsewhere: str | None = None
    """``None`` when ``url`` is the user's own server; else one sentence saying where and why, e.g.
    ``"replayed on the embedded PostgreSQL 18.1, not on your server (PostgreSQL 15.20, another major version):
    role ann may not create databases there (no CREATEDB); locks and rewrites may differ there"``."""


def _major(version: str) -> str:
    return version.split(".")[0].split(" ")[0]


def scratch_server(con: Connectable = None) -> ScratchServer:
    """The server to make throwaway databases on for ``con``'s database: its own when it can, else the embedded one.

    Its own server when the role is superuser or has ``CREATEDB`` and the
    server is not a standby in recovery; otherwise the embedded PostgreSQL,
    started when needed, with :attr:`ScratchServer.elsewhere` saying so.
    One query on ``con`` (a ``Connection`` is used as is, and left without a
    transaction if it had none; an engine lends one; a URL gets its own,
    closed here).

    Examples
    --------
    >>> from playlist_tools import db
    >>> scratch_server().elsewhere is None  # the embedded server's superuser may create databases
    True
    """
    given = con if isinstance(con, (Connection, Engine)) else resolve_url(con)
    own_url = given.engine.url if isinstance(given, (Connection, Engine)) else given
    with connection(given) as conn:
        began = not conn.in_transaction()
        try:
            recovering, may_create, role, full_version = conn.exec_driver_sql(_ASK).one()
        finally:
            if began:
                conn.rollback()
    version = str(full_version).split(" ")[0]  # "15.20", not "15.20 (Debian 15.20-0+deb12u1)"
    if may_create and not recovering:
        return ScratchServer(own_url)
    why = ("it is a read-only standby (in recovery)" if recovering
           else f"role {role} may not create databases there (no CREATEDB)")
    embedded = start_embedded()
    with connection(embedded) as conn:
        embedded_version = str(conn.exec_driver_sql(_VERSION).scalar_one()).split(" ")[0]
    other = ", another major version" if _major(embedded_version) != _major(version) else ""
    return ScratchServer(
        embedded,
        f"replayed on the embedded PostgreSQL {embedded_version}, not on your server (PostgreSQL {version}{other}): "
        f"{why}; locks and rewrites may differ there",
    )
