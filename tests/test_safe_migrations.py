"""Autogenerate writes the lock-safe form of each risky operation, both ways, and each form works.

Each case edits a workspace's models, autogenerates a revision, reads what
it wrote, then upgrades, downgrades and upgrades again on a real server,
checking the catalog each time. A held lock (another session) shows the
retries; a failed concurrent build shows the rerun.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from playlist_tools import migrations
from playlist_tools.errors import LockTimeoutError, MigrationError
from playlist_tools.migrations import safe
from playlist_tools.workspace import Workspace

from helpers import REPO_ROOT

COMPOSER = "composer: Mapped[Optional[str]] = mapped_column(String(220))"


@pytest.fixture
def ws() -> Iterator[Workspace]:
    """A workspace at head, upgraded, with two songs in it."""
    with Workspace.open() as ws:
        migrations.upgrade(ws.config)
        with ws.engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO songs (title, album, composer) VALUES ('One', 'A', 'X'), ('Two', 'B', 'Y')"
            ))
        yield ws


def edit_models(ws: Workspace, old: str, new: str) -> None:
    text = ws.models.read_text()
    assert old in text, old
    ws.models.write_text(text.replace(old, new, 1))


def written(ws: Workspace, message: str = "Change", **options: object) -> str:
    script = migrations.revision(ws.config, message, **options)  # type: ignore[arg-type]
    return Path(script.path).read_text()


def scalar(ws: Workspace, sql: str) -> object:
    with ws.engine.connect() as connection:
        return connection.execute(sa.text(sql)).scalar()


def index_valid(ws: Workspace, name: str) -> object:
    return scalar(ws, f"SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('{name}')")


def constraint(ws: Workspace, name: str) -> tuple[object, object] | None:
    with ws.engine.connect() as connection:
        row = connection.execute(sa.text(
            "SELECT contype, convalidated FROM pg_constraint WHERE conname = :name"
        ), {"name": name}).first()
    return None if row is None else (row[0], row[1])


def round_trip(ws: Workspace, check_up: object, check_down: object) -> None:
    """Upgrade, check; downgrade, check; upgrade again, check: the safe form works both ways and reruns."""
    migrations.upgrade(ws.config)
    check_up()  # type: ignore[operator]
    migrations.downgrade(ws.config, "-1")
    check_down()  # type: ignore[operator]
    migrations.upgrade(ws.config)
    check_up()  # type: ignore[operator]


def test_index_is_built_and_dropped_concurrently(ws: Workspace) -> None:
    edit_models(ws, COMPOSER, "composer: Mapped[Optional[str]] = mapped_column(String(220), index=True)")
    source = written(ws)
    assert "from playlist_tools.migrations import safe" in source
    assert "# lock-safe: built CONCURRENTLY" in source
    assert "safe.create_index(op.f('ix_songs_composer'), 'songs', ['composer'], unique=False)" in source
    assert "safe.drop_index(op.f('ix_songs_composer'), table_name='songs')" in source
    assert "op.create_index" not in source
    sql = migrations.sql(ws.config, "0005:0006")
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_songs_composer ON songs (composer)" in sql
    round_trip(ws, lambda: index_valid(ws, "ix_songs_composer") is True,
               lambda: index_valid(ws, "ix_songs_composer") is None)
    assert index_valid(ws, "ix_songs_composer") is True


def test_safe_false_writes_alembics_plain_forms(ws: Workspace) -> None:
    edit_models(ws, COMPOSER, "composer: Mapped[Optional[str]] = mapped_column(String(220), index=True)")
    source = written(ws, safe=False)
    assert "op.create_index(op.f('ix_songs_composer'), 'songs', ['composer'], unique=False)" in source
    assert "safe." not in source and "lock-safe" not in source


def test_safe_false_on_the_command_line(ws: Workspace) -> None:
    edit_models(ws, COMPOSER, "composer: Mapped[Optional[str]] = mapped_column(String(220), index=True)")
    env = {"DATABASE_URL": ws.url.render_as_string(hide_password=False), "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "alembic"), "-c", str(ws.directory / "alembic.ini"), "-x", "safe=false",
         "revision", "--autogenerate", "-m", "plain"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    source = next(ws.versions.glob("0006_*.py")).read_text()
    assert "op.create_index(op.f('ix_songs_composer')" in source
    next(ws.versions.glob("0006_*.py")).unlink()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "alembic"), "-c", str(ws.directory / "alembic.ini"), "-x", "safe=maybe",
         "revision", "--autogenerate", "-m", "bad"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert done.returncode != 0
    assert "safe='maybe' is neither true nor false" in done.stderr
    assert "Traceback" not in done.stderr


def test_foreign_key_is_added_not_valid_then_validated(ws: Workspace) -> None:
    edit_models(ws, COMPOSER, COMPOSER + "\n    best_of_id: Mapped[Optional[int]] = mapped_column("
                "ForeignKey('playlists.playlist_id'))")
    source = written(ws)
    assert "op.add_column('songs', sa.Column('best_of_id'" in source
    assert "safe.create_foreign_key(op.f('fk_songs_best_of_id_playlists'), 'songs', 'playlists', " \
           "['best_of_id'], ['playlist_id'])" in source
    assert "safe.drop_constraint(op.f('fk_songs_best_of_id_playlists'), 'songs', type_='foreignkey')" in source
    sql = migrations.sql(ws.config, "0005:0006")
    assert "FOREIGN KEY(best_of_id) REFERENCES playlists (playlist_id) NOT VALID" in sql
    assert "ALTER TABLE songs VALIDATE CONSTRAINT fk_songs_best_of_id_playlists" in sql
    round_trip(ws, lambda: constraint(ws, "fk_songs_best_of_id_playlists") == ("f", True),
               lambda: constraint(ws, "fk_songs_best_of_id_playlists") is None)
    assert constraint(ws, "fk_songs_best_of_id_playlists") == ("f", True)


def test_not_null_goes_through_a_validated_check(ws: Workspace) -> None:
    edit_models(ws, COMPOSER, "composer: Mapped[str] = mapped_column(String(220))")
    source = written(ws)
    assert "safe.set_not_null('songs', 'composer')" in source
    assert "nullable=True)" in source.split("def downgrade")[1]  # the way back: Alembic's DROP NOT NULL
    sql = migrations.sql(ws.config, "0005:0006")
    assert "ADD CONSTRAINT ck_songs_composer_not_null CHECK (composer IS NOT NULL) NOT VALID" in sql
    assert "VALIDATE CONSTRAINT ck_songs_composer_not_null" in sql
    assert "ALTER TABLE songs ALTER COLUMN composer SET NOT NULL" in sql
    assert "DROP CONSTRAINT IF EXISTS ck_songs_composer_not_null" in sql

    def not_null() -> object:
        return scalar(ws, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'songs'::regclass "
                          "AND attname = 'composer'")

    round_trip(ws, lambda: not_null() is True and constraint(ws, "ck_songs_composer_not_null") is None,
               lambda: not_null() is False)
    assert not_null() is True
    assert constraint(ws, "ck_songs_composer_not_null") is None


def test_not_null_on_a_null_row_fails_and_reruns_once_fixed(ws: Workspace) -> None:
    edit_models(ws, COMPOSER, "composer: Mapped[str] = mapped_column(String(220))")
    written(ws)
    with ws.engine.begin() as connection:
        connection.execute(sa.text("UPDATE songs SET composer = NULL WHERE title = 'Two'"))
    with pytest.raises(MigrationError, match="ck_songs_composer_not_null"):
        migrations.upgrade(ws.config)
    assert constraint(ws, "ck_songs_composer_not_null") == ("c", False)  # left NOT VALID: the rerun validates it
    with ws.engine.begin() as connection:
        connection.execute(sa.text("UPDATE songs SET composer = 'Z' WHERE composer IS NULL"))
    migrations.upgrade(ws.config)
    assert constraint(ws, "ck_songs_composer_not_null") is None
    assert migrations.current(ws.config)["rev"].tolist() == ["0006"]


def test_unique_constraint_uses_a_concurrently_built_index(ws: Workspace) -> None:
    edit_models(ws, "album: Mapped[Optional[str]] = mapped_column(String(160))",
                "album: Mapped[Optional[str]] = mapped_column(String(160), unique=True)")
    source = written(ws)
    assert "safe.create_unique_constraint(op.f('uq_songs_album'), 'songs', ['album'])" in source
    sql = migrations.sql(ws.config, "0005:0006")
    assert "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_songs_album ON songs (album)" in sql
    assert "ALTER TABLE songs ADD CONSTRAINT uq_songs_album UNIQUE USING INDEX uq_songs_album" in sql
    round_trip(ws, lambda: constraint(ws, "uq_songs_album") == ("u", True),
               lambda: constraint(ws, "uq_songs_album") is None and index_valid(ws, "uq_songs_album") is None)


def test_a_failed_concurrent_build_reruns_cleanly(ws: Workspace) -> None:
    edit_models(ws, "album: Mapped[Optional[str]] = mapped_column(String(160))",
                "album: Mapped[Optional[str]] = mapped_column(String(160), unique=True)")
    written(ws)
    with ws.engine.begin() as connection:
        connection.execute(sa.text("UPDATE songs SET album = 'A'"))  # a duplicate: the unique build fails
    with pytest.raises(MigrationError, match="uq_songs_album"):
        migrations.upgrade(ws.config)
    assert index_valid(ws, "uq_songs_album") is False  # what CONCURRENTLY leaves behind
    with ws.engine.begin() as connection:
        connection.execute(sa.text("UPDATE songs SET album = title"))
    migrations.upgrade(ws.config)  # without the clean-up, IF NOT EXISTS would keep the invalid index
    assert index_valid(ws, "uq_songs_album") is True
    assert constraint(ws, "uq_songs_album") == ("u", True)


def test_operations_on_a_new_table_stay_plain(ws: Workspace) -> None:
    ws.models.write_text(ws.models.read_text() + (
        "\n\nclass Mood(Base):\n    __tablename__ = 'moods'\n"
        "    mood_id: Mapped[int] = mapped_column(Integer, primary_key=True)\n"
        "    name: Mapped[str] = mapped_column(String(40), index=True)\n"
    ))
    source = written(ws)
    assert "op.create_index(op.f('ix_moods_name'), 'moods', ['name'], unique=False)" in source
    assert "safe." not in source


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        ("title: Mapped[str] = mapped_column(String(200))", "title: Mapped[int] = mapped_column(Integer)",
         "songs.title changes type from VARCHAR(200) to INTEGER"),
        (COMPOSER, COMPOSER + "\n    shuffle: Mapped[Optional[float]] = "
                              "mapped_column(server_default=sa.text('random()'))",
         "songs.shuffle is added with a volatile default (random())"),
        (COMPOSER, COMPOSER + "\n    serial: Mapped[int] = mapped_column(sa.Identity())",
         "songs.serial is added as an identity column"),
        (COMPOSER, COMPOSER + "\n    title_length: Mapped[Optional[int]] = "
                              "mapped_column(sa.Computed('length(title)', persisted=True))",
         "songs.title_length is added as a generated column"),
    ],
)
def test_a_table_rewrite_is_refused_with_the_expand_contract_steps(
    ws: Workspace, old: str, new: str, what: str
) -> None:
    if "sa." in new:
        edit_models(ws, "import decimal", "import decimal\nimport sqlalchemy as sa")
    edit_models(ws, old, new)
    with pytest.raises(MigrationError) as caught:
        migrations.revision(ws.config, "Rewrite")
    message = str(caught.value)
    assert "\n" not in message
    assert what in message
    assert "add a new column, backfill it in batches, switch reads and writes to it, drop the old one" in message
    assert "-x safe=false" in message
    assert not list(ws.versions.glob("0006_*.py"))  # nothing written
    assert not migrations.check(ws.config).empty  # check still sees the drift
    plain = written(ws, safe=False)
    assert "op.alter_column" in plain or "op.add_column" in plain


def test_a_longer_varchar_is_not_a_rewrite(ws: Workspace) -> None:
    edit_models(ws, "title: Mapped[str] = mapped_column(String(200))",
                "title: Mapped[str] = mapped_column(String(300))")
    source = written(ws)
    assert "op.alter_column('songs', 'title'" in source.split("def downgrade")[0]
    assert "# not lock-safe: this type change rewrites the table" in source.split("def downgrade")[1]


class _Retried(logging.Handler):
    """Sets ``event`` when a safe step logs that its lock was not granted."""

    def __init__(self) -> None:
        super().__init__()
        self.event = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if "lock not granted" in record.getMessage():
            self.event.set()


def _hold_lock(ws: Workspace, released: threading.Event | None, held: threading.Event) -> None:
    with ws.engine.connect() as connection, connection.begin():
        connection.execute(sa.text("LOCK TABLE songs IN SHARE MODE"))  # conflicts with every index build
        held.set()
        if released is not None:
            released.wait(30)


def test_a_held_lock_is_retried_until_granted(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(safe.LOCK_TIMEOUT_ENV, "50ms")
    monkeypatch.setenv(safe.ATTEMPTS_ENV, "20")
    edit_models(ws, COMPOSER, "composer: Mapped[Optional[str]] = mapped_column(String(220), index=True)")
    written(ws)
    retried, held = _Retried(), threading.Event()
    logger = logging.getLogger("alembic.runtime.migration")
    logger.addHandler(retried)
    monkeypatch.setattr(logger, "level", logging.INFO)
    holder = threading.Thread(target=_hold_lock, args=(ws, retried.event, held))
    holder.start()
    try:
        held.wait(30)
        migrations.upgrade(ws.config)  # blocked at first; the holder lets go after the first retry
    finally:
        retried.event.set()
        holder.join()
        logger.removeHandler(retried)
    assert any("lock not granted (try 1 of 20)" in message for message in retried.messages)
    assert index_valid(ws, "ix_songs_composer") is True


def test_a_lock_never_granted_gives_one_line(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(safe.LOCK_TIMEOUT_ENV, "20ms")
    monkeypatch.setenv(safe.ATTEMPTS_ENV, "2")
    edit_models(ws, COMPOSER, "composer: Mapped[Optional[str]] = mapped_column(String(220), index=True)")
    written(ws)
    release, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(ws, release, held))
    holder.start()
    try:
        held.wait(30)
        with pytest.raises(LockTimeoutError) as caught:
            migrations.upgrade(ws.config)
    finally:
        release.set()
        holder.join()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("CREATE INDEX CONCURRENTLY ix_songs_composer ON songs: lock not granted in 2 tries")
    assert "run the migration again" in message
    assert migrations.current(ws.config)["rev"].tolist() == ["0005"]
    migrations.upgrade(ws.config)  # the lock is free now: the rerun finishes the job
    assert index_valid(ws, "ix_songs_composer") is True


SAFETY_RULES = [
    "require-concurrent-index-creation", "adding-not-nullable-field", "constraint-missing-not-valid",
    "adding-foreign-key-constraint", "disallowed-unique-constraint",
]


def strict_squawk(tmp_path: Path) -> Path:
    """The repo's ``.squawk.toml`` with the five safety rules switched back on."""
    text = (REPO_ROOT / ".squawk.toml").read_text()
    for rule in SAFETY_RULES:
        text = text.replace(f'    "{rule}",\n', "")
    path = tmp_path / "strict.toml"
    path.write_text(text)
    return path


def test_generated_revisions_pass_squawk_with_the_safety_rules_on(ws: Workspace, tmp_path: Path) -> None:
    edit_models(ws, COMPOSER, "composer: Mapped[str] = mapped_column(String(220), index=True)\n"
                "    best_of_id: Mapped[Optional[int]] = mapped_column(ForeignKey('playlists.playlist_id'))")
    edit_models(ws, "album: Mapped[Optional[str]] = mapped_column(String(160))",
                "album: Mapped[Optional[str]] = mapped_column(String(160), unique=True)")
    written(ws, "Everything at once")
    strict = strict_squawk(tmp_path)
    findings = migrations.lint(ws.config, "0006", squawk_config=strict)
    assert findings.empty, findings.to_string()
    # the way down too: it drops what the upgrade added (ban-drop-* say so), but nothing it does is unsafe
    down = migrations.sql(ws.config, "0006:0005", downgrade=True)
    assert "DROP INDEX CONCURRENTLY IF EXISTS ix_songs_composer" in down
    assert not set(SAFETY_RULES) & set(migrations.lint(ws.config, down, squawk_config=strict)["rule"])
    assert migrations.lint(ws.config, "0006").empty  # lint() holds a new revision to those rules by itself
    # and the same rules do catch Alembic's plain forms, so the check can fail
    (ws.versions / next(ws.versions.glob("0006_*.py")).name).unlink()
    written(ws, "Plain", safe=False)
    plain = migrations.lint(ws.config, "0006", squawk_config=strict)
    assert set(SAFETY_RULES) <= set(plain["rule"]), plain.to_string()
    by_default = migrations.lint(ws.config, "base:head")  # the repo's config: the tutorial's exclusions...
    assert set(by_default["revision"].dropna()) == {"0006"}  # ...keep 0001-0005 clean, and 0006 is caught
    assert set(SAFETY_RULES) <= set(by_default["rule"]), by_default.to_string()


def _hold_snapshot(ws: Workspace, released: threading.Event, held: threading.Event) -> None:
    """An open transaction with a snapshot: CREATE INDEX CONCURRENTLY waits for it to end."""
    with ws.engine.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ")
        connection.execute(sa.text("SELECT count(*) FROM playlists"))
        held.set()
        released.wait(30)
        connection.rollback()


def test_a_build_that_timed_out_waiting_is_cleaned_up_before_its_retry(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYLIST_TOOLS_LOCK_TIMEOUT", "100ms")  # the migration's own: what a build may wait
    monkeypatch.setenv(safe.ATTEMPTS_ENV, "20")
    edit_models(ws, COMPOSER, "composer: Mapped[Optional[str]] = mapped_column(String(220), index=True)")
    written(ws)
    retried, held = _Retried(), threading.Event()
    logger = logging.getLogger("alembic.runtime.migration")
    logger.addHandler(retried)
    monkeypatch.setattr(logger, "level", logging.INFO)
    holder = threading.Thread(target=_hold_snapshot, args=(ws, retried.event, held))
    holder.start()
    try:
        held.wait(30)
        migrations.upgrade(ws.config)  # the first build times out waiting and leaves an invalid index
    finally:
        retried.event.set()
        holder.join()
        logger.removeHandler(retried)
    assert any("lock not granted (try 1 of 20)" in message for message in retried.messages)
    assert any("dropping the invalid index ix_songs_composer" in message for message in retried.messages)
    assert index_valid(ws, "ix_songs_composer") is True


def test_impact_shows_what_each_safe_step_really_takes(ws: Workspace) -> None:
    edit_models(ws, COMPOSER, "composer: Mapped[str] = mapped_column(String(220), index=True)")
    written(ws)
    plan = migrations.impact(ws.config, "head")
    rows = {
        sql.split("\n")[-1][:60]: (lock, scans)
        for sql, lock, scans in zip(plan["sql"], plan["lock"], plan["scans"], strict=True)
    }

    def taken(start: str) -> tuple[object, object]:
        found = [value for key, value in rows.items() if key.startswith(start)]
        assert len(found) == 1, (start, rows)
        return found[0]

    assert taken("ALTER TABLE songs ADD CONSTRAINT ck_songs_composer_not_null") == ("ACCESS EXCLUSIVE", False)
    assert taken("ALTER TABLE songs VALIDATE CONSTRAINT") == ("SHARE UPDATE EXCLUSIVE", True)
    assert taken("ALTER TABLE songs ALTER COLUMN composer SET NOT NULL") == ("ACCESS EXCLUSIVE", False)  # no scan
    assert taken("CREATE INDEX CONCURRENTLY") == ("SHARE UPDATE EXCLUSIVE", True)


def test_a_check_constraint_is_added_not_valid_then_validated(ws: Workspace) -> None:
    # Alembic's autogenerate does not compare check constraints, so this revision is written by hand,
    # as autogenerate's rewriter would write a CreateCheckConstraintOp.
    (ws.versions / "0006_priced.py").write_text(
        '"""Priced"""\nfrom alembic import op\nfrom playlist_tools.migrations import safe\n\n'
        'revision = "0006"\ndown_revision = "0005"\nbranch_labels = None\ndepends_on = None\n\n\n'
        'def upgrade() -> None:\n'
        '    safe.create_check_constraint("ck_songs_priced", "songs", "unit_price >= 0")\n\n\n'
        'def downgrade() -> None:\n'
        '    safe.drop_constraint("ck_songs_priced", "songs", type_="check")\n'
    )
    sql = migrations.sql(ws.config, "0005:0006")
    # the models' naming convention makes the name ck_songs_<given>, as op.create_check_constraint would
    assert "ADD CONSTRAINT ck_songs_ck_songs_priced CHECK (unit_price >= 0) NOT VALID" in sql
    assert "VALIDATE CONSTRAINT ck_songs_ck_songs_priced" in sql
    round_trip(ws, lambda: constraint(ws, "ck_songs_ck_songs_priced") == ("c", True),
               lambda: constraint(ws, "ck_songs_ck_songs_priced") is None)
    assert constraint(ws, "ck_songs_ck_songs_priced") == ("c", True)
