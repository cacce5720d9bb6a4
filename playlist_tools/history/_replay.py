"""The schema at any revision, without touching the user's database: the history replayed elsewhere.

:func:`playlist_tools.schema.at`, :func:`~playlist_tools.migrations.impact`
and :func:`~playlist_tools.migrations.affected_queries` build on it.

The history up to a revision is run (``alembic upgrade <revision>``, schema
only, no rows) into a new database on the *same server* as the config's
database, so the server's own version and rules apply. The result is kept
as a cache database, one per revision and per content of the revision files
that lead to it, named ``playlist_tools_at_<rev>_<digest>``: the second
call for the same revision is a catalog read or a ``CREATE DATABASE ...
TEMPLATE`` copy. Editing a revision file changes the digest, so a stale
cache is never used. Each cache database carries a ``COMMENT`` saying what
it is; :func:`drop_replays` drops those (and only those, with that comment).

The role needs ``CREATEDB`` (as the test suite does).

Examples
--------
>>> import sqlalchemy as sa
>>> from playlist_tools import db, migrations
>>> with replayed(migrations.config(), "0001") as url, db.connection(url) as conn:
...     sorted(sa.inspect(conn).get_table_names())
['alembic_version', 'playlist_song_association', 'playlists', 'songs']
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine

from playlist_tools import _orphans, db
from playlist_tools.errors import MigrationError, RevisionError, first_line, one_line, sqlstate
from playlist_tools.history._alembic_private import detached_copy
from playlist_tools.history._config import resolve, script_directory
from playlist_tools.history._errors import alembic_errors, check_revision

__all__ = ["CACHE_COMMENT", "CACHE_PREFIX", "ONE_RUN_AT_A_TIME", "drop_replays", "replayed", "server_url", "template"]

CACHE_PREFIX = "playlist_tools_at_"
"""Start of every cache database's name."""

CACHE_COMMENT = "playlist-tools schema cache"
"""Start of every cache database's ``COMMENT``: what :func:`drop_replays` looks for."""

_NEEDS_CREATEDB = "the role needs CREATEDB (ALTER ROLE ... CREATEDB)"
_BUSY_RETRY_SECONDS = 5.0  # a reader of the cache (schema.at) holds it for milliseconds
ONE_RUN_AT_A_TIME = threading.RLock()
"""Held by every run of Alembic here (replays, ``impact``'s measuring): its ``context`` and ``op`` proxies
are module globals, so two runs in threads of one process would collide. Re-entrant: a replay may be
built from inside another run in the same thread (autogenerate's analysts'-column rule)."""
_KEPT_ATTRIBUTES = ("skip_logging_config", "lock_timeout", "target_metadata")


def server_url(cfg: Config) -> URL:
    """The URL of the config's database (its connection's, its ``url``, or the default): the server to replay on."""
    given = cfg.attributes.get("connection")
    if isinstance(given, (Connection, Engine)):
        return given.engine.url
    return db.resolve_url(cfg.attributes.get("url"))


def _revisions(cfg: Config, history: ScriptDirectory, revision: str) -> tuple[str, ...]:
    """The ids ``revision`` names (``head`` -> the head's id); empty for ``base``."""
    check_revision(revision)
    if re.fullmatch(r"\s*[+-]\d+\s*|.*@.*|.*:.*", revision):
        raise RevisionError(
            f"revision {revision!r} is relative or a range; the schema at a revision needs one point of the "
            "history: an id (alembic history lists them), head, heads or base"
        )
    with alembic_errors(cfg):
        return tuple(sorted(s.revision for s in history.get_revisions(revision) if s is not None))


def _digest(cfg: Config, history: ScriptDirectory, revisions: tuple[str, ...]) -> str:
    """A digest of every revision file leading to ``revisions``: a changed file means another cache."""
    digest = hashlib.sha256()
    with alembic_errors(cfg):
        steps = sorted(history.iterate_revisions(revisions, "base"), key=lambda s: s.revision)
    for step in steps:
        digest.update(step.revision.encode() + b"\0" + Path(step.path).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _cache_name(revisions: tuple[str, ...], digest: str) -> str:
    readable = re.sub(r"[^a-z0-9]+", "_", "_".join(revisions).lower())[:24]
    return f"{CACHE_PREFIX}{readable}_{digest}"


def _admin(server: URL) -> Engine:
    return db.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def _exists(admin: Engine, name: str) -> bool:
    with admin.connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    return found is not None


def _upgrade_into(cfg: Config, url: URL, revision: str) -> None:
    """``alembic upgrade revision`` into ``url``, on a copy of ``cfg`` that keeps nothing of the caller's run."""
    replay = detached_copy(cfg, {k: cfg.attributes[k] for k in _KEPT_ATTRIBUTES if k in cfg.attributes})
    engine = db.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        replay.attributes["skip_logging_config"] = True
        replay.attributes["connection"] = engine
        replay.output_buffer = io.StringIO()
        with ONE_RUN_AT_A_TIME, alembic_errors(replay):
            command.upgrade(replay, revision)
    finally:
        engine.dispose()


def template(config: Config | None, revision: str) -> URL:
    """The cache database holding the schema at ``revision`` (built on first use); read it, never write it.

    Nothing but a brief read should connect to it: a copy (:func:`replayed`)
    waits while anyone is connected.

    Raises
    ------
    RevisionError
        For an unknown revision.
    MigrationError
        When the role may not create databases, or the history fails to replay.
    """
    cfg = resolve(config)
    history = script_directory(cfg)  # read once: the revision files are parsed on every read
    revisions = _revisions(cfg, history, revision)
    name = _cache_name(revisions or ("base",), _digest(cfg, history, revisions))
    server = server_url(cfg)
    admin = _admin(server)
    try:
        if _exists(admin, name):
            return server.set(database=name)
        building = f"{name[:48]}_b{uuid.uuid4().hex[:8]}"
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{building}"')
                conn.exec_driver_sql(
                    f"COMMENT ON DATABASE \"{building}\" IS '{CACHE_COMMENT}: the schema at "
                    f"{', '.join(revisions) or 'base'}, replayed; dropped by playlist_tools.migrations.drop_replays()'"
                )
        except sa.exc.DBAPIError as err:
            raise MigrationError(
                f"cannot replay the history on {db.mask_url(server)}: {one_line(first_line(err.orig), 120)}; "
                + _NEEDS_CREATEDB
            ) from err
        try:
            if revisions:
                _upgrade_into(cfg, server.set(database=building), ",".join(revisions) if len(revisions) > 1
                              else revisions[0])
            with admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        except sa.exc.DBAPIError as err:
            db.drop_database(admin, building)
            # Another process published the same cache first: 42P04 duplicate_database when its rename
            # had committed before ours looked, 23505 from pg_database's unique index when both renamed at once.
            if sqlstate(err) not in ("42P04", "23505"):
                raise
        except BaseException:
            db.drop_database(admin, building)
            raise
        return server.set(database=name)
    finally:
        admin.dispose()


@contextlib.contextmanager
def replayed(config: Config | None, revision: str, *, prefix: str = "playlist_tools_replay") -> Iterator[URL]:
    """A throwaway database with the schema at ``revision`` (no rows), dropped when the block ends.

    A copy of the cache database of :func:`template`; write to it freely.
    Its ``COMMENT`` names this process: should the process die before the
    block ends, the next copy or ``Workspace.open`` drops it
    (``playlist_tools._orphans.sweep``).

    Yields
    ------
    sqlalchemy.engine.URL
        The copy's URL, on the config's server.
    """
    if prefix not in _orphans.COPY_PREFIXES:  # the sweep knows a copy by its prefix
        raise ValueError(f"prefix {prefix!r} is not one of {_orphans.COPY_PREFIXES}")
    cfg = resolve(config)
    server = server_url(cfg)  # the copy is made from here: a session on the cache itself would block others
    source = template(cfg, revision)
    _orphans.sweep(server)  # copies (and workspaces) whose process was killed before it could drop them
    deadline = time.monotonic() + _BUSY_RETRY_SECONDS
    while True:
        copying = contextlib.ExitStack()
        try:
            url = copying.enter_context(db.fresh_database(server, prefix=prefix, template=source.database))
        except sa.exc.DBAPIError as err:
            state = sqlstate(err)
            if state == "3D000" and time.monotonic() <= deadline:
                source = template(cfg, revision)  # dropped meanwhile (drop_replays elsewhere): build it again
                continue
            # 55006: a reader (schema.at) is connected to the cache for a moment; wait for it.
            if state != "55006" or time.monotonic() > deadline:
                hint = f"; {_NEEDS_CREATEDB}" if state == "42501" else ""
                raise MigrationError(
                    f"cannot copy the schema cache {source.database}: {one_line(first_line(err.orig), 120)}{hint}"
                ) from err
            time.sleep(0.05)
            continue
        break
    with copying:
        with _orphans.admin(server) as conn:  # so that a sweep drops it if this process dies holding it
            _orphans.record_owner(conn, str(url.database))
        yield url


def drop_replays(config: Config | None = None) -> list[str]:
    """Drop every schema cache database on the config's server; returns their names.

    Only databases named ``playlist_tools_at_...`` *and* carrying
    :data:`CACHE_COMMENT` are dropped: nothing we did not create.
    """
    admin = _admin(server_url(resolve(config)))
    try:
        with admin.connect() as conn:
            names = conn.execute(sa.text(
                "SELECT d.datname FROM pg_database d JOIN pg_shdescription s "
                "ON s.objoid = d.oid AND s.classoid = 'pg_database'::regclass "
                "WHERE d.datname LIKE :prefix AND s.description LIKE :comment ORDER BY d.datname"
            ), {"prefix": CACHE_PREFIX + "%", "comment": CACHE_COMMENT + "%"}).scalars().all()
        for name in names:
            db.drop_database(admin, name)
        return list(names)
    finally:
        admin.dispose()
