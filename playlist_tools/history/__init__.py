"""The Alembic history, as both :mod:`playlist_tools.schema` and :mod:`playlist_tools.migrations` need it.

This room sits below those two (they call it; it calls neither) and above
``db``, ``models`` and ``errors``. It owns:

* the config every function takes, and the one place ``config=None``
  becomes the repo's migrations (:func:`config`, :func:`resolve`), the
  migrations folder it names (:func:`script_directory`), the database
  connection it carries (:func:`connection`) and where that database is
  (:func:`current_heads`);
* the one translator of Alembic's errors into ours (:func:`alembic_errors`
  for the Python API, :func:`cli_errors` for ``alembic/env.py``,
  :func:`check_revision` for an empty id typed);
* the history replayed into cache databases on the same server
  (:func:`template`, :func:`replayed`, :func:`drop_replays`);
* rename candidates, the one rule of what may be a rename
  (:func:`candidates`, and :func:`apply_renames` for autogenerate);
* the next readable revision id (:func:`next_id`);
* a revision's step rendered offline (:func:`render`), and Alembic run
  inside a run of Alembic (:func:`kept_proxies`, :func:`quiet_alembic`);
  every use of Alembic's private API is in ``_alembic_private``.

Examples
--------
>>> from playlist_tools import history
>>> cfg = history.config()
>>> history.resolve(cfg) is cfg, history.next_id(history.script_directory(cfg)) > "0005"
(True, True)
"""

from playlist_tools.history._alembic_private import installed_operations, kept_proxies, statement_runner, wrap_plan
from playlist_tools.history._config import (
    REPO_ROOT,
    config,
    connection,
    current_heads,
    resolve,
    script_directory,
)
from playlist_tools.history._errors import alembic_errors, check_revision, cli_errors, read_config, translate
from playlist_tools.history._offline import quiet_alembic, render
from playlist_tools.history._renames import apply_renames, candidates, found, sql_type
from playlist_tools.history._replay import (
    CACHE_PREFIX,
    ONE_RUN_AT_A_TIME,
    drop_replays,
    replayed,
    server_url,
    template,
)
from playlist_tools.history._revision_ids import next_id

__all__ = [
    "CACHE_PREFIX",
    "ONE_RUN_AT_A_TIME",
    "REPO_ROOT",
    "alembic_errors",
    "apply_renames",
    "candidates",
    "check_revision",
    "cli_errors",
    "config",
    "connection",
    "current_heads",
    "drop_replays",
    "found",
    "installed_operations",
    "kept_proxies",
    "next_id",
    "quiet_alembic",
    "read_config",
    "render",
    "replayed",
    "resolve",
    "script_directory",
    "server_url",
    "sql_type",
    "statement_runner",
    "template",
    "translate",
    "wrap_plan",
]
