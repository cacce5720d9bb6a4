"""Where the database is: an explicit URL, else ``$DATABASE_URL``, else the embedded server.

Private to :mod:`playlist_tools.db`, which re-exports everything here.
Nothing here connects; only :func:`resolve_url` may start the embedded
server, and only when neither a URL nor ``$DATABASE_URL`` is given.

Secrets in a URL are the userinfo password and the query values of
:data:`SECRET_KEYS`; :func:`mask_url` replaces each with ``***``, and a URL
that :func:`parse_url` returns masks them in ``str()`` and ``repr()`` too.
"""

from __future__ import annotations

import functools
import os
import re
from urllib.parse import unquote_plus

import sqlalchemy as sa
from sqlalchemy.engine import URL

from playlist_tools.db.embedded import start_embedded
from playlist_tools.errors import DatabaseURLError

DATABASE_URL_ENV = "DATABASE_URL"
"""Environment variable naming another PostgreSQL to use instead of the embedded one."""

SECRET_KEYS = frozenset({"password", "sslpassword", "oauth_client_secret", "scram_client_key", "scram_server_key"})
"""libpq settings whose values are secrets, wherever they appear (URL query or ``key=value`` string)."""

_FORM = "postgresql://user:password@host:port/dbname"
# SQLAlchemy's own reading of the userinfo: the user ends at the first ':' and the password at the next '@'.
_SQLALCHEMY_USERINFO = re.compile(r"(?P<head>^\s*[\w+]+://[^:/]*):[^@]*@")
# When SQLAlchemy's reading cannot be trusted, everything up to the last '@' may be userinfo.
_UNSURE_USERINFO = re.compile(r"(?P<head>^\s*(?:[\w+.-]*://)?).*@", re.DOTALL)
_SECRET_IN_QUERY = re.compile(rf"[?&](?:{'|'.join(sorted(SECRET_KEYS))})=")
# No '@' at all: what follows the host's ':' is a bad port, or a password with the host left out.
_UNSURE_PORT = re.compile(r"(?P<head>://(?:\[[^\]]*\]|[^:/?#@\[]*)):.+", re.DOTALL)
_KEY_VALUE = re.compile(r"\s*\w+\s*=")


@functools.cache
def _keywords() -> frozenset[str]:
    """Every setting libpq knows: where a secret's value ends when it holds a raw ``&`` or space."""
    import psycopg

    return frozenset(option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults())


@functools.cache
def _key_value_secret() -> re.Pattern[str]:
    secrets = "|".join(sorted(SECRET_KEYS))
    known = "|".join(sorted(_keywords()))
    return re.compile(
        rf"(?P<head>(?:^|[\s?&;])(?:{secrets})\s*=\s*)"
        rf"(?:'(?:\\.|[^'\\])*'(?=\s+(?:{known})\s*=|\s*$)|.*?(?=\s+(?:{known})\s*=|$))",
        re.DOTALL,
    )


def _mask_query(query: str) -> tuple[str, int]:
    """Mask a query's secrets; count the pieces after one that are no libpq ``setting=`` (a raw ``&``)."""
    shown: list[str] = []
    hiding = False
    swallowed = 0
    for piece in query.split("&"):
        key, equals, _ = piece.partition("=")
        key = unquote_plus(key).strip()
        if equals and key in SECRET_KEYS:
            shown.append(piece.partition("=")[0] + "=***")
            hiding = True
        elif not hiding or (equals and key in _keywords()):
            shown.append(piece)
            hiding = False
        else:
            swallowed += 1
    return "&".join(shown), swallowed


def _split_at_first_secret(text: str) -> tuple[str, str]:
    """``text`` cut where its query's first secret starts (``?password=``), if anywhere."""
    found = _SECRET_IN_QUERY.search(text)
    return (text[: found.start()], text[found.start() :]) if found else (text, "")


def _password_end_is_clear(text: str) -> bool:
    """Whether SQLAlchemy reads ``text`` and no raw ``@`` follows the (first) one that ends the password."""
    try:
        sa.make_url(text.strip())
    except Exception:  # SQLAlchemy raises ArgumentError or ValueError here
        return False
    userinfo = _SQLALCHEMY_USERINFO.match(text)
    return userinfo is None or "@" not in text[userinfo.end() :]


def _mask_text(text: str) -> str:
    if _KEY_VALUE.match(text):  # a URL never starts with ``word=``
        return _key_value_secret().sub(lambda m: m["head"] + "***", text)
    if _password_end_is_clear(text):
        text = _SQLALCHEMY_USERINFO.sub(lambda m: m["head"] + ":***@", text, count=1)
    elif "@" in _split_at_first_secret(text)[0]:
        # Up to the last '@' before any ?password=, which is masked below, '@'s and all.
        before, secrets = _split_at_first_secret(text)
        text = _UNSURE_USERINFO.sub(lambda m: m["head"] + "***@", before, count=1) + secrets
    else:
        text = _UNSURE_PORT.sub(lambda m: m["head"] + ":***", text, count=1)
    head, question, query = text.partition("?")
    return head + question + _mask_query(query)[0] if question else text


def mask_url(url: str | URL) -> str:
    """Render a database URL with every secret in it replaced by ``***``.

    Secrets are the password, wherever it is (``user:password@`` or
    ``?password=``), and the other values libpq keeps secret
    (:data:`SECRET_KEYS`, e.g. ``sslpassword``). Strings are masked as
    written, so this works on URLs nothing can parse and on libpq
    ``key=value`` strings too. When a string is ambiguous (a raw ``@`` in
    the password, or unparsable), everything between ``://`` and the last
    ``@`` is masked, user name included.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        The URL to show.

    Returns
    -------
    str
        The URL, safe to print, log or put in an error message.

    Examples
    --------
    >>> mask_url("postgresql://ann:pw@host/db")
    'postgresql://ann:***@host/db'
    >>> mask_url("postgresql://ann@host/db?sslmode=require&password=pw")
    'postgresql://ann@host/db?sslmode=require&password=***'
    >>> mask_url("postgresql://ann:p@ss@host/db")  # a raw '@' in the password
    'postgresql://***@host/db'
    >>> mask_url("host=db.example.org password='s3 cret' dbname=music")
    'host=db.example.org password=*** dbname=music'
    >>> mask_url("not a url :-)")
    'not a url :-)'
    """
    if isinstance(url, URL):
        return _mask_text(URL.render_as_string(url, hide_password=True))
    return _mask_text(url)


def secret_values(url: str | URL) -> list[str]:
    """The secret values in ``url`` (longest first), to scrub from a driver's error message."""
    import psycopg

    try:
        parsed = url if isinstance(url, URL) else sa.make_url(url.strip())
        found = {**parsed.query, "password": parsed.password}
    except Exception:  # not a URL: a key=value string, or nothing anyone can read
        try:
            found = psycopg.conninfo.conninfo_to_dict(str(url))
        except psycopg.Error:
            return []
    values = [str(v) for key, value in found.items() if key in SECRET_KEYS for v in _listed(value) if v]
    return sorted(set(values), key=len, reverse=True)


def _listed(value: object) -> tuple[object, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


class _MaskedURL(URL):
    """A URL whose ``str()``, ``repr()`` (and so an engine's repr) mask every secret, not only the password."""

    __slots__ = ()

    def render_as_string(self, hide_password: bool = True) -> str:  # noqa: D102 - SQLAlchemy's, masked
        return mask_url(self) if hide_password else super().render_as_string(hide_password=False)


def parse_url(url: str | URL, *, source: str = "database URL") -> URL:
    """Parse and check a PostgreSQL URL, without connecting.

    ``postgres://`` (as some hosting services write it) is accepted and
    rewritten to ``postgresql://``. SQLAlchemy 2.1 picks psycopg 3 for a
    plain ``postgresql://``; a URL that names a driver keeps it.

    With a user name, ``?password=`` becomes the URL's password (winning over
    ``user:password@``, as in libpq), handed on and masked like it. Any
    character works in a password once percent-encoded. libpq and SQLAlchemy
    both end the password at the first ``@``, so a raw ``@`` after that one
    (or a raw ``&`` in ``?password=``) is refused, not guessed at.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        The URL to check.
    source : str
        Where the URL came from, for the error message (``"DATABASE_URL"``).

    Returns
    -------
    sqlalchemy.engine.URL
        Its ``str()`` and ``repr()`` mask every secret (see :func:`mask_url`).

    Raises
    ------
    DatabaseURLError
        When the URL cannot be parsed or does not name PostgreSQL. The
        message never contains any part of a password.

    Examples
    --------
    >>> parse_url("postgresql+psycopg://ann@localhost:5433/music").port
    5433
    >>> parse_url("postgresql://ann@localhost/music?password=s3cret")
    postgresql://ann:***@localhost/music
    >>> parse_url("mysql://ann:pw@localhost/music")
    Traceback (most recent call last):
    ...
    playlist_tools.errors.DatabaseURLError: database URL 'mysql://ann:***@localhost/music' has scheme 'mysql';
    playlist-tools needs PostgreSQL: postgresql://user:password@host:port/dbname
    >>> parse_url("postgresql://ann:p@ss@localhost/music")
    Traceback (most recent call last):
    ...
    playlist_tools.errors.DatabaseURLError: database URL 'postgresql://***@localhost/music' has a raw '@' after
    the one that ends its password; percent-encode each '@' in the password as %40...
    """
    if isinstance(url, str):
        text = url.strip()
        if text.startswith("postgres://"):
            text = "postgresql://" + text[len("postgres://") :]
        try:
            parsed = sa.make_url(text)
        except Exception as err:  # SQLAlchemy raises ArgumentError or ValueError here
            # int()'s ValueError quotes the text after the host's ':', which may be part of a password.
            cause = err if isinstance(err, sa.exc.ArgumentError) else ValueError(f"{type(err).__name__} (not kept)")
            raise DatabaseURLError(f"{source} {mask_url(url.strip())!r} is not a URL; write it as {_FORM}") from cause
        shown = mask_url(url.strip())
        unclear = not _password_end_is_clear(text)
        if _mask_query(_SQLALCHEMY_USERINFO.sub("", text, count=1).partition("?")[2])[1]:
            raise DatabaseURLError(
                f"{source} {shown!r} has a raw '&' in a secret (or a setting libpq does not know after one); "
                f"percent-encode '&' in the password as %26: {_FORM}"
            )
    else:
        parsed, shown = url, mask_url(url)
        unclear = "@" in (parsed.host or "")  # no host has one: it is the rest of a password
    if unclear:
        raise DatabaseURLError(
            f"{source} {shown!r} has a raw '@' after the one that ends its password; "
            f"percent-encode each '@' in the password as %40 (and any / ? # % as %2F %3F %23 %25): {_FORM}"
        )
    query = dict(parsed.query)
    if "password" in query and parsed.username is not None:  # SQLAlchemy renders no password without a user
        parsed = parsed.set(password=str(_listed(query.pop("password"))[-1]), query=query)
    parsed = _MaskedURL._make(parsed)
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseURLError(
            f"{source} {mask_url(parsed)!r} has scheme {parsed.drivername!r}; playlist-tools needs PostgreSQL: {_FORM}"
        )
    try:
        parsed.get_dialect()  # loads SQLAlchemy's dialect class only, not the driver
    except sa.exc.NoSuchModuleError as err:
        raise DatabaseURLError(
            f"{source} {mask_url(parsed)!r} names driver {parsed.get_driver_name()!r}, which SQLAlchemy "
            "does not know; write postgresql:// (psycopg 3) or postgresql+psycopg2://"
        ) from err
    return parsed


def resolve_url(url: str | URL | None = None) -> URL:
    """Find the database: ``url``, else ``$DATABASE_URL``, else the embedded server.

    Resolving to the embedded server starts it when it is not running (about
    half a second when its data directory already exists, a few seconds the
    very first time, when ``initdb`` runs).

    Parameters
    ----------
    url : str, sqlalchemy.engine.URL or None
        An explicit URL, which wins over everything else.

    Returns
    -------
    sqlalchemy.engine.URL

    Examples
    --------
    >>> resolve_url("postgresql://ann@localhost/music").database
    'music'
    """
    if url is not None:
        return parse_url(url)
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if from_env:
        return parse_url(from_env, source=DATABASE_URL_ENV)
    return parse_url(start_embedded(), source="the embedded server's URL")  # for the masking str()
