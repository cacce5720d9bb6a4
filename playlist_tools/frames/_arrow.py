"""Arrow results as DataFrames, in either dtype backend, and fetching that overlaps converting.

Private to :mod:`playlist_tools.frames`: :func:`to_pandas` makes the
DataFrame of one of ``_read``'s Arrow tables, ``"numpy_nullable"`` (pandas'
nullable dtypes, the default) or ``"pyarrow"`` (every column a
:class:`pandas.ArrowDtype` over the very Arrow buffers); :func:`prefetched`
runs a stream of batches in a thread of its own, so that the next batch
travels while the last one is checked.

Examples
--------
>>> import pyarrow as pa
>>> from playlist_tools.frames import _arrow
>>> _arrow.decimal_of_text(pa.array(["1.50", None, "-20"]), "x").type
Decimal128Type(decimal128(4, 2))
>>> _arrow.backend("numpy")
Traceback (most recent call last):
...
playlist_tools.errors.FrameError: dtype_backend='numpy' is not one of 'numpy_nullable', 'pyarrow'; ...
"""

from __future__ import annotations

import decimal
import queue
import threading
from collections.abc import Iterator
from typing import Any, Literal, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from playlist_tools.errors import FrameError
from playlist_tools.frames._driver import quote
from playlist_tools.frames._types import pandas_dtype

Backend = Literal["numpy_nullable", "pyarrow"]
BACKENDS: tuple[Backend, ...] = ("numpy_nullable", "pyarrow")
_T = TypeVar("_T")
_DONE = object()  # the end of a prefetched stream
_WAIT = 0.05  # seconds between looks at whether the consumer has gone
_DECIMAL128_DIGITS, _DECIMAL256_DIGITS = 38, 76
_PLAIN_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"  # numeric's text; 'NaN' and 'Infinity' are not


def backend(value: object) -> Backend:
    """``value`` if it names a dtype backend; else a one-line error naming it and the allowed ones."""
    if value not in BACKENDS:
        raise FrameError(f"dtype_backend={value!r:.80} is not one of {', '.join(map(repr, BACKENDS))}; "
                         "leave it out for pandas' nullable dtypes, or pass dtype_backend='pyarrow' for ArrowDtype")
    return value  # type: ignore[return-value]


def decimal_of_text(array: pa.Array | pa.ChunkedArray, name: str) -> pa.Array:
    """An unconstrained ``numeric``'s text as the narrowest decimal that holds every value exactly.

    ``decimal128`` up to 38 digits, ``decimal256`` up to 76; beyond that,
    and for ``NaN`` or ``Infinity``, a one-line error naming the column and
    the value (an Arrow decimal has no such value).
    """
    text = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    odd = pc.invert(pc.match_substring_regex(text, _PLAIN_NUMBER))
    if pc.any(odd).as_py():
        raise _unfit(name, text.filter(odd)[0].as_py(), "it is not a finite number")
    digits = pc.utf8_length(pc.replace_substring(text, "-", ""))
    point = pc.find_substring(text, ".")
    scale = pc.if_else(pc.less(point, 0), 0, pc.subtract(pc.subtract(pc.utf8_length(text), point), 1))
    whole = pc.subtract(digits, pc.if_else(pc.less(point, 0), 0, pc.add(scale, 1)))
    most_scale = pc.max(scale).as_py() or 0
    precision = max((pc.max(whole).as_py() or 1) + most_scale, 1)
    if precision > _DECIMAL256_DIGITS:
        longest = pc.add(whole, scale)
        value = text[pc.index(longest, pc.max(longest)).as_py()].as_py()
        raise _unfit(name, value, f"the column needs {precision} digits")
    kind = pa.decimal128 if precision <= _DECIMAL128_DIGITS else pa.decimal256
    return pc.cast(text, kind(precision, most_scale))


def _unfit(name: str, value: str, why: str) -> FrameError:
    column = quote(name)
    return FrameError(f"column {name!r} has numeric {value[:40]!r}, which dtype_backend='pyarrow' cannot hold "
                      f"({why}; an Arrow decimal is finite and has at most 76 digits); cast it in the query, e.g. "
                      f"{column}::numeric(20, 6), {column}::float8 or {column}::text, "
                      "or leave dtype_backend out (Decimal objects)")


def to_pandas(table: pa.Table, decimals: list[int], backend: Backend) -> pd.DataFrame:
    """One Arrow table of the result as a DataFrame; ``decimals`` are the unconstrained numeric columns (text).

    ``"numpy_nullable"`` gives those Decimal objects; ``"pyarrow"`` the
    narrowest exact Arrow decimal (:func:`decimal_of_text`).
    """
    if backend == "pyarrow":
        for i in decimals:
            table = table.set_column(i, table.field(i).name, decimal_of_text(table.column(i), table.field(i).name))
        # Each column wraps the table's own buffers: nothing is copied.
        return table.to_pandas(types_mapper=pd.ArrowDtype)
    exact = {i: [None if v is None else decimal.Decimal(v) for v in table.column(i).to_pylist()] for i in decimals}
    # self_destruct frees each Arrow column once converted, so the peak stays near one copy.
    frame = table.to_pandas(types_mapper=pandas_dtype, split_blocks=True, self_destruct=True)
    for i, values in exact.items():
        frame.isetitem(i, pd.Series(values, index=frame.index, dtype=object))
    return frame


def prefetched(items: Iterator[_T], depth: int = 2) -> Iterator[_T]:
    """``items``, produced in a thread of their own up to ``depth`` ahead of the consumer.

    ADBC reads and decodes a batch with the GIL released, so the next batch
    travels while the consumer checks the last one. An error of the
    producer is raised in the consumer. When the consumer stops early the
    producer stops after the batch in hand, and ``items`` is closed in the
    producer's thread, where it was opened.
    """
    slots: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=_WAIT)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as err:  # noqa: BLE001 - handed over whole, raised by the consumer
            put((_DONE, err))
        finally:
            getattr(items, "close", lambda: None)()

    worker = threading.Thread(target=produce, name="frames-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, err = slots.get()
            if err is not None:
                raise err
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()
