"""What an upgrade or downgrade would lock, rewrite, scan and destroy: measured, before it runs.

Private to :mod:`playlist_tools.migrations`. (Being built for issue 13.)
"""

from __future__ import annotations

import pandas as pd
from alembic.config import Config

__all__ = ["impact"]


def impact(config: Config | None = None, target: str = "head") -> pd.DataFrame:
    """One row per operation that moving to ``target`` would run (issue 13; not yet)."""
    raise NotImplementedError("migrations.impact is being built (issue 13)")
