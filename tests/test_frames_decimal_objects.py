"""The fast path for object columns of ``Decimal`` and ``int`` into ``numeric(p, s)``: the same numbers, or none.

``_copy_decimals.decimals`` parses each value's text in C (issue 21: the slowest stage of writing a frame
from ``pd.read_sql``). Whatever it takes must be exactly the values given; whatever is not exact (too many
digits, NaN, infinities, floats, bools, numpy scalars) must be left to the per-value path (``None``), which
words the problem or writes the value as PostgreSQL would. The round trips through the server are in
``test_frames_roundtrip_props.py`` and ``test_frames_write_speedpath.py``.
"""

from __future__ import annotations

import decimal

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

# The function under test is private to frames and reached by no public path alone.
from playlist_tools.frames._copy_decimals import decimals

D = decimal.Decimal
SHAPES = [(3, 1), (10, 2), (5, 5), (38, 0), (38, 10), (15, 0)]
VALUES = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(-D("1e5"), D("1e5"), places=3),
    st.integers(-(10**40), 10**40),
    st.none(),
    st.just(float("nan")),
    st.just(pd.NA),
    st.floats(-100, 100),
    st.booleans(),
    st.integers(-100, 100).map(np.int64),
)


def exact(value: object, precision: int, scale: int) -> D | None:
    """What the value must become in ``numeric(precision, scale)``, or None when it is not exactly a number there."""
    if type(value) not in (D, int):
        return None
    number = D(value)  # type: ignore[arg-type]
    if not number.is_finite():
        return None
    quantum = D(1).scaleb(-scale)
    with decimal.localcontext(decimal.Context(prec=200)):
        if number.quantize(quantum) != number or abs(number.quantize(quantum)) >= D(10) ** (precision - scale):
            return None
        return number.quantize(quantum)


@given(st.lists(VALUES, max_size=30), st.sampled_from(SHAPES))
def test_taken_values_are_exactly_the_given_ones(values: list[object], shape: tuple[int, int]) -> None:
    series = pd.Series(values, dtype=object)
    array = decimals(series, pa.decimal128(*shape))
    missing = [v is None or v is pd.NA or (isinstance(v, float) and v != v) for v in values]
    wanted = [None if m else exact(v, *shape) for v, m in zip(values, missing, strict=True)]
    if array is None:  # left to the per-value path: only when some value is not exact there
        assert any(w is None and not m for w, m in zip(wanted, missing, strict=True))
        return
    assert array.type == pa.decimal128(*shape)
    assert all(w is not None or m for w, m in zip(wanted, missing, strict=True))
    assert array.to_pylist() == wanted


def test_a_decimal_nan_among_missing_values_is_left_to_the_per_value_path() -> None:
    assert decimals(pd.Series([D("1.5"), None, D("NaN"), float("nan")]), pa.decimal128(3, 1)) is None
    assert decimals(pd.Series([D("1.5"), None, float("nan"), 2]), pa.decimal128(3, 1)).to_pylist() == [
        D("1.5"), None, None, D("2.0")]
