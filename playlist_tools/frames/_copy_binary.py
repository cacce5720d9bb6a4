"""Checked Arrow columns as ``COPY ... FROM STDIN (FORMAT binary)``, encoded a whole column at a time.

Private to :mod:`playlist_tools.frames`: ``_write`` hands over the arrays
``_copy`` made (already cast to the table's types and checked), and gets the
bytes of PostgreSQL's binary COPY format, or None when a column has a type
this module does not encode (those frames go as CSV, as before).

Why: the server reads binary rows faster than CSV (no parsing of text), and
numpy and pyarrow build them column by column in C, where psycopg's
``write_row`` would spend Python time on each value. A row is its field
count, then each field as a 4-byte length (-1 for NULL) and its bytes; every
column becomes such fields for all its rows at once, and
``binary_join_element_wise`` glues each row's fields together.

What is encoded, each exactly as the type's own binary receive function reads it:

* ``int2``, ``int4``, ``int8``, ``float4``, ``float8``, ``bool``: their big-endian bytes;
* ``date``: days since 2000-01-01; ``timestamp``, ``timestamptz``: microseconds
  since 2000-01-01 (UTC for ``timestamptz``); a value beyond the server's range
  leaves the frame to CSV, where the server names it;
* ``text``, ``varchar``, ``bpchar``: the UTF-8 bytes (the server checks them,
  as for CSV; a NUL is refused by both);
* ``numeric`` from ``decimal128(p, s)`` with ``p`` up to 15: base-10000 digits
  and the scale, which the server rounds to the column's as it does text.

Examples
--------
>>> import pyarrow as pa
>>> parts = encode([("int4", pa.array([1, None], pa.int32())), ("text", pa.array(["", "a"]))])
>>> b"".join(parts)[19:]  # after the header: rows of 2 fields, then the trailer
b'\\x00\\x02\\x00\\x00\\x00\\x04\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x02\\xff\\xff\\xff\\xff\\x00\\x00\\x00\\x01a\\xff\\xff'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
TRAILER = b"\xff\xff"
_DAYS_TO_2000 = 10_957  # 1970-01-01 to 2000-01-01, PostgreSQL's epoch
_MICROS_TO_2000 = _DAYS_TO_2000 * 86_400_000_000
# PostgreSQL's own limits (datatype/timestamp.h): 4714-11-24 BC to 5874898-01-01 and 294277-01-01, from 2000.
_DATES = (-2_451_545, 2_145_031_948)
_MICROS = (-211_813_488_000_000_000, 9_223_371_331_200_000_000)
_NUMERIC_DIGITS = 15  # p + padding to whole base-10000 groups stays within int64
_TEXT = {"text", "varchar", "bpchar"}
_FIXED = {"int2": "int16", "int4": "int32", "int8": "int64", "float4": "float32", "float8": "float64"}


def _values(array: pa.Array, dtype: str) -> np.ndarray:
    """The array's data buffer as numpy, zero-copy; NULL slots hold whatever they hold."""
    return np.frombuffer(array.buffers()[1], dtype, len(array) + array.offset)[array.offset:]


def _fields(valid: np.ndarray | None, values: np.ndarray) -> list[pa.Array]:
    """Fixed-width values (big-endian numpy, one row each) as binary arrays whose rows join into fields."""
    n, width = len(values), values.dtype.itemsize
    if valid is None:  # one array: the length and the value of each row side by side
        records = np.empty(n, [("length", ">i4"), ("value", values.dtype)])
        records["length"], records["value"] = width, values
        offsets = np.arange(0, (n + 1) * (4 + width), 4 + width, dtype=np.int32)
        return [pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(records)])]
    lengths = np.where(valid, width, -1).astype(">i4")
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(valid * width, out=offsets[1:])
    kept = np.ascontiguousarray(values[valid])
    return [_prefixes(lengths), pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                                        pa.py_buffer(kept)])]


def _prefixes(lengths: np.ndarray) -> pa.Array:
    """Each row's 4-byte field length as a binary array."""
    offsets = np.arange(0, 4 * len(lengths) + 1, 4, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(lengths)])


def _valid(array: pa.Array) -> np.ndarray | None:
    return None if array.null_count == 0 else array.is_valid().to_numpy(zero_copy_only=False)


def _fixed(dtype: str) -> Callable[[pa.Array], list[pa.Array]]:
    def encode(array: pa.Array) -> list[pa.Array]:
        return _fields(_valid(array), _values(array, dtype).astype(np.dtype(dtype).newbyteorder(">")))
    return encode


def _bool(array: pa.Array) -> list[pa.Array]:
    # Booleans are bits in Arrow, a byte on the wire.
    return _fields(_valid(array), pc.fill_null(array, False).to_numpy(zero_copy_only=False).view(np.uint8))


def _since_2000(dtype: str, shift: int) -> Callable[[pa.Array], list[pa.Array]]:
    def encode(array: pa.Array) -> list[pa.Array]:
        wire = ">i4" if dtype == "int32" else ">i8"
        return _fields(_valid(array), (_values(array, dtype).astype(np.int64) - shift).astype(wire))
    return encode


def _in_range(typname: str, array: pa.Array) -> bool:
    """Whether a date or timestamp column lies within the server's range, where the shift cannot wrap around."""
    limits = {"date": _DATES, "timestamp": _MICROS, "timestamptz": _MICROS}.get(typname)
    if limits is None or array.null_count == len(array):
        return True
    low, high = (int(v) for v in pc.min_max(array.view(pa.int32() if typname == "date" else pa.int64())).values())
    shift = _DAYS_TO_2000 if typname == "date" else _MICROS_TO_2000
    return limits[0] + shift <= low and high < limits[1] + shift


def _text(array: pa.Array) -> list[pa.Array]:
    array = array.cast(pa.string())  # large_string: a block is far below 2 GiB
    offsets = np.frombuffer(array.buffers()[1], np.int32, len(array) + 1 + array.offset)[array.offset:]
    lengths = np.diff(offsets).astype(">i4")
    valid = _valid(array)
    if valid is not None:
        lengths[~valid] = -1
    return [_prefixes(lengths), array.cast(pa.binary())]


def _numeric(array: pa.Array) -> list[pa.Array]:
    """decimal128(p, s) as numeric's binary: ndigits, weight, sign, dscale, then base-10000 digits."""
    precision, scale = array.type.precision, array.type.scale
    pad = -scale % 4  # the decimal point falls between two base-10000 digits
    # The low 64 bits of each 128-bit little-endian integer hold it whole: |value| < 10^15.
    scaled = np.frombuffer(array.buffers()[1], np.int64, 2 * (len(array) + array.offset))[2 * array.offset::2]
    negative, magnitude = scaled < 0, np.abs(scaled) * 10**pad
    ndigits = -(-(precision + pad) // 4)
    record = np.empty(len(array), [("head", ">i2", 4), ("digits", ">i2", ndigits)])
    record["head"] = (ndigits, ndigits - (scale + pad) // 4 - 1, 0, scale)
    record["head"][:, 2] = np.where(negative, 0x4000, 0)
    for k in range(ndigits):
        record["digits"][:, k] = magnitude // 10 ** (4 * (ndigits - 1 - k)) % 10_000
    return _fields(_valid(array), record.view(f"V{record.itemsize}"))


_ENCODERS: dict[str, Callable[[pa.Array], list[pa.Array]]] = {
    **{typname: _fixed(dtype) for typname, dtype in _FIXED.items()}, "bool": _bool,
    "date": _since_2000("int32", _DAYS_TO_2000),
    "timestamp": _since_2000("int64", _MICROS_TO_2000), "timestamptz": _since_2000("int64", _MICROS_TO_2000),
    **dict.fromkeys(_TEXT, _text), "numeric": _numeric,
}
_ARROW = {"bool": pa.types.is_boolean, "date": pa.types.is_date32, "numeric": pa.types.is_decimal128,
          **dict.fromkeys(("timestamp", "timestamptz"), lambda t: pa.types.is_timestamp(t) and t.unit == "us"),
          **dict.fromkeys(_TEXT, lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
          **{typname: (lambda t, d=d: t == pa.from_numpy_dtype(np.dtype(d))) for typname, d in _FIXED.items()}}


def _block(encoders: list[Callable[[pa.Array], list[pa.Array]]], arrays: list[pa.Array]) -> pa.Buffer:
    """One block of rows as binary COPY rows."""
    n = len(arrays[0])
    counts = np.full(n, len(arrays), ">i2")
    offsets = np.arange(0, 2 * n + 1, 2, dtype=np.int32)
    fields = [pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(counts)])]
    for encoder, array in zip(encoders, arrays, strict=True):
        fields += encoder(array)
    rows = pc.binary_join_element_wise(*fields, b"", null_handling="skip")
    offsets = np.frombuffer(rows.buffers()[1], np.int32, len(rows) + 1 + rows.offset)[rows.offset:]
    return rows.buffers()[2][offsets[0]:offsets[-1]]


def encode(columns: list[tuple[str, pa.Array]], rows: int = 32_768) -> Iterator[pa.Buffer] | None:
    """The rows as binary COPY, ``rows`` at a time; None when some column needs CSV.

    Parameters
    ----------
    columns : list of (str, pyarrow.Array)
        Each table column's ``typname`` and its checked values, cast to the
        Arrow type of ``_types.arrow_for_copy``; all of one length.
    rows : int
        Rows per block: encoding one block overlaps the server reading the last.

    Returns
    -------
    iterator of pyarrow.Buffer or None
        The header, the blocks, the trailer; None when a column's type is not
        encoded here, or a date or timestamp lies beyond the server's range
        (the caller then sends CSV, and the server names the value).
    """
    if not all(t in _ENCODERS and _ARROW[t](a.type) and _in_range(t, a) for t, a in columns) or not columns:
        return None
    if any(t == "numeric" and a.type.precision + -a.type.scale % 4 > _NUMERIC_DIGITS for t, a in columns):
        return None
    encoders = [_ENCODERS[t] for t, _ in columns]
    length = len(columns[0][1])

    def parts() -> Iterator[pa.Buffer]:
        yield pa.py_buffer(HEADER)
        for start in range(0, length, rows):
            yield _block(encoders, [a.slice(start, rows) for _, a in columns])
        yield pa.py_buffer(TRAILER)
    return parts()
