"""Query results as DataFrames, and DataFrames into tables: fast, with faithful dtypes.

:func:`read_frame` asks the server for the result's column types first (``LIMIT 0``), then fetches it as
Arrow through ADBC (``adbc-driver-postgresql``: PostgreSQL's binary ``COPY``, decoded in C, in a thread
while the last batch is checked). A whole table of 32 MB or more is read as several ``ctid`` ranges at
once, on one snapshot. ``numeric(p, s)`` travels as an exactly scaled ``bigint`` (ADBC would turn it into
text, the slowest part of a read). Through a caller's ``Connection`` the rows come from its driver instead.
Any SQLAlchemy PostgreSQL engine will do, psycopg 3 (``postgresql://``) or
psycopg2 (``postgresql+psycopg2://``): the fast path is chosen by what the
engine connects to, not by its driver.
:func:`write_frame` checks the frame against the live table, then sends it
as one ``COPY ... FROM STDIN``: binary, encoded a column at a time, when
every column's type is one it encodes; else CSV written by pyarrow.

Dtypes of a result by PostgreSQL type, with the default ``dtype_backend`` (``NULL`` is always NA):

=============================  ==============================================
``smallint/integer/bigint``    ``Int16`` / ``Int32`` / ``Int64`` (nullable)
``real/double precision``      ``Float32`` / ``Float64`` (pandas: ``NaN`` is NA too)
``boolean``                    ``boolean``
``text/varchar/char``          ``string`` (``pd.StringDtype("pyarrow")``)
``numeric(p, s)``, p <= 38     ``decimal128(p, s)[pyarrow]``: exact
other ``numeric``              ``object`` holding :class:`decimal.Decimal`
``date``                       ``date32[day][pyarrow]`` (``datetime.date`` values)
``timestamp``                  ``datetime64[us]``
``timestamptz``                ``datetime64[us, UTC]``
``bytea``                      ``binary[pyarrow]``
anything else                  ``string``: its PostgreSQL text (json, uuid, ...)
=============================  ==============================================

Dates and timestamps read from year 1 to 9999, the years of Python's
``date`` and ``datetime``. Any other (``'infinity'``, ``'-infinity'``, BC,
year 10000 on) fails the read with one error naming the column and the
value, on every path and in :func:`to_parquet` too: pandas cannot show such
a date, and NaT would be a NULL that was not there. Cast it in the query:
``CASE WHEN isfinite(d) THEN d END`` (NULL for infinity) or ``d::text``.

:func:`pandas_dtype` gives these dtypes for Arrow data from elsewhere
(:func:`playlist_tools.sample.read_sample` uses it).

Examples
--------
>>> from playlist_tools import db, frames
>>> with db.fresh_database() as url:
...     frames.read_frame("SELECT 9007199254740993::bigint AS n UNION ALL SELECT NULL", url)
                  n
0  9007199254740993
1              <NA>
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import pandas as pd
import sqlalchemy as sa

from playlist_tools import db
from playlist_tools._sql_text import placeholders
from playlist_tools.errors import FrameError

# The machinery, all private: _read (describe, ADBC/psycopg), _arrow (to pandas in either backend, prefetching),
# _parquet (whole-file output), _write (checks, COPY), _copy (values as COPY takes them), _types (the one type
# map), _driver (connections, quoting), _dates (the years pandas can hold).
# Only _types (pandas and pyarrow, which pandas has loaded already) is imported here. The others bring
# psycopg2, ADBC's driver manager, SQLAlchemy's PostgreSQL dialects, pyarrow's CSV and Parquet modules:
# about 0.1 s that a CLI command or a kernel that never reads or writes would pay for nothing (issue 21).
# So each public function imports what it needs when first called (then it is a dictionary lookup).
# Start-up cost is the only reason: there is no cycle to dodge, and type checkers see the import below.
from playlist_tools.frames._sequence import advance_sequence
from playlist_tools.frames._types import Query, pandas_dtype

if TYPE_CHECKING:
    from playlist_tools.frames import _arrow

__all__ = ["FrameError", "advance_sequence", "pandas_dtype", "placeholders", "read_frame", "to_parquet", "write_frame"]


# As pandas types read_sql: one DataFrame without chunksize, an iterator of them with it.
@overload
def read_frame(
    query: Query,
    con: db.Connectable = ...,
    params: Mapping[str, Any] | None = ...,
    *,
    chunksize: None = ...,
    parallel: int | None = ...,
    dtype_backend: Literal["numpy_nullable", "pyarrow"] = ...,
) -> pd.DataFrame: ...


@overload
def read_frame(
    query: Query,
    con: db.Connectable = ...,
    params: Mapping[str, Any] | None = ...,
    *,
    chunksize: int,
    parallel: int | None = ...,
    dtype_backend: Literal["numpy_nullable", "pyarrow"] = ...,
) -> Iterator[pd.DataFrame]: ...


def read_frame(
    query: Query,
    con: db.Connectable = None,
    params: Mapping[str, Any] | None = None,
    *,
    chunksize: int | None = None,
    parallel: int | None = None,
    dtype_backend: Literal["numpy_nullable", "pyarrow"] = "numpy_nullable",
) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Run a query and return its result as a DataFrame with faithful dtypes.

    The module docstring lists the dtype of each PostgreSQL type.

    Parameters
    ----------
    query : str, sqlalchemy.Select, sqlalchemy.TextClause, sqlalchemy.Table or model class
        One query as SQL text (``SELECT``, ``WITH``, ``VALUES``, ``TABLE``;
        ``:name`` placeholders), a ``select(...)`` (ORM selects too), or a
        whole table: its exact name (``"songs"``, ``"public.songs"``; quoted
        for you), its ``Table`` or its model (``Song``). In SQL text, a
        ``:name`` inside quotes, dollar quotes or a comment is no placeholder
        (``SELECT ':b'`` needs no params), and one trailing ``;``, as pasted
        from psql, is dropped; a second statement is refused.
    con : sqlalchemy.Connection, sqlalchemy.Engine, str, URL or None
        Where to read; ``None`` is :func:`playlist_tools.db.resolve_url`
        (``$DATABASE_URL``, else the embedded server). With an Engine, a URL
        or ``None`` the rows come through ADBC connections of ours (the fast
        path), closed before returning. They see what the Engine's own
        connections see: we borrow one of them and give ADBC its server,
        user, password and session settings (``connect_args`` options,
        ``SET`` by event listeners, ``SET ROLE``: ``search_path``, time
        zone...); session state that is not a setting, such as temporary
        tables, does not carry over. A Connection is used as it is, inside
        its transaction (its uncommitted rows are seen), and we neither
        commit nor close it: one not yet in a transaction begins one, as
        its own first ``execute`` would in SQLAlchemy 2 (autobegin), and the
        caller commits or rolls it back; rows then come through its
        driver, several times slower. Either driver, psycopg 3 or psycopg2, gives the same
        dtypes and values; other drivers are refused.
    params : mapping, optional
        Values of the ``:name`` placeholders: always bound, never formatted
        into the SQL.
    chunksize : int, optional
        Return an iterator of DataFrames of ``chunksize`` rows (1 or more;
        the last one shorter), for results larger than memory. Its
        connections close when it is exhausted or closed. On a caller's
        Connection the iterator owns a server-side cursor in the
        Connection's transaction until it is exhausted or closed
        (``chunks.close()``); between chunks the Connection is free for any
        statement, but committing or rolling back before the last chunk
        ends the cursor, and the next chunk then fails saying so.
    parallel : int, optional
        How many connections (1 or more) read a whole table at once (defaults
        to the number of CPUs, at most 4). Only tables of 32 MB or more are
        split, and never a query, ``chunksize`` or a caller's Connection.
    dtype_backend : {"numpy_nullable", "pyarrow"}
        As in pandas' readers: the dtypes above (the default), or every column a ``pd.ArrowDtype`` over
        the very Arrow buffers the rows arrived in. ``"pyarrow"`` is the faster and leaner: it converts and
        copies nothing, where the default copies each numeric, date and timestamp column and builds a mask
        per nullable one. Same values and errors in both; an unconstrained ``numeric`` becomes the narrowest
        exact Arrow decimal (per chunk), and NaN, Infinity or more than 76 digits fail naming the column.

    Returns
    -------
    pandas.DataFrame or iterator of pandas.DataFrame

    Raises
    ------
    FrameError
        When the table does not exist, the query fails, a size is not a whole number of at least 1,
        ``dtype_backend`` is neither of the two, or a date or timestamp is outside years 1 to 9999
        (see above); nothing is changed.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> from playlist_tools import db, frames
    >>> from playlist_tools.models import Base, Song
    >>> with db.fresh_database() as url:
    ...     engine = db.create_engine(url)
    ...     Base.metadata.create_all(engine)
    ...     with engine.begin() as con:
    ...         _ = con.execute(sa.insert(Song), [
    ...             {"title": "Fast as a Shark", "duration_ms": 230619, "unit_price": None},
    ...             {"title": "Lamento", "duration_ms": None, "unit_price": "0.99"}])
    ...     songs = frames.read_frame(sa.select(Song.title, Song.duration_ms, Song.unit_price), engine)
    ...     lamento = frames.read_frame("SELECT title FROM songs WHERE title = :t", engine, {"t": "Lamento"})
    ...     engine.dispose()
    >>> songs
                 title  duration_ms  unit_price
    0  Fast as a Shark       230619        <NA>
    1          Lamento         <NA>        0.99
    >>> songs.dtypes.astype(str).tolist()
    ['string', 'Int32', 'decimal128(10, 2)[pyarrow]']
    >>> lamento.title.tolist()
    ['Lamento']

    >>> with db.fresh_database() as url:
    ...     frames.read_frame("SELECT 7 AS n, 0.99::numeric(3, 2) AS p", url, dtype_backend="pyarrow").dtypes.tolist()
    [int32[pyarrow], decimal128(3, 2)[pyarrow]]
    """
    from playlist_tools.frames import _arrow, _read  # when first needed: see the imports at the top

    backend = _arrow.backend(dtype_backend)
    text = backend == "numpy_nullable"  # large_string, as pandas stores its string dtype; ArrowDtype takes string
    if chunksize is not None:
        chunks = _read.arrow_tables(query, con, params, _read.whole_number("chunksize", chunksize, "rows"), 1, text)
        return _frames_of(chunks, backend)
    parts = min(os.cpu_count() or 1, 4) if parallel is None else _read.whole_number("parallel", parallel, "connections")
    [(table, decimals)] = _read.arrow_tables(query, con, params, None, parts, text)
    return _arrow.to_pandas(table, decimals, backend)


def _frames_of(chunks: Iterator[tuple[Any, list[int]]], backend: _arrow.Backend) -> Iterator[pd.DataFrame]:
    """The chunks as DataFrames; closing this iterator closes ``chunks`` (and its cursor) at once."""
    from playlist_tools.frames import _arrow  # when first needed: see the imports at the top

    with contextlib.closing(chunks):  # type: ignore[type-var]
        for table, decimals in chunks:
            yield _arrow.to_pandas(table, decimals, backend)


def to_parquet(
    query: Query,
    path: str | os.PathLike[str],
    con: db.Connectable = None,
    params: Mapping[str, Any] | None = None,
    *,
    batch_rows: int = 100_000,
) -> int:
    """Stream a query's result into a Parquet file, ``batch_rows`` rows at a time.

    ``query``, ``con`` and ``params`` are those of :func:`read_frame`, and so
    are the Arrow types (an unconstrained ``numeric`` is stored as its text)
    and the refusals (a date outside years 1 to 9999). The file appears
    whole or not at all: the rows go to a hidden ``.partial`` file of ours
    next to it, renamed at the end; an existing file at ``path`` is
    replaced, keeping its permissions (a 0600 file stays 0600; a new file gets
    the umask's). Read it back with ``pd.read_parquet(path, dtype_backend="pyarrow")``
    to keep integers with NULLs integers.

    Raises
    ------
    FrameError
        Before anything is read, when ``batch_rows`` is not a whole number
        of at least 1, ``path`` is a folder or its folder does not exist;
        afterwards, when the read or the disk fails (nothing is left behind).

    Returns
    -------
    int
        The number of rows written.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> from playlist_tools import db, frames
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "numbers.parquet"
    >>> with db.fresh_database() as url:
    ...     frames.to_parquet("SELECT n FROM generate_series(1, 250000) AS n", path, url)
    250000
    >>> int(pd.read_parquet(path).n.sum())
    31250125000
    >>> path.unlink(); path.parent.rmdir()
    """
    from playlist_tools.frames import _parquet  # when first needed: see the imports at the top

    return _parquet.write(query, Path(path), con, params, batch_rows)


def write_frame(
    df: pd.DataFrame,
    table: str | sa.Table | type,
    con: db.Connectable = None,
    *,
    if_exists: Literal["append", "fail", "replace"] = "append",
    index: bool = True,
    allow_data_loss: bool = False,
    overriding_system_value: bool = False,
) -> int:
    """Add a DataFrame's rows to an existing table in one ``COPY``: all rows or none.

    Before anything is sent, the frame is checked against the live table,
    and every problem is named in one :class:`FrameError`: an unknown table,
    missing required columns, extra columns, wrong dtypes, values that do
    not fit (an int64 beyond ``integer``, a float beyond ``real``, text
    longer than ``varchar(n)``, too many digits for ``numeric(p, s)``),
    NULLs in ``NOT NULL`` columns. Integral floats go into integer columns;
    empty strings stay empty strings, not NULL; ``NaN`` in a float column is
    NULL, as pandas means it, and ``inf`` is ``Infinity``; floats into
    ``numeric`` become what PostgreSQL's ``value::float8::numeric(p, s)``
    gives (``0.125`` -> ``0.13``); ``Decimal('NaN')`` is ``NaN``. What
    :func:`read_frame` returns writes back, and Python values of those types
    go in too: bytes into ``bytea``, timedeltas into ``interval``,
    ``uuid.UUID``, dicts and lists into ``json``/``jsonb``, lists into
    arrays, categories into enums; a domain takes its base type's values.
    Explicit values in a serial or identity column move its sequence past
    the largest one written, never backwards. Text longer than
    ``varchar(n)`` only by trailing spaces goes in, trimmed by PostgreSQL as
    on any assignment. A column named with ``%`` or any other character is
    written as named.

    Parameters
    ----------
    df : pandas.DataFrame
        Its column names are the table's. Anything else (a list, a Series)
        is refused; so is a frame with rows but no columns.
    table : str, sqlalchemy.Table or model class
        The table (``"songs"``, ``"public.songs"``, ``Song``). It must exist:
        the schema belongs to the migrations.
    con : sqlalchemy.Connection, sqlalchemy.Engine, str, URL or None
        As in :func:`read_frame`. A Connection gets the rows inside its
        transaction, begun now if it had none (SQLAlchemy 2's autobegin),
        in a savepoint, so a failed write leaves the transaction usable:
        the caller commits or rolls back, and no other session sees the
        rows before. A Connection in ``AUTOCOMMIT`` isolation, an Engine,
        a URL or None: one transaction of ours per call, committed before
        returning. We close only what we open.
    if_exists : {"append", "fail", "replace"}
        When the table already has rows: add to them, refuse, or first
        delete them (``DELETE``, not ``TRUNCATE`` or ``DROP``: the table,
        its grants, indexes and sequences stay) in the same transaction.
        ``"replace"`` refuses when the delete would reach other tables
        through their foreign keys (``ON DELETE CASCADE``, ``SET NULL``,
        ``SET DEFAULT``, followed down every cascade): it names each table
        and how many of its rows would be deleted or changed, and writes
        nothing, unless ``allow_data_loss=True``. A foreign key with ``NO
        ACTION`` or ``RESTRICT`` makes the delete fail instead, unless it is
        deferred and the frame brings the referenced keys back.
        ``"fail"`` and ``"replace"`` first lock the table (``SHARE ROW
        EXCLUSIVE``), so concurrent writers take turns: after ``"replace"``
        the table holds exactly one writer's frame, and with ``"fail"``
        exactly one writer succeeds. Readers are not blocked; ``"append"``
        writers run side by side.
    index : bool
        Write the frame's named index levels as columns, as pandas'
        ``to_sql`` does (``df.set_index("song_id")`` writes ``song_id``);
        an unnamed index (row labels, a ``RangeIndex``) is never written.
        ``False`` leaves the index out. A named level the table lacks is
        refused, never dropped without a word.
    allow_data_loss : bool
        Consent, the word the migrations use, for ``if_exists="replace"``
        to delete or change rows of other tables through their foreign keys.
    overriding_system_value : bool
        Store the frame's values in ``GENERATED ALWAYS AS IDENTITY``
        columns, as ``INSERT ... OVERRIDING SYSTEM VALUE`` would; by default
        such a column in the frame is refused (``COPY`` would skip the
        ALWAYS check and could store duplicate ids). The sequence then moves
        past the largest value written.

    Returns
    -------
    int
        The number of rows written.

    Examples
    --------
    >>> import pandas as pd
    >>> from playlist_tools import db, frames
    >>> from playlist_tools.models import Base
    >>> with db.fresh_database() as url:
    ...     engine = db.create_engine(url)
    ...     Base.metadata.create_all(engine)
    ...     frames.write_frame(pd.DataFrame({"playlist_id": [1, 2], "title": ["Music", ""]}), "playlists", engine)
    ...     try:
    ...         frames.write_frame(pd.DataFrame({"playlist_id": [2**40], "name": ["x"]}), "playlists", engine)
    ...     except frames.FrameError as err:
    ...         print(err)
    ...     frames.read_frame("SELECT playlist_id, title FROM playlists", engine)
    ...     engine.dispose()
    2
    cannot write to playlists: columns ['name'] are not in playlists (...); rename or drop them;
    column 'title' is required (NOT NULL, no default) but missing;
    column 'playlist_id' has values that do not fit int4 (...); ...
       playlist_id  title
    0            1  Music
    1            2
    """
    from playlist_tools.frames import _write  # when first needed: see the imports at the top

    return _write.write(df, table, con, if_exists, index=index, allow_data_loss=allow_data_loss,
                        overriding_system_value=overriding_system_value)

