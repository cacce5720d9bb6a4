"""Passwords never show (issue 9): wherever they are in a URL, however they are written, whatever they hold."""

from __future__ import annotations

import os
import random
import traceback
from collections.abc import Callable, Iterator
from urllib.parse import quote, quote_plus

import pytest
import sqlalchemy as sa
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy.engine import URL

from playlist_tools import db, frames

# The list of keys masked in a URL: the test runs over each; no public name lists them.
from playlist_tools.db._url import SECRET_KEYS
from playlist_tools.errors import DatabaseUnavailableError, DatabaseURLError

from helpers import run_cli, url_text

SECRET = "s3cr3t-pw"
HOSTILE = [
    " a b ",
    "it's",
    'say "hi"',
    "back\\slash",
    "p@ss",
    "a/b",
    "a#b",
    "a?b",
    "100%",
    "%41%2",
    "a+b",
    "x&y=z",
    "pässwörd ✓",
    "密码",
    "semi;colon",
    "[::1]",
    "tab\there",
]


def everything_shown(err: BaseException) -> str:
    """All a person could see of an error: its message, repr, and full traceback with causes."""
    return str(err) + repr(err) + "".join(traceback.format_exception(err))


def pieces(secret: str, size: int = 4) -> set[str]:
    """The secret's substrings of ``size`` characters (the whole secret when shorter)."""
    return {secret[i : i + size] for i in range(max(1, len(secret) - size + 1))}


# -- ?password= and the other secret query keys ------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(SECRET_KEYS))
def test_secret_query_values_are_masked_everywhere(key: str) -> None:
    text = f"postgresql://ann@db.example.org/music?sslmode=prefer&{key}={SECRET}&application_name=x"
    url = db.parse_url(text)
    engine = db.create_engine(url)
    try:
        shown = [
            db.mask_url(text),
            db.mask_url(url),
            str(url),
            repr(url),
            repr(engine),
            str(engine.url),
            url.render_as_string(hide_password=True),
            str(db.unavailable(text, OSError("refused"))),
        ]
    finally:
        engine.dispose()
    for each in shown:
        assert SECRET not in each, each
        assert "sslmode=prefer" in each and "***" in each, each  # the rest of the URL still shows


def test_query_password_is_the_password_libpq_would_use() -> None:
    text = f"postgresql://ann:other@db.example.org/music?password={SECRET}"
    url = db.parse_url(text)
    assert url.password == conninfo_to_dict(text)["password"]  # the query wins, in libpq as here
    assert "password" not in url.query


def test_query_password_without_a_user_stays_in_the_query_and_masked() -> None:
    url = db.parse_url(f"postgresql://db.example.org/music?password={SECRET}")
    assert url.query["password"] == SECRET and SECRET not in str(url) + repr(url)


def test_cli_masks_a_query_password(database_url: URL) -> None:
    # A server that checks passwords (DATABASE_URL elsewhere) needs the real one, moved into the query;
    # the embedded server trusts its local socket, so any password gets in there.
    password = database_url.password or SECRET
    if database_url.password is not None and len(str(password)) < 8:
        pytest.skip("the server's password is too short to tell apart in the output")
    moved = database_url.set(password=None).update_query_dict({"password": str(password)})
    env = {"DATABASE_URL": url_text(moved)}
    for argv in (["playlist-tools", "db", "url"], ["playlist-tools", "db", "status"], ["alembic", "current"]):
        result = run_cli(*argv, env=env)
        assert result.returncode == 0, result.stderr
        assert str(password) not in result.stdout + result.stderr, argv


# -- a raw @ in the password -----------------------------------------------------------------------------------


def test_raw_at_is_read_as_the_end_of_the_password_by_libpq_and_sqlalchemy() -> None:
    """Why parse_url refuses it: both parsers end the userinfo at the FIRST '@'."""
    text = "postgresql://ann:p@ss@db.example.org/music"
    assert conninfo_to_dict(text)["host"] == sa.make_url(text).host == "ss@db.example.org"


@pytest.mark.parametrize("password", ["p@ss", "@zqj", "zqj@", "zq@jx@vk", "zq:j@x"])
def test_raw_at_in_password_is_refused_and_hidden_whole(password: str) -> None:
    text = f"postgresql://ann:{password}@db.example.org/music"
    with pytest.raises(
        DatabaseURLError,
        match="raw '@' after the one that ends its password; percent-encode each '@' in the password as %40",
    ) as caught:
        db.parse_url(text)
    for shown in (everything_shown(caught.value), db.mask_url(text), db.mask_url(sa.make_url(text))):
        assert not any(piece in shown for piece in pieces(password, 3)), shown
    assert "db.example.org/music" in str(caught.value)


# -- URLs nothing can parse --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://ann:a/{SECRET}@db.example.org:port/music",
        f"postgresql://ann:a#{SECRET}@db.example.org:port/music",
        f"postgresql://ann:a?{SECRET}@db.example.org:port/music",
        f"postgresql://ann:{SECRET}@[::1]:port/music",
        f"postgresql://ann:{SECRET}@[::1/music",
        f"postgresql://ann:{SECRET}@h1:5432,h2:5433/music",
        f"postgresql://ann:{SECRET}",
        f"ann:{SECRET}@db.example.org/music",
        f"host=db.example.org password={SECRET} dbname=music",
        f"host=db.example.org password = '{SECRET} x\\'y' dbname=music",
        f"host=db.example.org sslpassword={SECRET}",
        make_conninfo(host="db.example.org", password=f"{SECRET} 'q'"),
    ],
)
def test_unparsable_urls_never_echo_the_password(text: str) -> None:
    with pytest.raises(DatabaseURLError, match="is not a URL") as caught:
        db.parse_url(text)
    shown = everything_shown(caught.value)
    assert not any(piece in shown for piece in pieces(SECRET)), shown
    assert "***" in str(caught.value), caught.value


# -- any password works once percent-encoded --------------------------------------------------------------------


def _psycopg_conninfo(url: str) -> dict[str, object]:
    """What the engine would hand to psycopg.connect, as libpq reads it."""
    engine = db.create_engine(url)
    try:
        args, kwargs = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    kwargs.pop("context", None)  # psycopg's adapters, not a libpq setting
    return conninfo_to_dict(make_conninfo(*args, **kwargs))


@pytest.mark.parametrize("password", HOSTILE)
@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_percent_encoded_password_reaches_psycopg_exactly(password: str, form: str) -> None:
    if form == "userinfo":
        text = f"postgresql://ann:{quote(password, safe='')}@db.example.org/music"
    else:
        text = f"postgresql://ann@db.example.org/music?password={quote_plus(password)}"
    assert db.parse_url(text).password == password
    assert _psycopg_conninfo(text)["password"] == password


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """A private embedded server where role pt_pw must give its password (SCRAM on the Unix socket)."""
    data_dir = tmp_path_factory.mktemp("secrets") / "pgdata"
    url = db.start_embedded(data_dir)
    try:
        hba = data_dir / "pg_hba.conf"  # the first matching line wins: ours, before the wheel's trust lines
        hba.write_text("local all pt_pw scram-sha-256\n" + hba.read_text())
        with db.connection(url) as connection:
            connection.exec_driver_sql("SELECT pg_reload_conf()")
            errors = connection.exec_driver_sql("SELECT error FROM pg_hba_file_rules WHERE error IS NOT NULL").all()
            assert errors == []
            connection.exec_driver_sql("CREATE ROLE pt_pw LOGIN")
            connection.commit()
        yield url
    finally:
        db.stop_embedded(data_dir)


def _set_password(server: URL, password: str) -> None:
    with db.transaction(server) as connection:
        # Utility statements take no bound parameters: psycopg quotes the literal.
        connection.connection.driver_connection.execute(
            sql.SQL("ALTER ROLE pt_pw PASSWORD {}").format(sql.Literal(password))
        )


def _role_url(server: URL, password: str) -> str:
    socket_dir = server.query["host"]
    return f"postgresql://pt_pw:{quote(password, safe='')}@/postgres?host={quote(str(socket_dir), safe='')}"


@pytest.mark.skipif(os.name != "posix", reason="the private server's socket is a Unix socket")
@pytest.mark.parametrize("password", HOSTILE)
def test_hostile_password_logs_in_everywhere(password_server: URL, password: str) -> None:
    _set_password(password_server, password)
    text = _role_url(password_server, password)
    engine = db.create_engine(text)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT current_user").scalar_one() == "pt_pw"
    finally:
        engine.dispose()
    assert frames.read_frame("SELECT current_user AS who", text)["who"].tolist() == ["pt_pw"]
    result = run_cli("playlist-tools", "db", "psql", "-At", "-c", "SELECT current_user", env={"DATABASE_URL": text})
    assert (result.returncode, result.stdout.strip()) == (0, "pt_pw"), result.stderr


@pytest.mark.skipif(os.name != "posix", reason="the private server's socket is a Unix socket")
def test_wrong_password_is_refused_without_showing_it(password_server: URL) -> None:
    _set_password(password_server, "the-right-one")
    engine = db.create_engine(_role_url(password_server, SECRET))
    try:
        with pytest.raises(DatabaseUnavailableError, match="password authentication failed") as caught:
            engine.connect()
    finally:
        engine.dispose()
    assert SECRET not in everything_shown(caught.value)


# -- db.unavailable ---------------------------------------------------------------------------------------


def test_unavailable_scrubs_a_password_the_driver_repeats() -> None:
    text = f"postgresql://ann:{quote(SECRET)}@db.example.org/music"
    message = str(db.unavailable(text, OSError(f'password "{SECRET}" refused\nDETAIL: more')))
    assert SECRET not in message and 'password "***" refused' in message


@pytest.mark.parametrize(("value", "named"), [(None, False), ("", False), ("  ", False), ("postgresql://x/y", True)])
def test_unavailable_names_database_url_only_when_it_is_in_use(
    monkeypatch: pytest.MonkeyPatch, value: str | None, named: bool
) -> None:
    if value is None:
        monkeypatch.delenv(db.DATABASE_URL_ENV, raising=False)
    else:
        monkeypatch.setenv(db.DATABASE_URL_ENV, value)
    message = str(db.unavailable("postgresql://ann@db.example.org/music", OSError("refused")))
    assert (db.DATABASE_URL_ENV in message) is named
    assert "PG" not in message.replace("PostgreSQL", "")  # names no other variable either


# -- the randomized test from the issue --------------------------------------------------------------------


ALPHABET = " '\"\\@/#?%&=+:;,[]{}<>|`~!$^*()\t\n" + "abcXYZ0189" + "äß✓€密"
FORMS: dict[str, Callable[[str], str]] = {
    "userinfo, encoded": lambda pw: f"postgresql://ann:{quote(pw, safe='')}@db.example.org:5432/music",
    "userinfo, raw": lambda pw: f"postgresql://ann:{pw}@db.example.org:5432/music",
    "userinfo, raw, postgres://, IPv6": lambda pw: f"postgres://ann:{pw}@[::1]:5432/music",
    "query, encoded": lambda pw: f"postgresql://ann@db.example.org/music?sslmode=prefer&password={quote_plus(pw)}",
    "query, raw": lambda pw: f"postgresql://ann@db.example.org/music?password={pw}&sslmode=prefer",
    "sslpassword, encoded": lambda pw: f"postgresql://ann:x@db.example.org/music?sslpassword={quote_plus(pw)}",
    "sslpassword, raw": lambda pw: f"postgresql://ann@db.example.org/music?sslpassword={pw}",
    "key=value, quoted": lambda pw: make_conninfo(host="db.example.org", user="ann", password=pw, dbname="music"),
    "key=value, raw": lambda pw: f"host=db.example.org password={pw} dbname=music",
    "unparsable port": lambda pw: f"postgresql://ann:{pw}@db.example.org:port/music",
    "unparsable, no scheme": lambda pw: f"ann:{pw}@db.example.org/music",
}


def _outputs(text: str, echoed: str) -> list[str]:
    """Everything that could show ``text`` to a person."""
    shown = [db.mask_url(text), str(db.unavailable(text, OSError("Connection refused")))]
    try:
        url = db.parse_url(text)
    except DatabaseURLError as err:
        return [*shown, everything_shown(err)]
    engine = db.create_engine(text)
    try:
        shown += [str(url), repr(url), db.mask_url(url), repr(engine), str(engine.url)]
    finally:
        engine.dispose()
    if url.password == echoed or url.query.get("sslpassword") == echoed:  # a driver that repeats it
        shown.append(str(db.unavailable(url, OSError(f'authentication failed for "{echoed}"'))))
    return shown


def test_no_output_contains_any_part_of_a_random_password() -> None:
    rng = random.Random(0)
    # What the outputs hold besides the password: a 4-gram found there is no evidence of a leak.
    background = {
        form: "".join(_outputs(make("x"), "x") + _outputs(make("x@y z"), "x@y z") + [make("")])
        for form, make in FORMS.items()
    }
    leaks = []
    for _ in range(300):
        password = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(6, 16)))
        for form, make in FORMS.items():
            needles = set().union(*(pieces(p) for p in (password, quote(password, safe=""), quote_plus(password))))
            needles = {n for n in needles if n not in background[form]}
            shown = "\n".join(_outputs(make(password), password))
            leaks += [(form, password, n) for n in needles if n in shown]
    assert leaks == [], sorted({(form, password) for form, password, _ in leaks})[:10]
