"""Sample data: the real Chinook playlists, and a synthetic generator for scale.

The real sample ships inside the package (``playlist_tools/data``, MIT,
derived from Chinook by ``tools/convert_chinook.py``; see the
``PROVENANCE.md`` and ``LICENSE.md`` there): 3503 songs, 18 playlists and
8715 playlist entries, quirks included (repeated playlist names, four empty
playlists, non-ASCII titles, NULL composers, a few videos).
:func:`read_sample` returns it as DataFrames; :func:`load_sample` puts it
in a database. :func:`synthetic` (from :mod:`playlist_tools.synthetic`)
makes any number of made-up songs and playlists, the same ones for the
same seed, for scale tests and benchmarks.

Examples
--------
>>> from playlist_tools import sample
>>> {name: len(frame) for name, frame in sample.read_sample().items()}
{'songs': 3503, 'playlists': 18, 'playlist_song_association': 8715}
"""

from __future__ import annotations

import warnings
from importlib import resources
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from tqdm import TqdmWarning

from playlist_tools import db, frames
from playlist_tools.errors import FrameError, SampleError, first_line, one_line
from playlist_tools.models import Base
from playlist_tools.synthetic import synthetic

if TYPE_CHECKING:
    from tqdm import tqdm as ProgressBar

__all__ = ["TABLES", "SampleError", "read_sample", "load_sample", "synthetic"]

TABLES = ("playlists", "songs", "playlist_song_association")
"""The tables the sample fills, in loading order (parents first)."""

_KEYS = {"songs": ("song_id",), "playlists": ("playlist_id",), "playlist_song_association": ("playlist_id", "song_id")}
_IDENTITIES = {"songs": "song_id", "playlists": "playlist_id", "playlist_song_association": "position"}


def read_sample() -> dict[str, pd.DataFrame]:
    """The shipped sample playlists as DataFrames, keyed by table name.

    Dtypes as :func:`playlist_tools.frames.read_frame` gives them (see
    :func:`playlist_tools.synthetic.synthetic`); ``playlists`` has no ``created_at``
    (Chinook has no dates; the database's default fills it on load).

    Examples
    --------
    >>> playlists = read_sample()["playlists"]
    >>> playlists.loc[playlists["title"] == "90’s Music", "playlist_id"].tolist()
    [5]
    """
    data = resources.files("playlist_tools") / "data"
    tables = {}
    for name in ("songs", "playlists", "playlist_song_association"):
        table = pq.read_table(pa.BufferReader((data / f"{name}.parquet").read_bytes()))
        tables[name] = table.to_pandas(types_mapper=frames.pandas_dtype)
    return tables


def _check_schema(connection: Connection) -> None:
    inspector = sa.inspect(connection)
    for name in TABLES:
        if not inspector.has_table(name):
            raise SampleError(f"table {name!r} does not exist; create the schema first: alembic upgrade head")
        present = {column["name"] for column in inspector.get_columns(name)}
        missing = [c.name for c in Base.metadata.tables[name].columns if c.name not in present]
        if missing:
            raise SampleError(
                f"table {name!r} has no column {missing[0]!r}; upgrade the schema first: alembic upgrade head"
            )


def _rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [
        {key: (None if value is pd.NA else value) for key, value in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]


def _check_skipped(connection: Connection, name: str, rows: list[dict[str, object]], inserted: set[tuple]) -> None:
    """Rows that were already there must equal the sample's, or the load is refused.

    The skipped keys travel as one array per key column, joined through
    ``unnest``: a few parameters however many rows. (An ``IN`` list of
    8715 key pairs is 17430 parameters, and PostgreSQL 15 runs out of stack
    planning it.)
    """
    keys, table = _KEYS[name], Base.metadata.tables[name]
    expected = {tuple(row[k] for k in keys): row for row in rows}
    skipped = [key for key in expected if key not in inserted]
    if not skipped:
        return
    arrays = [
        sa.bindparam(f"skipped_{k}", list(values), type_=ARRAY(table.c[k].type))
        for k, values in zip(keys, zip(*skipped, strict=True), strict=True)
    ]
    wanted = sa.func.unnest(*arrays).table_valued(*keys).render_derived(name="wanted")
    columns = [table.c[c] for c in rows[0]]
    on = sa.and_(*(table.c[k] == wanted.c[k] for k in keys))
    for found in connection.execute(sa.select(*columns).select_from(table.join(wanted, on))).mappings():
        want = expected[tuple(found[k] for k in keys)]
        for column, value in want.items():
            if found[column] != value:
                where = ", ".join(f"{k}={found[k]}" for k in keys)
                raise SampleError(
                    f"{name} row {where} already exists with {column}={found[column]!r}, "
                    f"but the sample has {value!r}; load the sample into an empty database "
                    "(playlist_tools.db.fresh_database) or delete that row first"
                )


def load_sample(con: db.Connectable = None, *, progress: bool = True) -> pd.DataFrame:
    """Load the sample playlists into ``con``, all or nothing, idempotently.

    Rows already present with the same values are skipped, so loading twice
    changes nothing. A row present with *different* values (a key taken by
    other data) raises :class:`SampleError`, and nothing is loaded: the
    whole load is one transaction. Afterwards the id and position
    sequences continue past the loaded values, so rows inserted later get
    fresh ids. ``created_at`` is left to the database's default (the load
    time). The schema must be at head (``alembic upgrade head``), and the
    role may create temporary tables (PostgreSQL grants that to everyone by
    default): the rows are staged in one per table.

    Parameters
    ----------
    con : str, sqlalchemy.engine.URL, Engine, Connection or None
        Where to load. A URL or ``None`` (see :func:`playlist_tools.db.resolve_url`):
        an engine is made and disposed of here. An ``Engine``: one of its
        connections is used and returned; the caller disposes of the engine.
        A ``Connection``: used as is and left open; inside a transaction the
        load runs in a savepoint and the caller commits, otherwise it is
        committed here.
    progress : bool
        Show a tqdm progress bar (terminal or notebook widget).

    Returns
    -------
    pandas.DataFrame
        Indexed by table: ``sample`` rows in the sample, ``inserted`` rows
        added now, ``total`` rows in the table afterwards.

    Raises
    ------
    SampleError
        The schema is not at head; a row is already there with other values;
        or the server refused a statement (then the message is the server's
        first line, without the SQL or its thousands of parameters). In every
        case nothing was loaded.

    Examples
    --------
    >>> from playlist_tools import models
    >>> with db.fresh_database() as url:
    ...     engine = db.create_engine(url)
    ...     models.Base.metadata.create_all(engine)
    ...     first = load_sample(engine, progress=False)
    ...     again = load_sample(engine, progress=False)
    ...     engine.dispose()
    >>> first
                               sample  inserted  total
    table
    playlists                      18        18     18
    songs                        3503      3503   3503
    playlist_song_association    8715      8715   8715
    >>> again["inserted"].tolist()
    [0, 0, 0]
    """
    with warnings.catch_warnings():
        # Without ipywidgets, tqdm.auto warns (with a path) and falls back to
        # a text bar, which is fine: notebooks show it too.
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm

    shipped = read_sample()
    counts = []
    into = ""
    try:
        with db.transaction(con) as connection:
            db.require_writable(connection, "load the sample", SampleError)
            _check_schema(connection)  # before the bar, so a refusal prints only its one line
            total = sum(map(len, shipped.values()))
            with tqdm(total=total, unit="row", desc="loading sample", disable=not progress) as bar:
                for name in TABLES:
                    into = f" into {name}"
                    counts.append(_load_table(connection, name, shipped[name], bar))
    except sa.exc.DBAPIError as err:
        # SQLAlchemy's own message quotes the statement and every parameter (thousands
        # of rows here, over several lines); the server's first line says what went wrong.
        reason = first_line(err.orig if err.orig is not None else err)
        raise SampleError(
            f"loading the sample{into} failed: {reason}; nothing was loaded, fix that and load again"
        ) from err
    return pd.DataFrame(counts, columns=["table", "sample", "inserted", "total"]).set_index("table")


def _load_table(
    connection: Connection, name: str, frame: pd.DataFrame, bar: ProgressBar
) -> tuple[str, int, int, int]:
    """Insert one table's missing rows, check the others, advance its sequence: (name, sample, inserted, total).

    The rows go in by :func:`playlist_tools.frames.write_frame` (one checked ``COPY``) into a temporary
    table shaped like ``name``, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` moves the missing ones
    across. That takes a fraction of the time of a multi-row ``INSERT`` of the same rows (whose
    statements psycopg has to parse for their thousands of placeholders), with the same outcome.
    """
    table, keys = Base.metadata.tables[name], _KEYS[name]
    quote = connection.dialect.identifier_preparer.quote
    staging_name = f"playlist_tools_sample_{name}"  # a temporary table: this session's only
    staging = quote(staging_name)
    columns = ", ".join(quote(str(column)) for column in frame.columns)
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {staging} AS SELECT {columns} FROM {quote(name)} WITH NO DATA")
    try:
        frames.write_frame(frame, staging_name, connection)
    except FrameError as err:  # the database's columns are not the models' (changed by hand)
        found = one_line(str(err).removeprefix(f"cannot write to {staging_name}: "), 160)  # not our staging name
        raise SampleError(f"cannot load the sample into {name}, whose columns differ from the models' ({found}); "
                          "load it into a database at head (playlist_tools.db.fresh_database, alembic upgrade head)"
                          ) from err
    returned = connection.exec_driver_sql(
        f"INSERT INTO {quote(name)} ({columns}) SELECT {columns} FROM {staging} "
        f"ON CONFLICT DO NOTHING RETURNING {', '.join(quote(k) for k in keys)}"
    )
    inserted = {tuple(row) for row in returned}
    connection.exec_driver_sql(f"DROP TABLE {staging}")
    bar.update(len(frame))
    if len(inserted) < len(frame):
        _check_skipped(connection, name, _rows(frame), inserted)
    column = _IDENTITIES[name]
    largest = connection.execute(sa.select(sa.func.max(table.c[column]))).scalar()
    if largest is not None:  # the one rule of frames.write_frame: past the largest id, never backwards
        connection.exec_driver_sql(*frames.advance_sequence(quote(name), column, largest))
    total = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    return name, len(frame), len(inserted), total
