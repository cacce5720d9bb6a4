"""Where the database is: an explicit URL, else ``$DATABASE_URL``, else the embedded server.

Private to :mod:`playlist_tools.db`, which re-exports everything here.
Nothing here connects; only :func:`resolve_url` may start the embedded
server, and only when neither a URL nor ``$DATABASE_URL`` is given.
"""

from __future__ import annotations

import os
import re

import sqlalchemy as sa
from sqlalchemy.engine import URL

from playlist_tools.db.embedded import start_embedded
from playlist_tools.errors import DatabaseURLError

DATABASE_URL_ENV = "DATABASE_URL"
"""Environment variable naming another PostgreSQL to use instead of the embedded one."""

_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^:/?#@]*):(?P<password>[^@/?#]*)@")


def mask_url(url: str | URL) -> str:
    """Render a database URL with its password replaced by ``***``.

    Works on strings that SQLAlchemy cannot parse too, so that even an error
    about a malformed URL never shows a password.

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
    >>> mask_url("postgresql://ann@host/db")
    'postgresql://ann@host/db'
    >>> mask_url("not a url :-)")
    'not a url :-)'
    """
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)

    def _hide(match: re.Match[str]) -> str:
        return f"{match['head']}:***@" if match["password"] else match.group(0)

    return _PASSWORD_IN_URL.sub(_hide, url)


def parse_url(url: str | URL, *, source: str = "database URL") -> URL:
    """Parse and check a PostgreSQL URL, without connecting.

    ``postgres://`` (as some hosting services write it) is accepted and
    rewritten to ``postgresql://``. SQLAlchemy 2.1 picks psycopg 3 for a
    plain ``postgresql://``; a URL that names a driver keeps it.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        The URL to check.
    source : str
        Where the URL came from, for the error message (``"DATABASE_URL"``).

    Returns
    -------
    sqlalchemy.engine.URL

    Raises
    ------
    DatabaseURLError
        When the URL cannot be parsed or does not name PostgreSQL.

    Examples
    --------
    >>> parse_url("postgresql+psycopg://ann@localhost:5433/music").port
    5433
    >>> parse_url("mysql://ann:pw@localhost/music")
    Traceback (most recent call last):
    ...
    playlist_tools.errors.DatabaseURLError: database URL 'mysql://ann:***@localhost/music' has scheme 'mysql';
    playlist-tools needs PostgreSQL: postgresql://user:password@host:port/dbname
    """
    if isinstance(url, str):
        text = url.strip()
        if text.startswith("postgres://"):
            text = "postgresql://" + text[len("postgres://") :]
        try:
            parsed = sa.make_url(text)
        except Exception as err:  # SQLAlchemy raises ArgumentError or ValueError here
            raise DatabaseURLError(
                f"{source} {mask_url(url)!r} is not a URL; write it as "
                "postgresql://user:password@host:port/dbname"
            ) from err
    else:
        parsed = url
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseURLError(
            f"{source} {mask_url(parsed)!r} has scheme {parsed.drivername!r}; "
            "playlist-tools needs PostgreSQL: postgresql://user:password@host:port/dbname"
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
    return start_embedded()
