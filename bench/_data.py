"""The benchmark's data and queries: deterministic tables built by the server, and the read cases.

Shared by ``bench/run.py`` (which builds the tables) and ``bench/peers.py``
(which runs one case in one way). Every table is made by ``generate_series``
in SQL, so a 10,000,000-row table costs no Python time and the same size
always holds the same rows:

=============  ==================  ==================================
column         type                values
=============  ==================  ==================================
``id``         ``integer`` (key)   1..n
``album_id``   ``integer``         1..1000, joins ``albums``
``title``      ``text``            5..29 characters, some non-ASCII
``plays``      ``integer``         NULL in every 7th row
``released``   ``date``            2000..2024, NULL in every 11th row
``rating``     ``numeric(3,1)``    0.0..9.9, NULL in every 5th row
``explicit``   ``boolean``
``added``      ``timestamptz``     2020..2024, to the second
``composer``   ``text``            NULL in every 4th row
``size``       ``bigint``          beyond 2**31 from row 524,288 on
=============  ==================  ==================================

and beside each, ``<table>_text`` (:func:`text_sql`), the text-heavy shape
of issue 21 with the same row count: ``id``, four ``text`` columns of 10-20
characters (``a``..``d``, NULL in every 9th row of ``d``), ``n integer``,
``day date``, ``score numeric(3,1)``, ``flag boolean``, ``at timestamptz``.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

ALBUMS = 1000

_COLUMNS = """
    id integer NOT NULL, album_id integer NOT NULL, title text NOT NULL, plays integer, released date,
    rating numeric(3,1), explicit boolean NOT NULL, added timestamptz NOT NULL, composer text, size bigint NOT NULL
"""
_ROWS = """
SELECT i, 1 + (i::bigint * 7919) % {albums}, substr('Ünïcödé tïtles of many lengths', 1, 5 + i % 25) || ' ' || i,
       CASE WHEN i % 7 = 0 THEN NULL ELSE (i::bigint * 7919) % 100000 END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE date '2000-01-01' + (i * 37) % 9125 END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE ((i * 13) % 100) / 10.0 END,
       i % 3 = 0,
       timestamptz '2020-01-01 00:00:00+00' + ((i::bigint * 7919) % 157680000) * interval '1 second',
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'composer ' || i % 5000 END,
       i::bigint * 4096 + i % 977
FROM generate_series(1, {n}) AS i
"""


def build_sql(table: str, n: int) -> list[str]:
    """Statements that create ``table`` with ``n`` rows (the key added after the rows: faster)."""
    return _built(table, _COLUMNS, _ROWS.format(albums=ALBUMS, n=n))


def _built(table: str, columns: str, rows: str) -> list[str]:
    """Create ``table``, fill it, then add its key (faster than filling an indexed table)."""
    return [f"CREATE TABLE {table} ({columns})", f"INSERT INTO {table} {rows}",
            f"ALTER TABLE {table} ADD PRIMARY KEY (id)"]


_TEXT_COLUMNS = """
    id integer NOT NULL, a text NOT NULL, b text NOT NULL, c text, d text, n integer, day date,
    score numeric(3,1), flag boolean NOT NULL, at timestamptz NOT NULL
"""
_TEXT_ROWS = """
SELECT i, substr(md5(i::text), 1, 10 + i % 11), 'name ' || lpad((i * 7919 % 1000000)::text, 5 + i % 11, '0'),
       CASE WHEN i % 13 = 0 THEN NULL ELSE substr('Ünïcödé words of text ' || i, 1, 10 + i % 11) END,
       CASE WHEN i % 9 = 0 THEN NULL ELSE substr(md5((i * 31)::text), 3, 10 + (i * 7) % 11) END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE (i::bigint * 7919) % 100000 END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE date '2000-01-01' + (i * 37) % 9125 END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE ((i * 13) % 100) / 10.0 END,
       i % 3 = 0,
       timestamptz '2020-01-01 00:00:00+00' + ((i::bigint * 7919) % 157680000) * interval '1 second'
FROM generate_series(1, {n}) AS i
"""


def text_sql(table: str, n: int) -> list[str]:
    """Statements that create ``table`` (named ``<read table>_text``), the text-heavy shape, with ``n`` rows."""
    return _built(table, _TEXT_COLUMNS, _TEXT_ROWS.format(n=n))


def albums_sql() -> list[str]:
    """The small second table of the join."""
    return [
        "CREATE TABLE albums (album_id integer PRIMARY KEY, album text NOT NULL, genre text)",
        f"INSERT INTO albums SELECT a, 'album ' || a, (ARRAY['rock', 'jazz', 'pop', NULL])[1 + a % 4] "
        f"FROM generate_series(1, {ALBUMS}) AS a",
    ]


def plain_sql(table: str, like: str) -> str:
    """A write target with ``like``'s columns and no index, key or constraint but NOT NULL."""
    return f"CREATE TABLE {table} (LIKE {like})"


@dataclass(frozen=True)
class Case:
    """One read: its SQL (``{t}`` is the table, ``:name`` a bound parameter) and what read_frame gets."""

    label: str
    title: str
    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    whole_table: bool = False  # read_frame gets the table's name, its parallel ctid path

    def text(self, table: str) -> str:
        return self.sql.format(t=table)

    def frame_query(self, table: str) -> str:
        return table if self.whole_table else self.text(table)

    def dollar(self, table: str) -> tuple[str, list[Any]]:
        """The SQL with ``$1, $2...`` (ADBC's style) and the values in that order."""
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            names.append(match.group(1))
            return f"${len(names)}"

        return _PLACEHOLDER.sub(number, self.text(table)), [self.params[n] for n in names]

    def pyformat(self, table: str) -> str:
        """The SQL with ``%(name)s`` (psycopg's style), for the floor's client-side binding."""
        return _PLACEHOLDER.sub(r"%(\1)s", self.text(table))

    def literal(self, table: str) -> str:
        """The SQL with the values spelled out: connectorx binds no parameters."""
        return _PLACEHOLDER.sub(lambda m: _literal(self.params[m.group(1)]), self.text(table))


_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_]+)")


def _literal(value: Any) -> str:
    if isinstance(value, datetime.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"no literal for {value!r}")


CASES: dict[str, Case] = {
    "order_by": Case("ORDER BY", "`SELECT * FROM t ORDER BY id`", "SELECT * FROM {t} ORDER BY id"),
    "text": Case(
        "text-heavy", "text-heavy (issue 21): `SELECT * FROM t_text ORDER BY id`, four text columns of 10-20 "
        "characters, int, date, numeric(3,1), boolean, timestamptz", "SELECT * FROM {t}_text ORDER BY id",
    ),
    "join": Case(
        "join", "a join with `albums` (1,000 rows): `SELECT t.*, album, genre FROM t JOIN albums USING (album_id)`",
        "SELECT {t}.*, albums.album, albums.genre FROM {t} JOIN albums USING (album_id)",
    ),
    "where": Case(
        "WHERE :params", "bound parameters: `SELECT * FROM t WHERE released >= :since AND plays > :min_plays`",
        "SELECT * FROM {t} WHERE released >= :since AND plays > :min_plays",
        {"since": datetime.date(2012, 6, 1), "min_plays": 1000},
    ),
    "group_by": Case(
        "GROUP BY", "an aggregate: count, sum, avg, max `GROUP BY album_id, year`",
        "SELECT album_id, extract(year FROM released)::int AS year, count(*) AS songs, sum(plays) AS plays, "
        "avg(rating) AS rating, max(added) AS last_added FROM {t} GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    "whole": Case(
        "whole table", "the whole table: `read_frame(\"t\")`, the others `SELECT * FROM t`", "SELECT * FROM {t}",
        whole_table=True,
    ),
}
"""The read cases, in the order of the results."""

QUERY_CASES = ("order_by", "text", "join", "where", "group_by")
"""The cases of the goal "any query"; ``whole`` has a goal of its own."""
