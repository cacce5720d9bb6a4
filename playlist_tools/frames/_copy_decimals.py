"""A column of ``Decimal`` objects as Arrow decimals in C, where that is exact; the per-value path otherwise.

Private to :mod:`playlist_tools.frames`: ``_copy`` tries :func:`decimals`
on an object column bound for ``numeric(p, s)`` with ``p`` up to 38 (what
``read_parquet`` and ``Decimal`` arithmetic give) before its per-value path,
which checks and words every problem but costs seconds on a million rows.

Only a column whose values are all exactly ``Decimal`` or ``int`` objects
or missing (None, NaN, ``pd.NA``; no ``Decimal('NaN')``, which is a value)
is taken: each value's ``str()``, its exact decimal text, is parsed by
pyarrow in C and cast to the column's exact type, which refuses lost digits,
overflow and the text of an infinity. That is three to four times faster
than pyarrow converting the ``Decimal`` objects themselves, and gives the
same numbers. Anything else returns None, and the per-value path says what
is wrong.

Examples
--------
>>> import pandas as pd, pyarrow as pa
>>> from decimal import Decimal as D
>>> decimals(pd.Series([D("1.5"), None, 2]), pa.decimal128(3, 1)).to_pylist()
[Decimal('1.5'), None, Decimal('2.0')]
>>> decimals(pd.Series([D("NaN")]), pa.decimal128(3, 1)) is None  # NaN is a value: the per-value path writes it
True
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa


def decimals(series: pd.Series, exact: pa.Decimal128Type) -> pa.Array | None:
    """``series`` as ``exact``, when every value is an int, a finite ``Decimal`` or missing and fits; else None."""
    values = series.to_numpy(dtype=object)
    try:
        missing = series.isna().to_numpy()  # pandas counts Decimal('NaN') as missing; a signalling NaN raises
    except (TypeError, ValueError, ArithmeticError):
        return None
    present = values[~missing]
    # Exactly Decimal or int (not bool, not a numpy integer, no subclass): their str() is their exact value.
    # set(map(type, ...)) loops in C: a tenth of the time of isinstance on each missing value.
    if not set(map(type, present)) <= _EXACT or any(issubclass(t, Decimal) for t in set(map(type, values[missing]))):
        return None
    texts = np.full(len(values), None, object)
    texts[~missing] = [str(v) for v in present]
    try:  # parsed in C, then cast to the exact type, which refuses lost digits and overflow
        return pa.array(texts, pa.string()).cast(exact)
    except (pa.ArrowException, ValueError, OverflowError):
        return None


_EXACT = {Decimal, int}
