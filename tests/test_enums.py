"""PostgreSQL enums both ways: create, add a value (in place), rename, remove (refused when held), drop.

Each case edits a workspace's models, autogenerates, reads the revision,
and runs it up, down and up again on a real server, reading ``pg_enum``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from playlist_tools import migrations
from playlist_tools.errors import DataLossError
from playlist_tools.workspace import Workspace

COMPOSER = "composer: Mapped[Optional[str]] = mapped_column(String(220))"


def mood(*values: str) -> str:
    listed = ", ".join(repr(v) for v in values)
    return COMPOSER + f"\n    mood: Mapped[Optional[str]] = mapped_column(sa.Enum({listed}, name='mood'))"


@pytest.fixture
def ws() -> Iterator[Workspace]:
    with Workspace.open() as ws:
        migrations.upgrade(ws.config)
        text = ws.models.read_text().replace("import decimal", "import decimal\nimport sqlalchemy as sa", 1)
        ws.models.write_text(text)
        with ws.engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO songs (title) VALUES ('One'), ('Two')"))
        yield ws


def set_mood(ws: Workspace, *values: str, previous: str = COMPOSER) -> None:
    text = ws.models.read_text()
    assert previous in text
    ws.models.write_text(text.replace(previous, mood(*values) if values else COMPOSER, 1))


def labels(ws: Workspace) -> list[str] | None:
    with ws.engine.connect() as connection:
        found = connection.execute(sa.text(
            "SELECT array_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = to_regtype('mood')"
        )).scalar()
    return None if found is None else list(found)


def revise(ws: Workspace, message: str) -> str:
    return Path(migrations.revision(ws.config, message).path).read_text()


def both_ways(ws: Workspace, after: list[str] | None, before: list[str] | None) -> None:
    migrations.upgrade(ws.config)
    assert labels(ws) == after
    assert migrations.check(ws.config).empty  # no drift left
    migrations.downgrade(ws.config, "-1")
    assert labels(ws) == before
    migrations.upgrade(ws.config)
    assert labels(ws) == after


def test_an_enum_column_creates_its_type_and_its_way_back_drops_it(ws: Workspace) -> None:
    set_mood(ws, "happy", "sad")
    drift = migrations.check(ws.config)
    assert "create_enum" in set(drift["op"]), drift.to_string()
    source = revise(ws, "Added mood")
    upgrade, downgrade = source.split("def downgrade")
    assert upgrade.index("CREATE TYPE mood AS ENUM ('happy', 'sad')") < upgrade.index("op.add_column")
    assert "postgresql.ENUM('happy', 'sad', name='mood', create_type=False)" in upgrade
    assert downgrade.index("op.drop_column") < downgrade.index("DROP TYPE mood")
    both_ways(ws, ["happy", "sad"], None)


def test_a_new_value_is_added_in_place_outside_the_transaction(ws: Workspace) -> None:
    set_mood(ws, "happy", "sad")
    revise(ws, "Added mood")
    migrations.upgrade(ws.config)
    set_mood(ws, "happy", "calm", "sad", previous=mood("happy", "sad"))
    assert "add_enum_value" in set(migrations.check(ws.config)["op"])
    source = revise(ws, "Calm")
    assert "safe.add_enum_value('mood', 'calm', after='happy')" in source
    assert "op.alter_column" not in source
    assert "ADD VALUE IF NOT EXISTS 'calm' AFTER 'happy'" in migrations.sql(ws.config, "0006:0007")
    both_ways(ws, ["happy", "calm", "sad"], ["happy", "sad"])


def test_a_value_first_in_the_list_goes_before(ws: Workspace) -> None:
    set_mood(ws, "happy", "sad")
    revise(ws, "Added mood")
    migrations.upgrade(ws.config)
    set_mood(ws, "ecstatic", "happy", "sad", previous=mood("happy", "sad"))
    assert "safe.add_enum_value('mood', 'ecstatic', before='happy')" in revise(ws, "Ecstatic")
    both_ways(ws, ["ecstatic", "happy", "sad"], ["happy", "sad"])


def test_a_value_replaced_in_place_is_a_rename_and_rows_keep_it(ws: Workspace) -> None:
    set_mood(ws, "happy", "sad")
    revise(ws, "Added mood")
    migrations.upgrade(ws.config)
    with ws.engine.begin() as connection:
        connection.execute(sa.text("UPDATE songs SET mood = 'sad'"))
    set_mood(ws, "happy", "blue", previous=mood("happy", "sad"))
    source = revise(ws, "Blue")
    assert "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'" in source
    assert "ALTER TYPE mood RENAME VALUE 'blue' TO 'sad'" in source
    both_ways(ws, ["happy", "blue"], ["happy", "sad"])
    with ws.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT DISTINCT mood::text FROM songs")).scalars().all() == ["blue"]


def test_removing_a_value_swaps_the_type_and_is_refused_while_rows_hold_it(ws: Workspace) -> None:
    set_mood(ws, "happy", "calm", "sad")
    revise(ws, "Added mood")
    migrations.upgrade(ws.config)
    with ws.engine.begin() as connection:
        connection.execute(sa.text("UPDATE songs SET mood = 'calm' WHERE title = 'One'"))
    set_mood(ws, "happy", "sad", previous=mood("happy", "calm", "sad"))
    source = revise(ws, "No more calm")
    assert "safe.swap_enum('mood', ['happy', 'sad'], columns=[['songs', 'mood']])" in source
    assert "safe.add_enum_value('mood', 'calm', after='happy')" in source  # the way back
    with pytest.raises(DataLossError) as caught:
        migrations.upgrade(ws.config)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("songs.mood: 1 hold 'calm', which this migration removes from type mood")
    assert labels(ws) == ["happy", "calm", "sad"]  # nothing half done
    with ws.engine.begin() as connection:
        connection.execute(sa.text("UPDATE songs SET mood = 'happy' WHERE mood = 'calm'"))
    both_ways(ws, ["happy", "sad"], ["happy", "calm", "sad"])


def test_the_type_goes_with_its_last_column_and_comes_back_with_it(ws: Workspace) -> None:
    set_mood(ws, "happy", "sad")
    revise(ws, "Added mood")
    migrations.upgrade(ws.config)
    set_mood(ws, previous=mood("happy", "sad"))
    source = revise(ws, "Dropped mood")
    upgrade, downgrade = source.split("def downgrade")
    assert upgrade.index("op.drop_column('songs', 'mood')") < upgrade.index("DROP TYPE mood")
    assert downgrade.index("CREATE TYPE mood AS ENUM ('happy', 'sad')") < downgrade.index("op.add_column")
    both_ways(ws, None, ["happy", "sad"])


def test_an_analysts_own_type_is_left_alone(ws: Workspace) -> None:
    with ws.engine.begin() as connection:
        connection.execute(sa.text("CREATE TYPE colour AS ENUM ('red', 'green')"))
        connection.execute(sa.text("CREATE TABLE my_notes (c colour)"))
    assert migrations.check(ws.config).empty
