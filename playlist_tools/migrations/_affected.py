"""Which saved queries a migration breaks or changes, checked on a replay of the history.

Private to :mod:`playlist_tools.migrations`. (Being built for issue 13.)
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

import pandas as pd
from alembic.config import Config

__all__ = ["affected_queries"]


def affected_queries(
    config: Config | None = None,
    target: str = "head",
    queries: Mapping[str, str] | str | PathLike[str] | None = None,
) -> pd.DataFrame:
    """For each named query: does it still run at ``target``, and with the same columns? (issue 13; not yet)."""
    raise NotImplementedError("migrations.affected_queries is being built (issue 13)")
