"""squawk over the migrations' SQL: the history passes, bad SQL does not, each exclusion earns its place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alembic.config import Config

from playlist_tools import migrations
from playlist_tools.errors import PlaylistToolsError, RevisionError

from helpers import REPO_ROOT, add_revision, scratch_history

HISTORY = ["0001", "0002", "0003", "0004", "0005"]
CONFIG_TEXT = (REPO_ROOT / ".squawk.toml").read_text()
# Read with re rather than tomllib, which Python 3.10 lacks.
SETTINGS = {
    "pg_version": re.search(r'^pg_version = "([\d.]+)"', CONFIG_TEXT, re.MULTILINE)[1],
    "excluded_rules": re.findall(r'^\s+"([a-z-]+)",$', CONFIG_TEXT.split("excluded_rules = [")[1], re.MULTILINE),
}



DROPS_A_COLUMN = 'op.drop_column("songs", "album")'


def quiet_config(ini: Path) -> Config:
    return migrations.config(ini=ini)


def test_committed_history_passes() -> None:
    findings = migrations.lint(None, "base:head")
    assert findings.empty, findings.to_string()


@pytest.mark.parametrize("revision", HISTORY)
def test_each_revision_passes_alone(revision: str) -> None:
    findings = migrations.lint(None, revision)
    assert findings.empty, findings.to_string()


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("ALTER TABLE songs DROP COLUMN album;", "ban-drop-column"),
        ("DROP TABLE songs;", "ban-drop-table"),
        ("ALTER TABLE songs ADD COLUMN rating integer NOT NULL;", "adding-required-field"),
        ("ALTER TABLE songs ALTER COLUMN title TYPE text;", "changing-column-type"),
        ("ALTER TABLE songs ADD COLUMN rating integer;", "require-lock-timeout"),
    ],
)
def test_bad_sql_yields_findings(sql: str, rule: str) -> None:
    findings = migrations.lint(None, sql)
    assert rule in set(findings["rule"]), findings.to_string()
    assert findings["revision"].isna().all()
    assert list(findings.columns) == migrations.LINT_COLUMNS
    assert (findings["line"] == 1).all()


def test_findings_name_the_revision_and_line(tmp_path: Path) -> None:
    ini = scratch_history(tmp_path, failing=None)
    add_revision(ini, "dropped_album", "Dropped album", DROPS_A_COLUMN)
    config = quiet_config(ini)
    findings = migrations.lint(config, "base:head")
    assert findings[["revision", "rule"]].values.tolist() == [["0006", "ban-drop-column"]]
    sql_lines = migrations.sql(config, "base:head").splitlines()
    assert sql_lines[findings["line"].iloc[0] - 1] == "ALTER TABLE songs DROP COLUMN album;"
    assert migrations.lint(config, "0006")["rule"].tolist() == ["ban-drop-column"]


def test_offline_sql_sets_lock_timeout_so_that_rule_stays_on() -> None:
    assert "require-lock-timeout" not in SETTINGS["excluded_rules"]
    assert migrations.sql(None, "0001:0002").startswith("SET lock_timeout = '10s';")


def test_every_excluded_rule_is_needed_and_explained(tmp_path: Path) -> None:
    """An exclusion that no longer fires anywhere should be deleted; each one has a reason above it."""
    everything_on = tmp_path / "all-rules.toml"
    everything_on.write_text(f'pg_version = "{SETTINGS["pg_version"]}"\n')
    fired = set(migrations.lint(None, "base:head", squawk_config=everything_on)["rule"])
    excluded = SETTINGS["excluded_rules"]
    assert set(excluded) <= fired, f"excluded but never fired: {sorted(set(excluded) - fired)}"
    assert len(excluded) == CONFIG_TEXT.count('",\n'), "every entry of excluded_rules must be read"
    for rule in excluded:
        before = CONFIG_TEXT[: CONFIG_TEXT.index(f'"{rule}"')].rstrip().splitlines()[-1].strip()
        assert before.startswith("#"), f"{rule} has no reason written above it"


def test_unknown_revision_is_a_clear_error() -> None:
    with pytest.raises(RevisionError, match="'nope'.*alembic history"):
        migrations.lint(None, "nope")


def test_missing_squawk_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlaylistToolsError, match="does not exist"):
        migrations.lint(None, "base:head", squawk_config=tmp_path / "missing.toml")
