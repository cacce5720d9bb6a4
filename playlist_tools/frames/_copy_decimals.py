"""A column of ``Decimal`` objects as Arrow decimals in C, where that is exact; the per-value path otherwise.

Private to :mod:`playlist_tools.frames`: ``_copy`` tries :func:`decimals`
on an object column bound for ``numeric(p, s)`` with ``p`` up to 38 (what
``read_parquet`` and ``Decimal`` arithmetic give) before its per-value path,
which checks and words every problem but costs seconds on a million rows.

pyarrow reads ``Decimal('NaN')`` as NULL and refuses infinities, ints beyond
64 bits and floats among decimals; given the column's exact type, it refuses
lost digits and overflow. So the result is taken only when pyarrow found no
NaN among the values (each of pandas' missing values is looked at, and only
those) and took every value as that type: then every value is the same
number. Anything else returns None, and the per-value path says what is wrong.

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

import pandas as pd
import pyarrow as pa


def decimals(series: pd.Series, exact: pa.Decimal128Type) -> pa.Array | None:
    """``series`` as ``exact``, when every value is an int, a finite ``Decimal`` or missing and fits; else None."""
    try:  # given the type, pyarrow refuses lost digits and overflow, and is ten times faster than inferring one
        array = pa.array(series, exact, from_pandas=True)
        missing = series.isna().to_numpy()  # a signalling NaN raises here
    except (pa.ArrowException, TypeError, ValueError, OverflowError, ArithmeticError):
        return None
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    # pandas counts Decimal('NaN') as missing and pyarrow makes it NULL: look at the missing ones only.
    if array.null_count != missing.sum() or any(isinstance(v, Decimal) for v in series.to_numpy()[missing]):
        return None
    return array
