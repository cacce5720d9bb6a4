"""A run's options, typed, under one ``config.attributes`` key: written by one function, read by one.

``migrations.upgrade(config, ..., allow_data_loss=True)`` has to tell
``alembic/env.py``, which Alembic runs, what this call asked for. It does so
through :func:`with_run_options`, which returns a *copy* of the caller's
``Config`` carrying a :class:`RunOptions` under :data:`KEY`; the caller's
``Config`` is never changed, so two threads (or two calls) sharing one
``Config`` cannot overwrite each other's options. env.py's side reads them
with :func:`run_options`, the one reader.

A plain ``alembic.command`` caller may still set the keys the docs name,
``config.attributes["allow_data_loss"]``, ``["lock_timeout"]``,
``["renames"]`` and ``["on_version_apply"]``: :func:`run_options` reads them
when no :class:`RunOptions` is given. ``connection`` and ``target_metadata``
stay Alembic's and pytest-alembic's own keys, and ``url`` and
``skip_logging_config`` describe the config itself (what :func:`~._config.config` sets).

Examples
--------
>>> from alembic.config import Config
>>> cfg = Config()
>>> run = with_run_options(cfg, allow_data_loss=True)
>>> run_options(run).allow_data_loss, run_options(cfg).allow_data_loss, KEY in cfg.attributes
(True, None, False)
>>> cfg.attributes["lock_timeout"] = "2s"  # the documented key of a plain alembic.command caller
>>> run_options(cfg).lock_timeout, run_options(with_run_options(cfg, renames={"songs": "tracks"})).lock_timeout
('2s', '2s')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from alembic.config import Config

from playlist_tools.history._alembic_private import detached_copy

__all__ = ["KEY", "RunOptions", "run_options", "with_run_options"]

KEY = "playlist_tools.run_options"
"""The one ``config.attributes`` key our functions pass a run's options under."""


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What one call into Alembic asked for, beyond Alembic's own arguments."""

    allow_data_loss: bool | None = None
    """Consent to destroy data: ``True``/``False`` from Python; ``None`` leaves it to ``-x allow_data_loss=``."""

    renames: Mapping[str, str] | None = None
    """Confirmed renames for autogenerate (``{"songs.media_type": "file_format"}``); ``None``: none given."""

    on_version_apply: tuple[Callable[..., Any], ...] = ()
    """Alembic's ``on_version_apply`` hooks: each hears of every revision the run applies, inside the lock."""

    safe: bool | None = None
    """Lock-safe forms in autogenerate (``True``) or Alembic's plain ones; ``None``: ``-x safe=``, the ini, else yes."""

    lock_timeout: str | int | None = None
    """``lock_timeout`` for this run (``"10s"``, milliseconds); ``None``: ``$PLAYLIST_TOOLS_LOCK_TIMEOUT`` or 10 s."""


def run_options(config: Config) -> RunOptions:
    """The options of the run ``config`` is for: the typed ones, else the documented plain keys."""
    given = config.attributes.get(KEY)
    if isinstance(given, RunOptions):
        return given
    plain = config.attributes
    return RunOptions(
        allow_data_loss=plain.get("allow_data_loss"),
        renames=plain.get("renames"),
        on_version_apply=tuple(plain.get("on_version_apply") or ()),
        lock_timeout=plain.get("lock_timeout"),
    )


def with_run_options(config: Config, **changes: Any) -> Config:
    """A copy of ``config`` whose run options are ``config``'s with ``changes``; ``config`` stays as it was.

    The copy shares everything else (its ini, its ``connection``), so a run on
    it is a run on the caller's database with the caller's settings.
    """
    options = dataclasses.replace(run_options(config), **changes)
    return detached_copy(config, {**config.attributes, KEY: options})
