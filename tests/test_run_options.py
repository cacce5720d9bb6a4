"""A run's options reach env.py on a copy of the caller's Config: the caller's is never changed (issue 19).

Before, ``upgrade``/``downgrade`` set ``allow_data_loss`` and ``on_version_apply`` on the caller's
``Config`` for the length of the call, so two threads sharing one Config overwrote each other.
"""

from __future__ import annotations

import io
import threading

from alembic.config import Config
from sqlalchemy.engine import URL

from playlist_tools import history, migrations


def test_the_callers_config_is_not_changed_while_a_run_goes_on(database_url: URL) -> None:
    cfg = migrations.config(database_url)
    seen: list[dict[str, object]] = []
    cfg.attributes["on_version_apply"] = [lambda **_: seen.append(dict(cfg.attributes))]  # the documented key
    before = dict(cfg.attributes)

    ran = migrations.upgrade(cfg, "0002", allow_data_loss=True)

    assert ran["rev"].tolist() == ["0001", "0002"]  # the caller's own hook was heard, and ours recorded
    assert seen == [before, before]  # during the run, too: nothing was set on the caller's Config
    assert cfg.attributes == before


def test_two_threads_sharing_one_config_keep_their_own_options(database_url: URL) -> None:
    cfg = migrations.config(database_url)
    migrations.upgrade(cfg, "head")
    barrier = threading.Barrier(2)
    found: dict[str, object] = {}

    def read(name: str, allow: bool) -> None:
        run = history.with_run_options(cfg, allow_data_loss=allow)
        barrier.wait()  # both copies exist before either reads
        found[name] = history.run_options(run).allow_data_loss

    threads = [threading.Thread(target=read, args=(name, allow)) for name, allow in (("yes", True), ("no", False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == {"yes": True, "no": False}
    assert history.run_options(cfg).allow_data_loss is None


def test_sql_leaves_the_callers_output_buffer() -> None:
    cfg = migrations.config()
    mine = io.StringIO()
    cfg.output_buffer = mine
    assert "ALTER TABLE playlists ADD COLUMN description" in migrations.sql(cfg, "0001:0002")
    assert cfg.output_buffer is mine and mine.getvalue() == ""


def test_a_plain_alembic_command_caller_still_uses_the_documented_keys() -> None:
    cfg = Config()
    cfg.attributes.update(allow_data_loss=True, lock_timeout="2s", renames={"songs": "tracks"})
    options = history.run_options(cfg)
    assert (options.allow_data_loss, options.lock_timeout) == (True, "2s")
    assert dict(options.renames or {}) == {"songs": "tracks"}
