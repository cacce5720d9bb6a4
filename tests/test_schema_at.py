"""schema.at (the schema at a revision), schema.diff and erd(diff=) (what changed), migrations.history_diagram.

Revisions are replayed into cache databases on the test server; the user's database is only looked at.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pandas as pd
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

# _mermaid: the one diagram type, shared by schema and migrations; the test checks both use it.
from playlist_tools import _mermaid, migrations, schema
from playlist_tools.errors import DatabaseUnavailableError, RevisionError, SchemaError, SettingError
from playlist_tools.workspace import Workspace

from helpers import add_revision, snapshot


def names(frame: pd.DataFrame) -> list[str]:
    return frame["name"].tolist()


def rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    """A diff as plain tuples, NA as None, for exact comparisons."""
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]


def test_at_0001_has_no_description_and_head_has(alembic_config: Config) -> None:
    first, head = schema.at("0001", alembic_config), schema.at("head", alembic_config)
    assert "description" not in names(first.columns("playlists")) and "description" in names(head.columns("playlists"))
    assert "media_type" in names(first.columns("songs")) and "file_format" not in names(first.columns("songs"))
    assert first.ids == ("0001",) and head.ids == tuple(migrations.heads(alembic_config, indicate_current=False)["rev"])
    assert repr(first) == "<schema at 0001: 4 tables (alembic_version, playlist_song_association, playlists, songs)>"
    assert repr(head).startswith(f"<schema at head ({head.ids[0]}): 4 tables (")


def test_at_answers_as_the_live_functions_do(alembic_config: Config, engine: Engine) -> None:
    command.upgrade(alembic_config, "0003")
    replayed = schema.at("0003", alembic_config)
    pd.testing.assert_frame_equal(replayed.tables(), schema.tables(engine))
    pd.testing.assert_frame_equal(replayed.columns("songs"), schema.columns("songs", engine))
    assert replayed.erd() == schema.erd(engine)
    assert str(replayed.erd(exclude=())) == str(schema.erd(engine, exclude=()))


def test_at_does_not_touch_the_users_database(alembic_config: Config, engine: Engine) -> None:
    schema.at("head", alembic_config)
    assert snapshot(engine) == {}  # an empty database stays empty: no alembic_version appears
    command.upgrade(alembic_config, "0002")
    before = snapshot(engine)
    schema.at("0001", alembic_config)
    schema.at("head", alembic_config).erd(since="0001")
    schema.diff("0001", "head", alembic_config)
    schema.erd(diff=("head", "0001"), config=alembic_config)
    assert snapshot(engine) == before
    assert before["alembic_version"][2] == [("0002",)]


def test_at_a_warm_cache_gives_the_same(alembic_config: Config) -> None:
    started = time.perf_counter()
    cold, middle = schema.at("0003", alembic_config), time.perf_counter()
    warm, ended = schema.at("0003", alembic_config), time.perf_counter()
    print(f"\nschema.at('0003'): first call {middle - started:.3f} s, second {ended - middle:.3f} s")  # not asserted
    pd.testing.assert_frame_equal(cold.tables(), warm.tables())
    pd.testing.assert_frame_equal(cold.columns("playlist_song_association"), warm.columns("playlist_song_association"))
    assert cold.erd() == warm.erd() and repr(cold) == repr(warm)
    # What one caller does to a frame it got does not reach the next.
    mine = warm.tables()
    mine.loc[0, "rows"] = -1
    assert schema.at("0003", alembic_config).tables().loc[0, "rows"] == cold.tables().loc[0, "rows"] != -1


def test_at_sees_an_edited_revision_file() -> None:
    with Workspace.open(upto="0002") as ws:
        assert schema.at("0002", ws.config).columns("playlists").set_index("name").loc["description", "type"] == "text"
        path = next(ws.versions.glob("0002_*.py"))
        path.write_text(path.read_text().replace("sa.Text()", "sa.String(length=50)"))
        edited = schema.at("0002", ws.config).columns("playlists").set_index("name")
        assert edited.loc["description", "type"] == "character varying(50)"


def test_at_base_has_no_tables(alembic_config: Config) -> None:
    base = schema.at("base", alembic_config)
    assert base.tables().empty and base.ids == ()
    assert repr(base) == "<schema at base: 0 tables (none)>"
    with pytest.raises(SchemaError, match=r"^no table 'songs' at revision base; tables: none at base$"):
        base.columns("songs")


def test_at_an_unknown_table_names_the_revision_and_the_tables(alembic_config: Config) -> None:
    known = "alembic_version, playlist_song_association, playlists, songs"
    with pytest.raises(SchemaError, match=rf"^no table 'song' at revision 0001; tables: {known}$"):
        schema.at("0001", alembic_config).columns("song")


@pytest.mark.parametrize("bad", ["nope", "", "0003:"])
def test_at_a_bad_revision_is_the_one_line_of_the_migrations_verbs(alembic_config: Config, bad: str) -> None:
    with pytest.raises(RevisionError) as verbs:
        migrations.upgrade(alembic_config, bad)
    with pytest.raises(RevisionError) as ours:
        schema.at(bad, alembic_config)
    assert str(ours.value) == str(verbs.value) and "\n" not in str(ours.value)
    with pytest.raises(RevisionError):
        schema.diff("0001", bad, alembic_config)


def test_diff_of_an_added_column(alembic_config: Config) -> None:
    changes = schema.diff("0001", "0002", alembic_config)
    assert changes.columns.tolist() == schema.CHANGE_COLUMNS
    assert rows(changes) == [("column", "playlists", "description", "added", None, "text")]
    assert all(str(dtype) == "string" for dtype in changes.dtypes)
    assert rows(schema.diff("0002", "0003", alembic_config)) == [  # an identity says how it is generated
        ("column", "playlist_song_association", "position", "added", None,
         "integer NOT NULL GENERATED BY DEFAULT AS IDENTITY"),
    ]


def test_diff_of_0004_is_a_rename(alembic_config: Config) -> None:
    assert rows(schema.diff("0003", "0004", alembic_config)) == [
        ("column", "songs", "file_format", "renamed", "media_type", "file_format"),
    ]
    assert rows(schema.diff("0004", "0003", alembic_config)) == [
        ("column", "songs", "media_type", "renamed", "file_format", "media_type"),
    ]


def test_diff_backwards_is_forwards_mirrored(alembic_config: Config) -> None:
    forwards, backwards = schema.diff("0001", "head", alembic_config), schema.diff("head", "0001", alembic_config)
    mirror = {"added": "dropped", "dropped": "added"}

    def mirrored(row: tuple[object, ...]) -> tuple[object, ...]:
        kind, table, name, change, before, after = row
        # A rename's row is named by its new name; backwards that is the old one.
        return kind, table, before if change == "renamed" else name, mirror.get(str(change), change), after, before

    assert forwards["change"].tolist() == ["added", "added", "renamed", "added"]
    assert sorted(map(mirrored, rows(forwards))) == sorted(rows(backwards))
    assert schema.diff("0002", "0002", alembic_config).empty


CHANGES = """
    op.alter_column("songs", "title", type_=sa.String(300))
    op.alter_column("songs", "composer", nullable=False)
    op.alter_column("songs", "album", server_default="unknown")
    op.create_index("ix_playlists_created_at", "playlists", ["created_at"])
    op.execute("ALTER INDEX ix_playlists_title RENAME TO ix_playlists_by_title")
    op.create_unique_constraint("uq_playlists_title", "playlists", ["title"])
    op.drop_table("playlist_song_association")
    op.create_table("ratings", sa.Column("song_id", sa.Integer(), sa.ForeignKey("songs.song_id"), nullable=False),
                    sa.Column("stars", sa.SmallInteger()))
    op.drop_column("songs", "artist")
    op.drop_column("songs", "genre")
    op.add_column("songs", sa.Column("performer", sa.String(120)))
"""
"""0006 of a scratch history: one of every kind of change, and an ambiguous rename (two varchar(120) -> one)."""


@pytest.fixture(scope="module")
def changed() -> Iterator[Config]:
    with Workspace.open(upto="0005") as ws:
        add_revision(ws.directory / "alembic.ini", "changes", "One of everything", CHANGES)
        yield ws.config


def test_diff_of_every_kind_of_change(changed: Config) -> None:
    found = {(k, t, n, c): (b, a) for k, t, n, c, b, a in rows(schema.diff("0005", "0006", changed))}
    assert found[("column", "songs", "title", "retyped")] == ("character varying(200)", "character varying(300)")
    assert found[("column", "songs", "composer", "nullability")] == ("NULL", "NOT NULL")
    assert found[("column", "songs", "album", "default")] == (None, "'unknown'::character varying")
    assert found[("index", "songs", "ix_songs_artist", "dropped")] == (
        "CREATE INDEX ix_songs_artist ON public.songs USING btree (artist)", None)
    assert found[("index", "playlists", "ix_playlists_created_at", "added")][1].startswith("CREATE INDEX")
    assert found[("index", "playlists", "ix_playlists_by_title", "renamed")] == (
        "ix_playlists_title", "ix_playlists_by_title")
    assert found[("constraint", "playlists", "uq_playlists_title", "added")] == (None, "UNIQUE (title)")
    assert found[("table", "playlist_song_association", "playlist_song_association", "dropped")] == (
        "playlist_id, song_id, position", None)
    assert found[("table", "ratings", "ratings", "added")] == (None, "song_id, stars")
    # Two varchar(120) columns dropped, one added: which was renamed is anybody's guess, so none was.
    assert found[("column", "songs", "artist", "dropped")] == ("character varying(120)", None)
    assert found[("column", "songs", "genre", "dropped")] == ("character varying(120)", None)
    assert found[("column", "songs", "performer", "added")] == (None, "character varying(120)")
    # Nothing of a dropped or added table is listed besides the table itself; its indexes went with it.
    assert not [key for key in found if key[1] in {"ratings", "playlist_song_association"} and key[0] != "table"]
    assert ("index", "songs", "ix_songs_genre", "dropped") in found


def test_diff_is_ordered_by_table_kind_and_name(changed: Config) -> None:
    changes = schema.diff("0005", "0006", changed)
    kinds = {"table": 0, "column": 1, "index": 2, "constraint": 3}
    keys = [(r.table, kinds[r.kind], r.name, r.change) for r in changes.itertuples()]
    assert keys == sorted(keys) and len(changes) == len(set(keys))
    pd.testing.assert_frame_equal(changes, schema.diff("0005", "0006", changed))


def test_diff_of_a_renamed_table_is_one_row() -> None:
    with Workspace.open(upto="0005") as ws:
        add_revision(ws.directory / "alembic.ini", "tracks", "Songs are tracks", 'op.rename_table("songs", "tracks")')
        # Its key, index and the foreign key pointing at it all follow the rename: none of them changed.
        assert rows(schema.diff("0005", "0006", ws.config)) == [
            ("table", "tracks", "tracks", "renamed", "songs", "tracks"),
        ]
        diagram = str(schema.erd(diff=("0005", "0006"), config=ws.config))
        assert '    tracks["tracks (renamed from songs)"]:::changed {' in diagram
        assert '    tracks ||--o{ playlist_song_association : "song_id"' in diagram


def test_erd_of_a_diff_marks_added_and_renamed_columns(alembic_config: Config) -> None:
    text = str(diagram := schema.erd(diff=("0001", "head"), config=alembic_config))
    assert text == str(schema.at("head", alembic_config).erd(since="0001"))
    assert '    playlists["playlists (changed)"]:::changed {\n' in text
    assert '        text description "added"\n' in text
    assert '        varchar(120) file_format "renamed from media_type"\n' in text
    assert '        varchar(120) genre "index ix_songs_genre added"\n' in text
    assert '        numeric unit_price "numeric(10,2)"\n' in text  # an unchanged column as the live erd draws it
    assert "    classDef added " in text and "    classDef dropped " in text and "    classDef changed " in text
    assert "media_type" not in text.replace("renamed from media_type", "")
    assert diagram._repr_markdown_() == f"```mermaid\n{text}\n```"


def test_erd_of_a_diff_backwards_still_draws_what_is_dropped(alembic_config: Config) -> None:
    text = str(schema.at("0001", alembic_config).erd(since=schema.at("head", alembic_config)))
    playlists = text.split('    playlists["playlists (changed)"]:::changed {\n')[1].split("    }")[0]
    # The dropped column is still there, marked, after the columns that are.
    assert playlists.splitlines()[-1] == '        text description "dropped"'
    assert '        integer position "dropped"\n' in text
    assert '        varchar(120) media_type "renamed from file_format"\n' in text


def test_erd_of_a_diff_draws_dropped_and_added_tables_and_links(changed: Config) -> None:
    text = str(schema.erd(diff=("0005", "0006"), config=changed))
    assert '    playlist_song_association["playlist_song_association (dropped)"]:::dropped {\n' in text
    assert "        integer playlist_id PK, FK\n" in text
    assert '    playlists ||--o{ playlist_song_association : "playlist_id (dropped)"' in text
    assert '    ratings["ratings (added)"]:::added {\n        integer song_id FK\n        smallint stars\n    }' in text
    assert '    songs ||--o{ ratings : "song_id (added)"' in text
    assert '        varchar(120) performer "added"\n' in text
    assert '        varchar(300) title "type was character varying(200)"\n' in text
    assert "        varchar(220) composer \"was nullable\"\n" in text
    assert '        varchar(120) artist "dropped; index ix_songs_artist dropped"\n' in text
    assert ('        varchar(120) title "index ix_playlists_title renamed to ix_playlists_by_title; '
            'constraint uq_playlists_title added"\n') in text


def test_erd_refuses_a_database_and_a_diff_together(alembic_config: Config, engine: Engine) -> None:
    with pytest.raises(SettingError, match=r"^erd\(\) draws either a database \(con\) or the change"):
        schema.erd(engine, diff=("0001", "head"))
    with pytest.raises(SettingError, match=r"^diff=\('0001',\) is not two revisions; pass diff=\(a, b\)"):
        schema.erd(diff=("0001",), config=alembic_config)


def test_history_diagram_of_the_repo() -> None:
    listing = migrations.history(indicate_current=False)
    text = str(migrations.history_diagram())
    lines = text.splitlines()
    assert lines[:2] == ["flowchart TB", '    r_0001["0001: Initial migration"]']
    assert '    r_0002["0002: Added description to Playlist"]' in lines
    assert [line for line in lines if "-->" in line] == [
        f"    r_{down} --> r_{rev}"
        for rev, down in zip(listing["rev"], listing["down_rev"], strict=True) if down != "base"
    ]
    heads = [line for line in lines if line.endswith(":::head")]
    last = listing.iloc[-1]
    assert heads == [f'    r_{last["rev"]}["{last["rev"]}: {last["message"]} (head)"]:::head']
    assert "current" not in text and str(migrations.history_diagram()) == text
    assert schema.MermaidDiagram is _mermaid.MermaidDiagram  # one type for every diagram
    assert isinstance(migrations.history_diagram(), schema.MermaidDiagram)


def test_history_diagram_of_branches_and_a_merge() -> None:
    with Workspace.open(upto="0005") as ws:
        migrations.revision(ws.config, 'a "quoted" branch', autogenerate=False)
        migrations.revision(ws.config, "b", autogenerate=False, head="0005", splice=True)
        branched = str(migrations.history_diagram(ws.config))
        assert "    r_0005 --> r_0006\n    r_0005 --> r_0007\n" in branched
        assert '    r_0006["0006: a #quot;quoted#quot; branch (head)"]:::head' in branched
        assert '    r_0007["0007: b (head)"]:::head' in branched
        migrations.merge(ws.config, "heads", "join a and b")
        merged = str(migrations.history_diagram(ws.config))
        assert "    r_0006 --> r_0008\n    r_0007 --> r_0008\n" in merged
        assert '    r_0008["0008: join a and b (head)"]:::head' in merged
        assert merged.count(":::head") == 1
        migrations.upgrade(ws.config, "0007")
        marked = str(migrations.history_diagram(ws.config, current=True))
        assert '    r_0007["0007: b (current)"]:::current' in marked
        assert "    classDef current " in marked and "    classDef current " not in merged


def test_history_diagram_current_needs_the_database() -> None:
    cfg = migrations.config("postgresql://nobody@127.0.0.1:1/none")
    assert str(migrations.history_diagram(cfg)) == str(migrations.history_diagram())  # pure history: no database
    with pytest.raises(DatabaseUnavailableError) as caught:
        migrations.history_diagram(cfg, current=True)
    assert "\n" not in str(caught.value)
