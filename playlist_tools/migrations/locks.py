"""The locks migrations take, and how long they wait for others' locks.

Two kinds of waiting can stall a migration, and both end in a one-line
:class:`~playlist_tools.errors.LockTimeoutError` that names the session in
the way (found with :mod:`playlist_tools.db.activity`) and how to release it,
instead of hanging:

* **Table locks.** Every migration runs with ``lock_timeout`` (default
  ``10s``; ``$PLAYLIST_TOOLS_LOCK_TIMEOUT`` or ``lock_timeout=`` to change,
  ``0`` to wait forever). The usual culprit is a notebook whose connection
  sits *idle in transaction* after a ``SELECT``, holding a share lock on a
  table the migration wants to alter.
* **The migration lock.** A PostgreSQL advisory lock serialises migration
  runs on one database. A waiter keeps waiting while the holder is busy
  (a long backfill is fine), but gives up once the holder has been idle
  for longer than ``lock_timeout``: a healthy migration is never idle that
  long, so that holder is stuck (a paused debugger, a hand-taken lock).
  A migration that computes in Python for longer than that between two
  statements looks stuck too; its waiters then fail with that message
  and can simply run again (or raise the timeout).

Behind PgBouncer in transaction-pooling mode the lock is held differently
(one transaction for the whole run); :func:`migration_lock` says how, and
``docs/pgbouncer.md`` why. No setting of ours outlives its transaction.

Examples
--------
>>> from playlist_tools import db
>>> from playlist_tools.migrations import locks
>>> locks.lock_timeout_ms("2min"), locks.lock_timeout_ms(1.5), locks.lock_timeout_ms("0")
(120000, 1500, 0)
>>> with db.fresh_database() as url:
...     engine = db.create_engine(url)
...     with engine.connect() as connection, locks.migration_lock(connection, 1000):
...         connection.exec_driver_sql("SHOW lock_timeout").scalar_one()
...     engine.dispose()
'1s'
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from playlist_tools import db
from playlist_tools.db.activity import advisory_holder, lock_holders, release_hint
from playlist_tools.errors import LockTimeoutError, MigrationError, SettingError, sqlstate

__all__ = [
    "LOCK_TIMEOUT_ENV",
    "DEFAULT_LOCK_TIMEOUT",
    "MIGRATION_LOCK_KEY",
    "lock_timeout_ms",
    "render_timeout",
    "migration_lock",
]

LOCK_TIMEOUT_ENV = "PLAYLIST_TOOLS_LOCK_TIMEOUT"
"""Environment variable: how long a migration waits for a lock (``10s``, ``500ms``, ``2min``; ``0`` = forever)."""

DEFAULT_LOCK_TIMEOUT = "10s"
"""Long enough for a busy analyst query to finish, short enough that nobody wonders whether it hangs."""

MIGRATION_LOCK_KEY = 0x706C_746F  # "plto"
"""``pg_advisory_lock`` key that serialises migrations on one database."""

_UNITS_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}
_TIMEOUT_TEXT = re.compile(r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|min|h)?\s*")
_POLL_SECONDS = (0.05, 0.5)  # first and longest pause between tries for the migration lock


def lock_timeout_ms(value: str | float | dt.timedelta | None = None) -> int:
    """Resolve a lock timeout to milliseconds: ``value``, else the environment, else 10 s.

    Parameters
    ----------
    value : str, int, float, datetime.timedelta or None
        Text with a PostgreSQL unit (``"500ms"``, ``"10s"``, ``"2min"``,
        ``"1h"``; a bare ``"0"`` means wait forever), a number of seconds, or
        a timedelta. ``None`` reads ``$PLAYLIST_TOOLS_LOCK_TIMEOUT``.

    Raises
    ------
    SettingError
        For negative values, text without a unit, or text that is not a duration.

    Examples
    --------
    >>> lock_timeout_ms("500ms"), lock_timeout_ms(dt.timedelta(seconds=3))
    (500, 3000)
    >>> lock_timeout_ms("10")
    Traceback (most recent call last):
    ...
    playlist_tools.errors.SettingError: lock timeout '10' has no unit;
    write it like 500ms, 10s or 2min (0 waits forever)
    """
    source = "lock timeout"
    if value is None:
        value = os.environ.get(LOCK_TIMEOUT_ENV, "").strip() or DEFAULT_LOCK_TIMEOUT
        source = LOCK_TIMEOUT_ENV
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise SettingError(f"{source} {value!r} is negative; give seconds >= 0 (0 waits forever)")
        return round(value * 1000)
    match = _TIMEOUT_TEXT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise SettingError(
            f"{source} {value!r} is not a duration; write it like 500ms, 10s or 2min (0 waits forever)"
        )
    number = float(match["number"])
    if match["unit"] is None and number != 0:
        raise SettingError(f"{source} {value!r} has no unit; write it like 500ms, 10s or 2min (0 waits forever)")
    return round(number * _UNITS_MS[match["unit"] or "ms"])


def render_timeout(ms: int) -> str:
    """PostgreSQL text for a timeout: ``render_timeout(10000) == '10s'``.

    Examples
    --------
    >>> render_timeout(10_000), render_timeout(1500), render_timeout(0)
    ('10s', '1500ms', '0')
    """
    if ms == 0:
        return "0"
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _acquire(connection: Connection, timeout_ms: int, how: str, log: Callable[[str], None] | None) -> int:
    """Take the migration lock, waiting while its holder works, giving up when it is stuck; our server pid.

    ``how`` is :data:`_SESSION` (a session-level lock, each try in a
    transaction of its own), :data:`_RUN` (a transaction-level lock in the
    transaction the run will use; each failed try is rolled back) or
    :data:`_CALLERS` (a transaction-level lock in the caller's transaction,
    which stays open while we wait).
    """
    take = "pg_try_advisory_lock" if how == _SESSION else "pg_try_advisory_xact_lock"
    pause, announced = _POLL_SECONDS[0], False
    while True:
        if how == _RUN:
            # The run's statements must see what the last holder committed: a REPEATABLE READ transaction
            # would keep the snapshot of this very statement, taken before the holder let go.
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        taken, own_pid = connection.execute(
            sa.text(f"SELECT {take}(:key), pg_backend_pid()"), {"key": MIGRATION_LOCK_KEY}
        ).one()
        if taken:
            return int(own_pid)
        holder = advisory_holder(connection, MIGRATION_LOCK_KEY)
        if how != _CALLERS:
            connection.rollback()  # wait outside a transaction: no snapshot held, nothing to vacuum around
        if holder is None:
            continue  # released between the two queries
        stuck = holder.state != "active" and holder.seconds * 1000 > timeout_ms
        if timeout_ms and stuck:
            raise LockTimeoutError(
                f"another migration holds the migration lock and has been idle longer than the lock timeout "
                f"({render_timeout(timeout_ms)}): {holder.describe()}; {release_hint([holder])}",
                (holder,),
            )
        if not announced and log is not None:
            log(f"waiting for the migration lock, held by {holder.describe()}")
            announced = True
        time.sleep(pause)
        pause = min(pause * 2, _POLL_SECONDS[1])


def _is_lock_timeout(err: BaseException) -> bool:
    return sqlstate(err) == "55P03"


def _explain(connection: Connection, err: sa.exc.DBAPIError, timeout_ms: int, own_pid: int) -> LockTimeoutError:
    """Turn PostgreSQL's bare "lock timeout" into a message that names who is in the way.

    The sessions holding locks on the tables the statement names come
    first; when none does (the statement locks tables it does not name, as
    ``TRUNCATE ... CASCADE`` does), every session holding a table lock is a
    suspect, busy or idle. The statement's own session is never one.
    """
    statement = " ".join(str(err.statement or "").split())
    names = sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", statement)))
    # The failed session is rolled back or aborted; ask from a fresh one.
    with connection.engine.connect() as probe:
        holders = lock_holders(probe, names, exclude=[own_pid])
        suspects = holders or lock_holders(probe, exclude=[own_pid])
    shown = statement if len(statement) <= 80 else statement[:77] + "..."
    head = f"{shown!r} waited {render_timeout(timeout_ms)} for a lock and gave up"
    tail = f"; or wait longer with {LOCK_TIMEOUT_ENV}=60s (0 waits forever)"
    if not suspects:
        return LockTimeoutError(f"{head}; the session in the way has gone, so run the migration again{tail}")
    who = "; ".join(holder.describe() for holder in suspects[:3])
    by = "blocked by" if holders else "blocked by one of the sessions holding table locks:"
    return LockTimeoutError(f"{head}: {by} {who}; {release_hint(suspects[:3])}{tail}", tuple(suspects))


_SESSION, _RUN, _CALLERS = "session", "run", "caller's transaction"  # how the migration lock is held


def _how(connection: Connection) -> str:
    """How to hold the migration lock on ``connection``; see :func:`migration_lock`."""
    if connection.in_transaction():
        return _CALLERS
    pooled = db.behind_pooler(connection)
    connection.rollback()
    return _RUN if pooled else _SESSION


def _timeout_each_transaction(value: str) -> Callable[[Connection], None]:
    """A ``begin`` listener: each transaction of the connection starts with ``lock_timeout`` set for it alone."""

    def set_timeout(connection: Connection) -> None:
        # On the driver's cursor: SQLAlchemy is still beginning, so its own execute would begin again.
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [value])
        finally:
            cursor.close()

    return set_timeout


@contextlib.contextmanager
def migration_lock(
    connection: Connection, timeout_ms: int | None = None, *, log: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the migration lock, with ``lock_timeout`` set, for the whole block.

    Nothing is left on the session afterwards: ``lock_timeout`` is only ever
    set for one transaction (``set_config(..., true)``), so a pooled server
    connection goes back to the pool as it came. The lock is held in one of
    three ways:

    * **A direct connection outside a transaction** (the ``alembic`` CLI,
      :mod:`playlist_tools.migrations`): the lock is session-level, taken
      and committed before the block, so it spans every per-migration
      COMMIT, and released afterwards, on error too. Each transaction in
      the block starts with ``lock_timeout`` set for it.
    * **Through a pooler** such as PgBouncer in transaction mode
      (:func:`playlist_tools.db.behind_pooler`): a session-level lock would
      be taken on whichever server connection served that one transaction,
      so the block is one transaction instead. It takes a transaction-level
      lock (``pg_advisory_xact_lock``), runs at READ COMMITTED so it sees
      what the previous holder committed, and COMMITs when the block ends
      (ROLLBACK on error). Alembic finds the transaction open and runs every
      migration inside it: the run is applied whole or not at all
      (PostgreSQL's DDL is transactional).
    * **Inside the caller's transaction**: the lock and the setting are
      transaction-level and end with the caller's COMMIT or ROLLBACK.

    A lock timeout inside the block becomes a :class:`LockTimeoutError`
    naming the blocking sessions.

    Parameters
    ----------
    connection : sqlalchemy.engine.Connection
        The connection migrations run on; the caller keeps owning it.
    timeout_ms : int, optional
        See :func:`lock_timeout_ms`; default from the environment, else 10 s.
    log : callable, optional
        Called once with a message when the lock is busy and we wait.
    """
    timeout_ms = lock_timeout_ms() if timeout_ms is None else timeout_ms
    value = f"{timeout_ms}ms"
    how = _how(connection)
    set_timeout = _timeout_each_transaction(value)
    if how == _SESSION:
        sa.event.listen(connection, "begin", set_timeout)
    try:
        own_pid = _acquire(connection, timeout_ms, how, log)
        if how == _SESSION:
            connection.commit()
        else:
            connection.execute(sa.text("SELECT set_config('lock_timeout', :value, true)"), {"value": value})
        try:
            yield
        except BaseException as err:
            if how == _RUN:
                _rollback(connection)  # the whole run, and the lock with it
                if isinstance(err, AssertionError) and _in_autocommit_block(err):
                    raise MigrationError(
                        "a migration runs statements outside a transaction (autocommit_block, e.g. CREATE INDEX "
                        "CONCURRENTLY), but behind a pooler a migration run is one transaction; nothing was "
                        "applied: run this upgrade with DATABASE_URL straight at PostgreSQL, not at the pooler"
                    ) from err
            if isinstance(err, sa.exc.DBAPIError) and _is_lock_timeout(err):
                raise _explain(connection, err, timeout_ms, own_pid) from err
            raise
        finally:
            if how == _SESSION:
                _release(connection)
        if how == _RUN:
            connection.commit()
    finally:
        if how == _SESSION:
            sa.event.remove(connection, "begin", set_timeout)


def _in_autocommit_block(err: AssertionError) -> bool:
    """Whether Alembic's ``autocommit_block`` refused: it cannot commit a transaction it did not begin."""
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and frames[-1].name == "autocommit_block"


def _rollback(connection: Connection) -> None:
    try:
        if connection.in_transaction():
            connection.rollback()
    except sa.exc.DBAPIError:
        pass  # the session itself is gone (terminated, network): so is its transaction


def _release(connection: Connection) -> None:
    try:
        _rollback(connection)
        connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
    except sa.exc.DBAPIError:
        pass  # the session itself is gone (terminated, network): so is its lock
