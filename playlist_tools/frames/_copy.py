"""How a frame's column becomes what ``COPY`` gets: one Arrow array per column, checked on the way.

Private to :mod:`playlist_tools.frames`: ``_write`` calls :func:`convert` for each column, with the table
column's type from the ``_types`` map. Nothing is sent until every column has passed; a column that cannot go
in gives one problem that names the column, the value and the fix.

The rules, beyond "numbers into numbers, each other kind into its own":

* A float into ``numeric`` becomes exactly what PostgreSQL's own
  ``value::float8::numeric(p, s)`` gives: its 15 significant digits
  (``%.15g``, as the server's cast reads it), rounded half away from zero to
  the scale by the server (``0.125`` -> ``0.13``). Where no half-way point is
  that close, the float's shortest text rounds alike and goes instead (it is
  made in C). ``float32`` is widened to ``float64`` first. Infinity goes
  only into an unconstrained ``numeric``.
* With a negative scale (``numeric(5, -2)``, PostgreSQL 15 on) rounding
  would change whole units: a float or an int must then be an exact
  multiple (of 100 there), or it is refused with the ``.round(-2)`` fix.
* A ``Decimal`` or ``int`` into ``numeric`` is exact or refused (too many
  digits); ``Decimal('NaN')`` is written as ``NaN``, ``Decimal('Infinity')``
  as ``Infinity`` where the column can hold it. A float ``NaN`` is pandas'
  missing value and so ``NULL``.
* A float into ``real`` that ``real`` cannot hold (``1e39``, ``1e-50``) is
  refused, as PostgreSQL refuses it; ``inf`` stays infinite.
* Types that travel as their PostgreSQL text take their Python values too:
  bytes into ``bytea``, timedeltas into ``interval``, ``uuid.UUID`` into
  ``uuid``, dicts and lists into ``json``/``jsonb`` (strings there are JSON
  text already), lists into arrays. Categories are written as their values.

Examples
--------
>>> import pandas as pd
>>> from playlist_tools.frames._copy import Refused, Target, convert
>>> price = Target("numeric", (10 << 16 | 2) + 4, "N", False)  # numeric(10, 2)
>>> convert("price", pd.Series([0.125, 0.1 + 0.2, None]), price)[0].to_pylist()  # the server makes 0.13, 0.30
['0.125', '0.30000000000000004', None]
>>> try:
...     convert("x", pd.Series([1e39]), Target("float4", -1, "N", False))
... except Refused as refused:
...     print(refused)
column 'x' value 1e+39 is out of range for float4 (PostgreSQL refuses it too); use a float8 column
"""

from __future__ import annotations

import datetime
import json
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from playlist_tools.errors import first_line
from playlist_tools.frames._copy_decimals import decimals
from playlist_tools.frames._types import arrow_for_copy, exact_decimal, numeric_precision_scale


class Target(NamedTuple):
    """A table column as the write path needs it, from ``pg_attribute`` and ``pg_type``."""

    typname: str  # of the column's type; of its base type for a domain
    typmod: int
    category: str  # pg_type.typcategory: "A" for arrays
    not_null: bool


class Refused(Exception):
    """A column that cannot be written; the message is the problem, ready to show."""


def _missing(value: Any) -> bool:
    """pandas' missing values; a Decimal NaN is a value, a float NaN is not."""
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _arrow(name: str, values: Any, arrow: pa.DataType | None = None) -> pa.Array:
    try:
        array = pa.array(values, arrow, from_pandas=True)
    except UnicodeEncodeError as err:
        bad = err.object[err.start]
        raise Refused(f"column {name!r} value {err.object[:40]!r} holds {bad!r}, a lone surrogate that UTF-8 "
                      f"cannot store; decode the source with its real encoding, or replace it: "
                      f"df[{name!r}].str.encode('utf-8', 'replace').str.decode('utf-8')") from err
    except OverflowError as err:
        big = next((v for v in values if isinstance(v, int) and not -(2**63) <= v < 2**64), "?")
        raise Refused(f"column {name!r} has values that do not fit 64 bits (e.g. {big}); "
                      "write it into a numeric column or fix the values") from err
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise Refused(f"column {name!r} mixes types ({first_line(err)}); give it one dtype") from err
    except pa.ArrowNotImplementedError as err:
        dtype = getattr(values, "dtype", None)
        if dtype is not None and dtype.kind == "c":
            raise Refused(f"column {name!r} is {dtype}, complex numbers, which no PostgreSQL type holds; write "
                          f"its parts as two float columns, e.g. df[{name!r}].to_numpy().real and .imag") from err
        raise Refused(f"column {name!r} is {dtype or type(values).__name__}, which cannot be written "
                      f"({first_line(err)}); convert it first") from err
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


# -- numeric -------------------------------------------------------------------------------


def _fits(number: Decimal, precision: int | None, scale: int, rounds: bool) -> str | None:
    """Why a finite number does not go into numeric(precision, scale), or None when it does."""
    if precision is None:
        return None
    _, digits, exponent = number.as_tuple()
    extra = -int(exponent) - scale  # digits past the scale: rounded away for floats, refused for exact numbers
    if scale < 0 and extra > 0 and any(digits[-extra:]):  # a float too: rounding away whole units is no rounding
        return (f"is not a multiple of {10 ** -scale}, and numeric({precision}, {scale}) would round it; "
                f"round the values first: .round({scale})")
    if not rounds and extra > 0 and any(digits[-extra:]):
        return f"has more than {scale} decimal places"
    # Whatever rounds (half away from zero) to 10^(p - s) or more overflows.
    if number.copy_abs() >= Decimal(f"{'9' * precision}5E{-scale - 1}"):
        return f"needs an absolute value below 10^{precision - scale}"
    return None


def _numeric_text(value: Any, precision: int | None, scale: int) -> str:
    """A Python number as numeric's input text; ValueError (with the reason) when it cannot go in."""
    if isinstance(value, (float, np.floating)):
        number, rounds = Decimal(f"{float(value):.15g}"), True  # what the server's float8 -> numeric cast reads
    elif isinstance(value, (int, np.integer, Decimal)) and not isinstance(value, (bool, np.bool_)):
        number, rounds = (value if isinstance(value, Decimal) else Decimal(int(value))), False
    else:
        raise ValueError(f"is {type(value).__name__}, not a number")
    if number.is_snan():
        raise ValueError("is a signalling NaN; use Decimal('NaN')")
    if number.is_nan():
        return "NaN"
    if number.is_infinite():
        if precision is not None:
            raise ValueError("is infinite, which only an unconstrained numeric holds")
        return "Infinity" if number > 0 else "-Infinity"
    reason = _fits(number, precision, scale, rounds)
    if reason:
        raise ValueError(reason)
    return str(number)


def _numeric_texts(name: str, values: list[Any], precision: int | None, scale: int) -> pa.Array:
    shown = "numeric" if precision is None else f"numeric({precision}, {scale})"
    texts = []
    for value in values:
        try:
            texts.append(None if _missing(value) else _numeric_text(value, precision, scale))
        except ValueError as err:
            reason, fix = str(err), "use a wider column type or fix the values"
            if "; " in reason:  # the reason brings its own fix
                reason, fix = reason.split("; ", 1)
                fix = fix.replace(" .round(", f" df[{name!r}].round(")
            raise Refused(f"column {name!r} has values that do not fit {shown} ({value!r} {reason}); {fix}") from err
    return _arrow(name, texts, pa.string())


def _floats_as_numeric(name: str, array: pa.Array, precision: int | None, scale: int) -> pa.Array:
    """Floats as the text the server's float8 -> numeric cast reads: ``%.15g``, the scale's rounding left to it."""
    floats, valid = array.to_numpy(zero_copy_only=False), array.is_valid().to_numpy(zero_copy_only=False)
    fifteen = "{:.15g}".format  # map() of a bound format: the fastest Python loop there is
    if precision is None:  # the 15 digits are the value itself ("inf" and "nan" read fine)
        return pa.array(list(map(fifteen, floats.tolist())), pa.string(), mask=~valid)
    if scale is not None and scale < 0:  # whole units rounded away: each value is checked exactly
        return _numeric_texts(name, [None if not v else f for f, v in zip(floats.tolist(), valid, strict=True)],
                              precision, scale)
    limit = math.inf if precision - scale > 300 else 10.0 ** (precision - scale)
    # Only the infinite and those near the limit can fail: they get the exact test.
    _numeric_texts(name, floats[valid & (np.abs(floats) >= limit * 0.999)].tolist(), precision, scale)
    # The shortest text of a float and its 15 digits lie within 6e-15 (relative) of it, so they round alike
    # to the scale unless a half-way point lies that close: only those need the (slow) 15 digits.
    with np.errstate(all="ignore"):
        scaled = np.abs(floats) * np.float64(10.0) ** scale
        near = ~(np.abs(scaled - np.floor(scaled) - 0.5) > 1e-13 * scaled) & valid
    texts = pc.cast(array, pa.string())
    if near.any():
        texts = pc.replace_with_mask(texts, pa.array(near), pa.array(list(map(fifteen, floats[near].tolist()))))
    return texts


def _numeric(name: str, series: pd.Series, typmod: int) -> tuple[pa.Array, bool]:
    """A column for ``numeric``, and whether it is numeric's text (checked here) rather than numbers to cast."""
    precision, scale = numeric_precision_scale(typmod)
    if pd.api.types.is_float_dtype(series.dtype):
        return _floats_as_numeric(name, _arrow(name, series).cast(pa.float64()), precision, scale), True  # widens
    if series.dtype == object:  # Decimal NaN and ints beyond 64 bits live only here, and pyarrow loses both
        fast = exact_decimal(precision, scale) and decimals(series, exact_decimal(precision, scale))
        return (fast, False) if fast is not None else (_numeric_texts(name, series.tolist(), precision, scale), True)
    array = _arrow(name, series)
    exact = exact_decimal(precision, scale)
    if exact is not None and (pa.types.is_integer(array.type) or pa.types.is_decimal(array.type)):
        try:
            return array.cast(exact), False
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # too many digits: say which value, in our words
            return _numeric_texts(name, array.to_pylist(), precision, scale), True
    if not (pa.types.is_integer(array.type) or pa.types.is_decimal(array.type)) or exact:
        return array, False  # the kind check and the safe cast take it from here
    if precision is None:
        return array.cast(pa.string()), True
    return _numeric_texts(name, array.to_pylist(), precision, scale), True


def _float4(name: str, array: pa.Array) -> None:
    """Refuse finite floats that ``real`` cannot hold; PostgreSQL refuses them too (pyarrow would make inf or 0)."""
    wide = array.cast(pa.float64()).to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore", under="ignore"):
        narrow = wide.astype(np.float32)
    bad = np.flatnonzero(np.isfinite(wide) & (np.isinf(narrow) | ((narrow == 0) & (wide != 0))))
    if len(bad):
        raise Refused(f"column {name!r} value {float(wide[bad[0]])!r} is out of range for float4 "
                      "(PostgreSQL refuses it too); use a float8 column")


# -- types that travel as text ------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """What json.dumps cannot take itself, as JSON's own types."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (datetime.date, datetime.time, uuid.UUID)):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, allow_nan=False, default=_plain, ensure_ascii=False)


def _element(item: Any) -> str:
    if _missing(item):
        return "NULL"
    if isinstance(item, (list, tuple, np.ndarray)):
        return "{" + ",".join(map(_element, item)) + "}"
    if isinstance(item, (bool, np.bool_)):
        text = "true" if item else "false"
    elif isinstance(item, (float, np.floating)):
        text = float.__repr__(float(item)).replace("inf", "Infinity").replace("nan", "NaN")
    elif isinstance(item, (dict, bytes)):
        text = _json(item) if isinstance(item, dict) else "\\x" + item.hex()
    else:
        text = str(item)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'  # quoted, any element type reads it


def _array(value: Any) -> str:
    if not isinstance(value, (str, list, tuple, np.ndarray)):
        raise TypeError("not a list")
    return value if isinstance(value, str) else _element(value)


def _interval(value: Any) -> str:
    value = pd.Timedelta(value) if isinstance(value, np.timedelta64) else value
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime.timedelta):
        raise TypeError("not a timedelta")
    if getattr(value, "nanoseconds", 0):
        raise ValueError("nanoseconds are finer than interval's microseconds: round them, .dt.round('us')")
    micros, day = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds, 86_400_000_000
    days = abs(micros) // day * (1 if micros >= 0 else -1)  # toward zero: -1 h reads back as -01:00:00
    return f"{days} days {micros - days * day} microseconds"


def _of(types: tuple[type, ...], convert: Callable[[Any], str], what: str) -> Callable[[Any], str]:
    def text(value: Any) -> str:
        if not isinstance(value, (str, *types)):
            raise TypeError(f"not {what}")
        return value if isinstance(value, str) else convert(value)
    return text


_AS_TEXT: dict[str, tuple[Callable[[Any], str], str]] = {
    "json": (_json, "dicts, lists or JSON text"),
    "jsonb": (_json, "dicts, lists or JSON text"),
    "array": (_array, "lists, or array text such as '{1,2}'"),
    "uuid": (_of((uuid.UUID,), str, "a UUID"), "uuid.UUID values or their text"),
    "bytea": (_of((bytes, bytearray, memoryview), lambda b: "\\x" + bytes(b).hex(), "bytes"), "bytes"),
    "interval": (_interval, "timedelta64 values or interval text such as '1 day 02:00'"),
}


def _as_text(name: str, series: pd.Series, typname: str, key: str) -> pa.Array:
    convert, advice = _AS_TEXT[key]
    texts = []
    for value in series.tolist():
        try:
            texts.append(None if _missing(value) else convert(value))
        except (TypeError, ValueError) as err:
            raise Refused(f"column {name!r} value {str(value)[:40]!r} cannot go into {typname}: "
                          f"{first_line(err)}; give {advice}") from err
    return _arrow(name, texts, pa.string())


def advice(target: Target) -> str:
    """How to fix a column of the wrong kind for ``target``."""
    key = "array" if target.category == "A" else target.typname
    return f"give {_AS_TEXT[key][1]}" if key in _AS_TEXT else "convert it first"


def convert(name: str, series: pd.Series, target: Target) -> tuple[pa.Array, pa.DataType]:
    """The column as Arrow, and the Arrow type to cast it to for ``COPY``; :class:`Refused` when it cannot go in.

    Conversions that need the values themselves happen here (numeric's text, the
    types written as their text); the kind check and the safe cast are the caller's.
    """
    typname, typmod = target.typname, target.typmod
    key = "array" if target.category == "A" else typname
    textual = series.dtype != object and pd.api.types.is_string_dtype(series.dtype)
    arrow_target = arrow_for_copy(typname, typmod)
    if typname == "numeric":
        array, as_text = _numeric(name, series, typmod)
        return array, array.type if as_text else arrow_target
    if key in _AS_TEXT and not textual:
        return _as_text(name, series, typname if key != "array" else typname[1:] + "[]", key), arrow_target
    array = _arrow(name, series)
    if typname == "float4" and pa.types.is_floating(array.type):
        _float4(name, array)
    return array, arrow_target
