"""Dates and timestamps as both drivers deliver them, and the years pandas can hold.

Private to :mod:`playlist_tools.frames`. ADBC hands dates and timestamps
over as integers since 1970 (PostgreSQL's infinities wrapped around);
:func:`wire_cursor` makes psycopg deliver the same integers, so that one
vectorised :func:`check_years` serves every read path; psycopg2 gets them
from the server as such integers (:func:`integer_sql`).
"""

from __future__ import annotations

import struct

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.adapt import Buffer, Loader
from psycopg.pq import Format
from sqlalchemy.dialects import postgresql

from playlist_tools.errors import FrameError

# PostgreSQL's quoting of a name, as _driver's quote: _driver builds on this module, so not imported from there.
quote = postgresql.dialect().identifier_preparer.quote

_US_PER_DAY = 86_400_000_000
_DAYS_2000 = 10_957  # PostgreSQL counts from 2000-01-01, Arrow from 1970-01-01
_FIRST_DAY, _LAST_DAY = -719_162, 2_932_896  # 0001-01-01 and 9999-12-31, as days since 1970
# PostgreSQL's binary infinities are the integer extremes; shifted to 1970 (as ADBC does) they wrap around to these.
_INFINITIES = {
    2**63 - 1 + _DAYS_2000 * _US_PER_DAY - 2**64: "infinity", -(2**63) + _DAYS_2000 * _US_PER_DAY: "-infinity",
    2**31 - 1 + _DAYS_2000 - 2**32: "infinity", -(2**31) + _DAYS_2000: "-infinity",
}
_INT8, _INT4 = struct.Struct("!q").unpack, struct.Struct("!i").unpack


class _Microseconds(Loader):
    """A binary timestamp as the integer ADBC makes of it (wrapped alike), so both paths share one check."""

    format = Format.BINARY

    def load(self, data: Buffer) -> int:
        value = _INT8(data)[0] + _DAYS_2000 * _US_PER_DAY
        return value - 2**64 if value >= 2**63 else value


class _Days(Loader):
    """A binary date as the integer ADBC makes of it."""

    format = Format.BINARY

    def load(self, data: Buffer) -> int:
        value = _INT4(data)[0] + _DAYS_2000
        return value - 2**32 if value >= 2**31 else value


def wire_cursor(conn: psycopg.Connection, name: str = "", withhold: bool = False) -> psycopg.Cursor:
    """A binary cursor that loads dates and timestamps as ADBC delivers them: integers since 1970.

    Python's ``date`` and ``datetime`` cannot hold what :func:`check_years`
    must see to name it, and pyarrow takes integers faster anyway. With a
    ``name``, a server-side cursor (``DECLARE``), ``WITH HOLD`` if asked.
    """
    cursor = conn.cursor(name, binary=True, withhold=withhold) if name else conn.cursor(binary=True)
    for typname in ("date", "timestamp", "timestamptz"):  # this cursor's own adapters: the connection keeps its
        cursor.adapters.register_loader(typname, _Days if typname == "date" else _Microseconds)
    return cursor


def integer_sql(expr: str, wire: pa.DataType) -> str:
    """``expr`` as the integer :func:`wire_cursor` loads, computed by the server, when ``wire`` is a date or timestamp.

    For psycopg2, which has no binary results: the server's integers do not
    depend on the session's ``DateStyle`` or ``TimeZone``, and infinities
    and BC dates arrive as psycopg's loaders make them, for :func:`check_years`.

    Examples
    --------
    >>> print(integer_sql("d", pa.date32()))
    CASE WHEN d = 'infinity' THEN -2147472692 WHEN d = '-infinity' THEN -2147472691 ELSE d - DATE '1970-01-01' END
    """
    if pa.types.is_date(wire):
        per_day, bits, since = 1, 32, f"{expr} - DATE '1970-01-01'"
    elif pa.types.is_timestamp(wire):
        per_day, bits, since = _US_PER_DAY, 64, f"(extract(epoch FROM {expr}) * 1000000)::int8"
    else:
        return expr
    infinity = 2 ** (bits - 1) - 1 + _DAYS_2000 * per_day - 2**bits
    return (f"CASE WHEN {expr} = 'infinity' THEN {infinity} WHEN {expr} = '-infinity' "
            f"THEN {-(2 ** (bits - 1)) + _DAYS_2000 * per_day} ELSE {since} END")


def _pg_text(value: int, per_day: int, zone: bool) -> str:
    """A date or timestamp as PostgreSQL writes it (``0044-03-15 BC``), from its count since 1970."""
    if value in _INFINITIES:
        return _INFINITIES[value]
    if value < -(2**62):  # past the year 294247 ADBC's shift wrapped it around
        value += 2**64
    days, micros = divmod(value, per_day)
    date = str(np.datetime64(days, "D"))  # '-043-03-15' is 44 BC: numpy has a year 0
    year, month_day = int(date[:-6]), date[-5:]
    text = f"{1 - year if year < 1 else year:04d}-{month_day}"
    if per_day > 1:
        seconds, fraction = divmod(micros, 1_000_000)
        text += f" {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        text += f".{fraction:06d}".rstrip("0") if fraction else ""
        text += "+00" if zone else ""
    return text + (" BC" if year < 1 else "")


def check_years(array: pa.Array, name: str) -> None:
    """Refuse a date or timestamp outside years 1 to 9999, the years of Python's ``date`` and ``datetime``.

    pandas cannot show such a date at all (OverflowError), ``.dt.date`` and
    ``to_pydatetime()`` fail on such a timestamp, and the infinities arrive
    as wrapped-around integers (a timestamp of year -290278). Vectorised:
    one min/max pass over the column's integers.

    Examples
    --------
    >>> import pyarrow as pa
    >>> check_years(pa.array([-719_163], pa.date32()), "born")
    Traceback (most recent call last):
    ...
    playlist_tools.errors.FrameError: column 'born' has date '0001-12-31 BC', which pandas cannot hold...
    """
    per_day = _US_PER_DAY if pa.types.is_timestamp(array.type) else 1
    ints = array.view(pa.int64() if per_day > 1 else pa.int32())
    low, high = _FIRST_DAY * per_day, (_LAST_DAY + 1) * per_day - 1
    least, most = (value.as_py() for value in pc.min_max(ints).values())
    if least is None or low <= least <= most <= high:
        return
    zone = getattr(array.type, "tz", None) is not None
    text = _pg_text(ints.filter(pc.or_(pc.less(ints, low), pc.greater(ints, high)))[0].as_py(), per_day, zone)
    what, column = "date" if per_day == 1 else "timestamptz" if zone else "timestamp", quote(name)
    fix = (f"CASE WHEN isfinite({column}) THEN {column} END (NULL for infinity), or {column}::text"
           if text.endswith("infinity") else f"{column}::text, or leave such rows out")
    raise FrameError(f"column {name!r} has {what} {text!r}, which pandas cannot hold (read_frame takes years "
                     f"1 to 9999, as Python's datetime does); cast it in the query, e.g. {fix}")
