"""The committed migration history against a real PostgreSQL."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Engine

from helpers import REPO_ROOT, table_rows


def revisions(config: Config) -> list[str]:
    """Revision ids from base to head."""
    script = ScriptDirectory.from_config(config)
    return [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]


HISTORY = revisions(Config(str(REPO_ROOT / "alembic.ini")))


def version(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def columns(engine: Engine, table: str) -> list[str]:
    return [column["name"] for column in sa.inspect(engine).get_columns(table)]


def test_single_head(alembic_config) -> None:
    script = ScriptDirectory.from_config(alembic_config)
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}; merge them"


def test_revision_ids_are_readable_and_sequential(alembic_config) -> None:
    ids = revisions(alembic_config)
    assert ids[:2] == ["0001", "0002"]
    assert ids == [f"{n:04d}" for n in range(1, len(ids) + 1)]


def test_upgrade_head_matches_models(alembic_config, engine: Engine) -> None:
    command.upgrade(alembic_config, "head")
    assert version(engine) == {revisions(alembic_config)[-1]}
    # `alembic check` raises when autogenerate would write anything.
    command.check(alembic_config)


def test_check_notices_drift(alembic_config, engine: Engine) -> None:
    """The check above could fail: a schema that differs from the models is drift."""
    command.upgrade(alembic_config, "head")
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE playlists DROP COLUMN description"))
    with pytest.raises(CommandError, match="New upgrade operations detected"):
        command.check(alembic_config)


def schema(engine: Engine) -> dict[str, list[str]]:
    inspector = sa.inspect(engine)
    return {
        table: columns(engine, table) + sorted(ix["name"] for ix in inspector.get_indexes(table))
        for table in sorted(inspector.get_table_names())
    }


@pytest.mark.parametrize("target", HISTORY)
def test_each_revision_up_down_up(alembic_config, engine: Engine, target: str) -> None:
    """Upgrade to a revision, step back once, and upgrade again: same schema each time."""
    down_revisions = ScriptDirectory.from_config(alembic_config).get_revision(target)._all_down_revisions
    for parent in down_revisions:
        command.upgrade(alembic_config, parent)
    before = schema(engine) if down_revisions else {}
    command.upgrade(alembic_config, target)
    after = schema(engine)
    assert after != before, f"{target} changed nothing"
    command.downgrade(alembic_config, "-1")
    assert version(engine) == set(down_revisions)
    assert {t: c for t, c in schema(engine).items() if t != "alembic_version"} == {
        t: c for t, c in before.items() if t != "alembic_version"
    }
    command.upgrade(alembic_config, target)
    assert version(engine) == {target}
    assert schema(engine) == after


def test_downgrade_0002_drops_only_description(alembic_config, engine: Engine) -> None:
    command.upgrade(alembic_config, "0002")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO songs (song_id, title, artist) VALUES "
                "(1, 'Balls to the Wall', 'Accept'), (2, 'Fast As a Shark', 'Accept')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO playlists (playlist_id, title, description) VALUES "
                "(1, 'Music', 'everything'), (2, '90’s Music', NULL)"
            )
        )
        connection.execute(
            sa.text("INSERT INTO playlist_song_association VALUES (1, 1), (1, 2), (2, 2)")
        )
    songs = table_rows(engine, "songs")
    links = table_rows(engine, "playlist_song_association")
    with engine.connect() as connection:
        playlists = connection.execute(
            sa.text("SELECT playlist_id, title, created_at FROM playlists ORDER BY 1")
        ).all()

    alembic_config.attributes["allow_data_loss"] = True  # the description is lost on purpose
    command.downgrade(alembic_config, "0001")

    assert "description" not in columns(engine, "playlists")
    assert table_rows(engine, "songs") == songs
    assert table_rows(engine, "playlist_song_association") == links
    with engine.connect() as connection:
        assert connection.execute(
            sa.text("SELECT playlist_id, title, created_at FROM playlists ORDER BY 1")
        ).all() == playlists


def test_0003_numbers_entries_and_down_up_restores_them(alembic_config, engine: Engine) -> None:
    command.upgrade(alembic_config, "0002")
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO songs (song_id, title) VALUES (10, 'a'), (20, 'b'), (30, 'c')"))
        connection.execute(sa.text("INSERT INTO playlists (playlist_id, title) VALUES (1, 'one'), (2, 'two')"))
        connection.execute(sa.text("INSERT INTO playlist_song_association VALUES (1, 30), (1, 10), (2, 20), (1, 20)"))
    command.upgrade(alembic_config, "0003")
    numbered = table_rows(engine, "playlist_song_association")
    assert numbered == [(1, 10, 1), (1, 20, 2), (1, 30, 3), (2, 20, 1)]
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO playlist_song_association (playlist_id, song_id) VALUES (2, 30)"))
        appended = connection.execute(
            sa.text("SELECT position FROM playlist_song_association WHERE playlist_id = 2 AND song_id = 30")
        ).scalar_one()
    assert appended > 3, "a new entry must go after the backfilled ones"
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM playlist_song_association WHERE song_id = 30 AND playlist_id = 2"))
    command.downgrade(alembic_config, "0002")
    assert table_rows(engine, "playlist_song_association") == [(1, 10), (1, 20), (1, 30), (2, 20)]
    command.upgrade(alembic_config, "0003")
    assert table_rows(engine, "playlist_song_association") == numbered


def test_0004_rename_keeps_values(alembic_config, engine: Engine) -> None:
    command.upgrade(alembic_config, "0003")
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO songs (song_id, title, media_type) VALUES (1, 'a', 'MPEG audio file')"))
    command.upgrade(alembic_config, "0004")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT file_format FROM songs")).scalar_one() == "MPEG audio file"
    command.downgrade(alembic_config, "0003")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT media_type FROM songs")).scalar_one() == "MPEG audio file"


def test_autogenerate_leaves_unknown_tables_alone(alembic_config, engine: Engine) -> None:
    command.upgrade(alembic_config, "head")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE analyst_scratch (x int)"))
    command.check(alembic_config)  # would fail if it wanted to drop analyst_scratch


def test_unknown_revision_is_one_clear_line(alembic_config) -> None:
    with pytest.raises(CommandError) as caught:
        command.upgrade(alembic_config, "nope")
    message = str(caught.value)
    assert "'nope'" in message and "alembic history" in message
    assert "\n" not in message


def test_offline_sql_needs_no_server(monkeypatch, alembic_config) -> None:
    config = Config(alembic_config.config_file_name)
    config.attributes["skip_logging_config"] = True
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:1/none")
    buffer = io.StringIO()
    config.output_buffer = buffer
    command.upgrade(config, "head", sql=True)
    sql = buffer.getvalue()
    assert "CREATE TABLE playlists" in sql
    assert "ALTER TABLE playlists ADD COLUMN description TEXT" in sql
