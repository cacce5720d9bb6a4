"""SQL text as frames send it: ``:name`` placeholders only outside quotes and comments.

Private to the package: :mod:`playlist_tools.frames` reads and binds with it (its
:func:`~playlist_tools.frames.placeholders` is the public face, which the ``%sql`` magic binds notebook
variables with), and ``migrations._affected`` checks that a saved query only reads with :func:`tokens`.

Examples
--------
>>> print(sql_text("SELECT ':b' AS x, :b AS y; -- pasted from psql"))
SELECT '\\:b' AS x, :b AS y -- pasted from psql
>>> placeholders("SELECT * FROM songs WHERE genre = :genre AND title <> ':title' -- :not_me")
['genre']
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import sqlalchemy as sa

_PLACEHOLDER = re.compile(r"\$([1-9][0-9]*)")  # a word that is all of it: in x$1, $1 is part of a name

# What may hold a colon that is no placeholder: comments, strings, quoted names, dollar quotes. Words are
# matched whole so that the E of a word is not taken for the start of an E'...' string.
_TOKEN = re.compile(r"""
    (?P<line>--[^\n]*)
  | (?P<block>/\*)
  | (?P<escaped>[eE]'(?:[^'\\]|\\.|'')*'?)
  | (?P<string>'(?:[^']|'')*'?)
  | (?P<name>"(?:[^"]|"")*"?)
  | (?P<dollar>\$(?:[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$)
  | (?P<word>[\w$]+)
""", re.VERBOSE | re.DOTALL)


def _block_end(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):  # PostgreSQL's block comments nest
        step = sql[i:i + 2]
        depth += (step == "/*") - (step == "*/")
        i += 2 if step in ("/*", "*/") else 1
        if depth == 0:
            return i
    return len(sql)


def tokens(sql: str) -> Iterator[tuple[str | None, str]]:
    """``sql`` cut into comments, literals, words and single characters (kind None), in order."""
    pos = 0
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        kind = match.lastgroup if match else None
        if match is None:
            end = pos + 1
        elif kind == "block":
            end = _block_end(sql, pos)
        elif kind == "dollar":
            close = sql.find(match.group(), match.end())
            end = len(sql) if close < 0 else close + len(match.group())
        else:
            end = match.end()
        yield kind, sql[pos:end]
        pos = end


def sql_text(sql: str) -> str:
    """SQL text for :func:`sqlalchemy.text`: ``:name`` only outside quotes and comments, no trailing ``;``.

    A colon inside a string, a quoted name, a dollar-quoted body or a
    comment is escaped (``\\:``, which ``text()`` turns back into ``:``),
    so ``SELECT ':b'`` asks for no parameter. One ``;`` after the last
    statement, as pasted from psql, is dropped.
    """
    pieces: list[str] = []
    semicolon = None  # index in pieces of a ';' with nothing but white space and comments after it
    for kind, piece in tokens(sql):
        if kind is None and piece == ";":
            semicolon = len(pieces)
        elif kind not in ("line", "block") and not piece.isspace():
            semicolon = None
        pieces.append(piece if kind in (None, "word") else piece.replace(":", "\\:"))
    if semicolon is not None:
        pieces[semicolon] = ""
    return "".join(pieces).rstrip()


def more_than_one_statement(sql: str) -> bool:
    """Whether ``sql`` goes on after a ``;`` outside literals and comments (one trailing ``;`` is fine).

    psycopg2 sends text with the simple protocol, where the server would run
    a second statement; this lets frames refuse one alike for every driver.

    Examples
    --------
    >>> more_than_one_statement("SELECT ';' AS x; -- psql"), more_than_one_statement("SELECT 1) a; DROP TABLE t; (1")
    (False, True)
    """
    ended = False
    for kind, piece in tokens(sql):
        if kind in ("line", "block") or piece.isspace():
            continue
        if ended:
            return True
        ended = kind is None and piece == ";"
    return False


def substitute(sql: str, values: Sequence[str]) -> str | None:
    """``sql`` with each ``$n`` placeholder outside literals and comments replaced by ``values[n - 1]``.

    None if a placeholder has no value. ``values`` are SQL already (typed
    literals from ``_params``); a ``$1`` inside a string, a dollar-quoted
    body, a quoted name or a comment stays as it is.

    Examples
    --------
    >>> substitute("SELECT '$1', $1 -- $1", ["CAST('a' AS text)"])
    "SELECT '$1', CAST('a' AS text) -- $1"
    """
    pieces = []
    for kind, piece in tokens(sql):
        number = _PLACEHOLDER.fullmatch(piece) if kind == "word" else None
        if number is not None:
            if int(number.group(1)) > len(values):
                return None
            piece = values[int(number.group(1)) - 1]
        pieces.append(piece)
    return "".join(pieces)


def placeholders(sql: str) -> list[str]:
    """The ``:name`` placeholders of SQL text, in order of first use; none inside literals or comments."""
    return list(dict.fromkeys(sa.text(sql_text(sql)).compile().binds))
