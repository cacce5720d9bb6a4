"""What an upgrade or downgrade would lock, rewrite, scan and destroy: measured, before it runs.

Private to :mod:`playlist_tools.migrations`, which re-exports :func:`impact`;
``playlist-tools migrate plan`` prints it. The statements are run and
measured on a replay of the schema (:mod:`._impact_measure`); the rows and
the sessions in the way are read from the user's database as it is now
(:mod:`._impact_locks`); what a step destroys comes from :func:`data_loss`
and the squawk findings from :func:`._lint.findings`.
"""

from __future__ import annotations

import re

import pandas as pd
from alembic.config import Config

from playlist_tools.errors import DataLossError, RevisionError
from playlist_tools.migrations import _impact_locks as locks
from playlist_tools.migrations._config import connection, current_heads, resolve, script
from playlist_tools.migrations._data_loss import Loss, data_loss, describe_losses, drops, planned
from playlist_tools.migrations._env import lock_timeout_sql
from playlist_tools.migrations._errors import alembic_errors, check_revision
from playlist_tools.migrations._impact_measure import Measured, measure
from playlist_tools.migrations._lint import config_path, findings
from playlist_tools.migrations._replay import replay_server

__all__ = ["IMPACT_COLUMNS", "impact"]

IMPACT_COLUMNS = {
    "revision": "string", "operation": "string", "table": "string", "sql": "string", "lock": "string",
    "rewrites": "boolean", "scans": "boolean", "rows": "Int64", "blocked_by": "string", "destroys": "string",
    "lint": "string", "note": "string",
}
"""The columns of :func:`impact` and their dtypes."""


def _lint(cfg: Config, measured: list[Measured]) -> list[str]:
    """Each statement's squawk findings (``rule: message; ...``), from one squawk run over all of them.

    The script is laid out as ``alembic upgrade --sql`` lays it out (the
    ``SET lock_timeout`` first, one transaction per revision, statements
    outside a transaction between them), so rules that look at the context
    judge each statement as they would judge the revision.
    """
    lines = [lock_timeout_sql(cfg) + ";", ""]
    owner: list[int | None] = [None, None]
    in_transaction, revision = False, None
    for index, entry in enumerate(measured):
        if in_transaction and (entry.revision != revision or entry.outside_transaction):
            lines += ["COMMIT;", ""]
            owner += [None, None]
            in_transaction = False
        if not in_transaction and not entry.outside_transaction:
            lines += ["BEGIN;", ""]
            owner += [None, None]
            in_transaction = True
        revision = entry.revision
        text = entry.sql.rstrip().rstrip(";") + ";"
        for line in [*text.splitlines(), ""]:
            lines.append(line)
            owner.append(index)
    if in_transaction:
        lines.append("COMMIT;")
    found = findings("\n".join(lines) + "\n", config_path(cfg), by_revision=False)
    per_statement: list[list[str]] = [[] for _ in measured]
    for row in found.itertuples():
        at = owner[int(row.line) - 1] if int(row.line) - 1 < len(owner) else None
        if at is not None:
            per_statement[at].append(f"{row.rule}: {row.message}")
    return ["; ".join(dict.fromkeys(texts)) for texts in per_statement]


def _losses(cfg: Config, target: str) -> pd.DataFrame | None:
    """:func:`data_loss` for this move; ``None`` (not counted) when a step does not render offline."""
    try:
        return data_loss(cfg, target)
    except DataLossError:
        return None


def _destroys(losses: pd.DataFrame | None, revision: str, table: str | None, sql: str) -> str | None:
    """What this statement destroys on this table, as :func:`describe_losses` says it."""
    if losses is None:
        return None
    if table is None:
        return ""
    own = losses[(losses["rev"] == revision) & (losses["table"] == table)]
    dropped = {column for dropped_table, column in drops(sql) if dropped_table == table}
    named = [c in dropped or (c != "*" and re.search(rf"\b{re.escape(c)}\b", sql) is not None) for c in own["column"]]
    mine = own[named]
    return describe_losses(Loss(*row) for row in mine.itertuples(index=False))


def _rows(measured: list[Measured], findings_by_statement: list[str]) -> list[dict[str, object]]:
    """One row per statement and table it locks (the operation's own table first); a statement locking none: one."""
    rows = []
    for entry, lint in zip(measured, findings_by_statement, strict=True):
        tables = sorted(entry.locks, key=lambda t: (t != entry.op_table, t)) or [entry.op_table]
        for table in tables:
            modes = entry.locks.get(table) if table else None
            rows.append({
                "revision": entry.revision, "operation": entry.operation, "table": table, "sql": entry.sql,
                "lock": locks.strongest(modes) if modes else None,
                "rewrites": table in entry.rewrites,
                "scans": None if entry.scans is None else table in entry.scans,
                "modes": modes or set(), "lint": lint, "note": entry.note,
            })
    return rows


def impact(config: Config | None = None, target: str = "head") -> pd.DataFrame:
    """What moving the database to ``target`` would do, statement by statement, before it runs.

    ``playlist-tools migrate plan [TARGET]`` on the command line. Nothing
    is run on your database: each revision's ``upgrade()`` (a
    ``downgrade()`` when ``target`` is behind the database's revision)
    runs through Alembic on a throwaway copy of the schema at the
    database's current revision, on the same server (on the embedded one
    when your role may not create databases or the server is a standby),
    with no rows; there
    each statement runs in a transaction of its own and the server says
    which locks it took (``pg_locks``), whether it rewrote a table (its
    ``relfilenode`` changed) and whether it read a whole table
    (``seq_scan`` in ``pg_stat_xact_user_tables``). Then your database
    is asked how many rows each table has and who holds a conflicting lock
    on it right now.

    Parameters
    ----------
    config : alembic.config.Config or None
        See :mod:`playlist_tools.migrations`.
    target : str
        ``"head"``, an id, ``"+N"``, ``"-N"`` or ``"base"``, as for
        :func:`upgrade` and :func:`downgrade`.

    Returns
    -------
    pandas.DataFrame
        One row per statement and table it locks, in the order they would
        run (a statement locking no table: one row). Columns
        (:data:`IMPACT_COLUMNS`): ``revision``, ``operation`` (the ``op.``
        function: ``add_column``, ``create_index``, ``execute``, ...),
        ``table``, ``sql``, ``lock`` (the strongest table lock it takes
        there, e.g. ``ACCESS EXCLUSIVE``; NA when none or not measured),
        ``rewrites``, ``scans``, ``rows`` (exact below
        :data:`playlist_tools.schema.EXACT_COUNT_BELOW`, the planner's
        estimate above; NA for a table your database does not have yet),
        ``blocked_by`` (the sessions holding a lock that conflicts with any
        lock it takes there, as :meth:`~playlist_tools.db.activity.SessionInfo.describe`
        says them, ``"; "``-separated; empty when none), ``destroys`` (from
        :func:`data_loss`; empty when nothing, NA when not counted),
        ``lint`` (squawk's ``rule: message`` for the statement) and
        ``note`` (why something was not measured). Empty when the database
        is already at ``target``. ``attrs["measured_elsewhere"]`` is
        ``None`` when the replay ran on your server, else one sentence
        saying where it ran and why (the role may not create databases, or
        the server is a standby: then the embedded server, maybe another
        major version, measured the locks and rewrites).

    Notes
    -----
    Every revision runs in one transaction, so each lock is held until the
    end of its revision, not only for its statement. A statement outside a
    transaction (``CREATE INDEX CONCURRENTLY`` in an ``autocommit_block``)
    is made to wait on a second session so its locks can be read; if it
    finishes without waiting, ``note`` says its locks were not measured.
    Statements a revision sends through ``op.get_bind()`` itself, rather
    than through ``op``, are run but not listed.

    Raises
    ------
    RevisionError
        For an unknown target, or a range.
    MigrationError
        When a statement fails on the replay (it would fail for real).

    Examples
    --------
    >>> from playlist_tools import migrations
    >>> from playlist_tools.workspace import Workspace
    >>> with Workspace.open(upto="0002") as ws:
    ...     _ = migrations.upgrade(ws.config, "0001")
    ...     plan = impact(ws.config)
    >>> plan[["revision", "operation", "table", "lock", "rewrites", "scans", "rows"]]
      revision   operation      table              lock  rewrites  scans  rows
    0     0002  add_column  playlists  ACCESS EXCLUSIVE     False  False     0
    """
    from playlist_tools.schema import EXACT_COUNT_BELOW  # schema builds on migrations: import when called

    cfg = resolve(config)
    check_revision(target)
    if ":" in target:
        raise RevisionError(f"impact takes one target such as 'head' or '0002', not a range {target!r}")
    current = current_heads(cfg)
    with alembic_errors(cfg):
        plan = planned(script(cfg), current, target)
    steps, upward = [step for step, _ in plan], all(up for _, up in plan)
    if not steps:
        empty = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in IMPACT_COLUMNS.items()})
        empty.attrs["measured_elsewhere"] = None
        return empty
    elsewhere = replay_server(cfg).elsewhere
    measured = measure(cfg, ",".join(current) or "base", steps, upward)
    rows = _rows(measured, _lint(cfg, measured))
    losses = _losses(cfg, target)
    with connection(cfg) as conn:
        live: dict[str, tuple[int | None, str]] = {}
        for row in rows:
            table = row["table"]
            if table is None:
                row["rows"], row["blocked_by"] = None, ""
                continue
            if table not in live:
                live[table] = (locks.row_count(conn, table, EXACT_COUNT_BELOW), "")
            in_the_way = locks.blockers(conn, table, row["modes"]) if row["modes"] else []
            row["rows"] = live[table][0]
            row["blocked_by"] = "; ".join(session.describe() for session in in_the_way)
    for row in rows:
        row["destroys"] = _destroys(losses, str(row["revision"]), row["table"], str(row["sql"]))
    frame = pd.DataFrame(rows, columns=list(IMPACT_COLUMNS)).astype(IMPACT_COLUMNS)
    frame.attrs["measured_elsewhere"] = elsewhere
    return frame
