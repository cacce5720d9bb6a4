"""The schema, as DataFrames and as an ER diagram: live, or at any revision of the history.

The live functions (:func:`tables`, :func:`columns`, :func:`erd`) read
PostgreSQL's catalogs of the database you point them at, so they show what
is really there (after migrations, hand-made tables included), not what the
models say. Tables of the current schema (normally ``public``) only; rows
come in a fixed order.

:func:`at` gives the same views of the schema at a revision, and
:func:`diff` what changed between two, without touching your database:
the history is replayed into a cache database per revision on the same
server (see :mod:`playlist_tools.migrations`; ``migrations.drop_replays()``
drops the caches). ``erd(diff=(a, b))``, the same as ``at(b).erd(since=a)``,
draws ``b`` with what changed since ``a`` marked.

Modules: ``_live`` (the catalog reads), ``_at`` (a replayed revision, and
:func:`diff` of two), ``_diff`` (the comparison itself), ``_draw`` (the Mermaid text), ``_erd``.

Examples
--------
>>> from playlist_tools import db, models, schema
>>> with db.fresh_database() as url:
...     engine = db.create_engine(url)
...     models.Base.metadata.create_all(engine)
...     overview = schema.tables(engine)
...     diagram = schema.erd(engine)
...     engine.dispose()
>>> overview["name"].tolist()
['playlist_song_association', 'playlists', 'songs']
>>> print(str(diagram).splitlines()[0])
erDiagram
>>> schema.diff("0001", "0002")
     kind      table         name change before after
0  column  playlists  description  added   <NA>  text
"""

from playlist_tools._mermaid import MermaidDiagram
from playlist_tools.errors import SchemaError
from playlist_tools.schema._at import SchemaAt, at, diff
from playlist_tools.schema._diff import CHANGE_COLUMNS
from playlist_tools.schema._erd import erd
from playlist_tools.schema._live import EXACT_COUNT_BELOW, columns, tables

__all__ = [
    "CHANGE_COLUMNS",
    "EXACT_COUNT_BELOW",
    "MermaidDiagram",
    "SchemaAt",
    "SchemaError",
    "at",
    "columns",
    "diff",
    "erd",
    "tables",
]
