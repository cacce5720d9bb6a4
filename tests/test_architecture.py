"""The house's rules that a tool checks: import-linter's contracts in pyproject.toml (issue 19).

``make test`` runs ``lint-imports``; these tests keep the contracts honest: every private module of a
room is in its room's "private modules are its own" contract (so a new one cannot slip past it), and
the contracts hold now.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "playlist_tools"


def _contracts() -> list[dict[str, object]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


@pytest.mark.once
@pytest.mark.parametrize("room", sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()))
def test_every_private_module_of_a_room_is_protected(room: str) -> None:
    private = {f"playlist_tools.{room}.{f.stem}" for f in (PACKAGE / room).glob("_*.py") if f.stem != "__init__"}
    owner = [f"playlist_tools.{room}"]
    protected = [c for c in _contracts() if c["type"] == "protected" and c["allowed_importers"] == owner]
    assert len(protected) == 1, f"pyproject.toml needs one protected contract for playlist_tools.{room}"
    assert set(protected[0]["protected_modules"]) == private  # type: ignore[arg-type]


@pytest.mark.once
def test_every_room_is_in_the_layers() -> None:
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    named = {name.strip() for layer in layers["layers"] for name in str(layer).replace(":", "|").split("|")}
    rooms = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" and p.stem != "__init__"}
    rooms |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert named == rooms


@pytest.mark.once
def test_the_contracts_hold() -> None:
    run = subprocess.run([Path(sys.executable).with_name("lint-imports"), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:]
