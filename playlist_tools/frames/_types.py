"""The one PostgreSQL <-> Arrow <-> pandas type map of :mod:`playlist_tools.frames`.

Private to :mod:`playlist_tools.frames`; reading, writing and
:func:`playlist_tools.sample.read_sample` (through the public
:func:`playlist_tools.frames.pandas_dtype`) all take their types from here,
so a frame written and read back keeps its dtypes. The ``frames`` module
docstring lists the resulting dtype of each PostgreSQL type.

How the map is organised:

* ``_FIXED``, one table of the types with a faithful Arrow twin, keyed by
  ``typname`` (what the write side finds in ``pg_type`` for a table's
  columns). Each entry carries its type OID too (what the read side finds
  in a result's description), so both sides use the very same entry:
  :func:`arrow_of_oid` looks entries up by OID, :func:`arrow_for_copy` by
  name. OIDs of built-in types are fixed by PostgreSQL, so they are
  written out rather than asked of the server. One entry is marked
  ``copied_as_text``: ``bytea`` reads as binary but is written as its text.
* ``numeric`` is not in that table: its Arrow type depends on its
  ``(precision, scale)``. :func:`exact_decimal` is the one rule for it, fed
  by psycopg's description when reading and by the column's
  ``atttypmod`` (:func:`numeric_precision_scale`) when writing.
* Every other type travels as its PostgreSQL text.
* :func:`pandas_dtype` maps the Arrow types of a result to pandas dtypes.

How values travel (text as ``large_string``, ``numeric`` as a scaled
``bigint``) is the read path's business, in ``_read``; this map only says
what they arrive as.

Examples
--------
>>> import pyarrow as pa
>>> from playlist_tools.frames import _types
>>> _types.arrow_of_oid(23), _types.arrow_for_copy("int4", -1)
(DataType(int32), DataType(int32))
>>> _types.arrow_for_copy("numeric", (10 << 16 | 2) + 4)  # the atttypmod of numeric(10, 2)
Decimal128Type(decimal128(10, 2))
>>> _types.pandas_dtype(pa.int32())
Int32Dtype()
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

Query = str | sa.Select | sa.TextClause | sa.Table | type
"""What :func:`~playlist_tools.frames.read_frame` reads: SQL text, a select(), or a whole table. Here, not in
``_read``, because ``frames/__init__`` needs the name at import time and ``_read`` is imported only when used."""


class _PgType(NamedTuple):
    oid: int
    arrow: pa.DataType
    # COPY gets the type's text input, not pyarrow's CSV of ``arrow`` (for bytea that would be raw bytes).
    copied_as_text: bool = False


_FIXED: dict[str, _PgType] = {
    "bool": _PgType(16, pa.bool_()),
    "bytea": _PgType(17, pa.binary(), copied_as_text=True),
    "name": _PgType(19, pa.string()),
    "int8": _PgType(20, pa.int64()),
    "int2": _PgType(21, pa.int16()),
    "int4": _PgType(23, pa.int32()),
    "text": _PgType(25, pa.string()),
    "float4": _PgType(700, pa.float32()),
    "float8": _PgType(701, pa.float64()),
    "bpchar": _PgType(1042, pa.string()),
    "varchar": _PgType(1043, pa.string()),
    "date": _PgType(1082, pa.date32()),
    "timestamp": _PgType(1114, pa.timestamp("us")),
    "timestamptz": _PgType(1184, pa.timestamp("us", "UTC")),
}
_ARROW_OF_OID = {entry.oid: entry.arrow for entry in _FIXED.values()}

NUMERIC_OID = 1700
"""OID of ``numeric``, whose Arrow type is :func:`exact_decimal` of its ``(precision, scale)``."""

_MAX_DECIMAL_PRECISION = 38  # decimal128's limit
# pandas' nullable dtypes, so that NULL is NA and integers stay integers.
_MASKED = {
    pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
    pa.float32(): pd.Float32Dtype(), pa.float64(): pd.Float64Dtype(), pa.bool_(): pd.BooleanDtype(),
}


def arrow_of_oid(oid: int) -> pa.DataType | None:
    """The Arrow type a result column of type ``oid`` arrives as; None when it must travel as text.

    ``numeric`` is None here too: see :func:`exact_decimal`.
    """
    return _ARROW_OF_OID.get(oid)


def exact_decimal(precision: int | None, scale: int | None) -> pa.Decimal128Type | None:
    """``decimal128(precision, scale)`` when it holds every value of ``numeric(precision, scale)``, else None.

    None for an unconstrained ``numeric`` (no precision), more than 38
    digits, or a scale outside ``0..precision`` (allowed since PostgreSQL 15).

    Examples
    --------
    >>> exact_decimal(10, 2), exact_decimal(None, None), exact_decimal(5, -2), exact_decimal(40, 2)
    (Decimal128Type(decimal128(10, 2)), None, None, None)
    """
    if precision is None or scale is None or not 0 <= scale <= precision <= _MAX_DECIMAL_PRECISION:
        return None
    return pa.decimal128(precision, scale)


def numeric_precision_scale(typmod: int) -> tuple[int | None, int | None]:
    """``(precision, scale)`` of a ``numeric`` column's ``atttypmod``; ``(None, None)`` when unconstrained.

    Examples
    --------
    >>> numeric_precision_scale((10 << 16 | 2) + 4), numeric_precision_scale(-1)
    ((10, 2), (None, None))
    """
    # PostgreSQL stores (precision << 16 | scale as 11-bit two's complement) + 4; -1 means unconstrained.
    if typmod < 4:
        return None, None
    scale = (typmod - 4) & 0x7FF
    return (typmod - 4) >> 16, scale - 0x800 if scale >= 0x400 else scale


def arrow_for_copy(typname: str, typmod: int) -> pa.DataType:
    """The Arrow type a frame's column is cast to before ``COPY`` into a column of this type.

    Parameters
    ----------
    typname : str
        The column's ``pg_type.typname`` (``"int4"``, ``"numeric"``, ...).
    typmod : int
        Its ``pg_attribute.atttypmod`` (-1 when it has none).

    Returns
    -------
    pyarrow.DataType
        ``string`` for every type PostgreSQL is given as text.
    """
    if typname == "numeric":
        return exact_decimal(*numeric_precision_scale(typmod)) or pa.string()
    fixed = _FIXED.get(typname)
    return pa.string() if fixed is None or fixed.copied_as_text else fixed.arrow


def pandas_dtype(arrow: pa.DataType) -> Any:
    """The dtype :func:`~playlist_tools.frames.read_frame` gives a column of this Arrow type.

    Usable as ``types_mapper`` of :meth:`pyarrow.Table.to_pandas`: None
    where pandas' own conversion is already that dtype (timestamps become
    ``datetime64[us]``, zone-aware for ``timestamptz``).

    Parameters
    ----------
    arrow : pyarrow.DataType
        A column's Arrow type.

    Returns
    -------
    pandas dtype or None

    Examples
    --------
    >>> import pandas as pd, pyarrow as pa
    >>> from playlist_tools import frames
    >>> [str(frames.pandas_dtype(t)) for t in (pa.int64(), pa.decimal128(10, 2), pa.date32(), pa.timestamp("us"))]
    ['Int64', 'decimal128(10, 2)[pyarrow]', 'date32[day][pyarrow]', 'None']
    >>> frames.pandas_dtype(pa.large_string()) == pd.StringDtype("pyarrow")
    True
    """
    if arrow in _MASKED:
        return _MASKED[arrow]
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return pd.StringDtype("pyarrow")
    if pa.types.is_decimal(arrow) or pa.types.is_date(arrow) or pa.types.is_binary(arrow):
        return pd.ArrowDtype(arrow)
    return None
