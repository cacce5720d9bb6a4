"""environment.yml (conda) and pyproject.toml name the same dependencies."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import yaml
from packaging.requirements import Requirement

from helpers import REPO_ROOT


def normalised(specs: list[str]) -> set[str]:
    return {str(Requirement(spec)).lower() for spec in specs}


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return normalised(specs)


def conda_pip_requirements() -> set[str]:
    environment = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    return normalised([spec for spec in pip_section if not spec.startswith("-e")])


def test_environment_yml_matches_pyproject() -> None:
    in_pyproject, in_conda = pyproject_requirements(), conda_pip_requirements()
    assert in_pyproject == in_conda, (
        f"only in pyproject.toml: {sorted(in_pyproject - in_conda)}; "
        f"only in environment.yml: {sorted(in_conda - in_pyproject)}"
    )


def test_environment_yml_installs_the_project() -> None:
    environment = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    assert "-e ." in pip_section
