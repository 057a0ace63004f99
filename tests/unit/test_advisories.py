"""The dependency floors in pyproject.toml are past every advisory in security/advisories.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def declared() -> dict[str, Requirement]:
    """Every requirement pyproject.toml declares (runtime and extras), by canonical name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    requirements = (Requirement(line) for line in lines)
    return {canonicalize_name(r.name): r for r in requirements if r.name != "vigor"}


def floor(requirement: Requirement) -> Version | None:
    """The lowest version ``requirement`` admits: its ``>=``, ``~=`` or ``==`` bound."""
    bounds = [
        Version(spec.version)
        for spec in requirement.specifier
        if spec.operator in {">=", "~=", "=="}
    ]
    return max(bounds, default=None)


ADVISORIES = tomllib.loads((ROOT / "security" / "advisories.toml").read_text())["advisory"]


@pytest.mark.parametrize("advisory", ADVISORIES, ids=[a["id"] for a in ADVISORIES])
def test_every_floor_is_past_the_advisory(advisory: dict[str, str]) -> None:
    requirement = declared().get(canonicalize_name(advisory["package"]))
    assert requirement is not None, f"{advisory['package']} is listed but not declared"
    lowest = floor(requirement)
    assert lowest is not None, f"{requirement} has no floor; {advisory['id']} needs one"
    assert lowest >= Version(advisory["fixed"]), (
        f"{requirement} admits versions affected by {advisory['id']} "
        f"(fixed in {advisory['fixed']}): {advisory['summary']}"
    )


def test_a_floor_below_a_fix_is_caught() -> None:
    assert floor(Requirement("gunicorn>=22")) < Version("23.0.0")
    assert floor(Requirement("gunicorn>=23.0.0,<24")) == Version("23.0.0")
    assert floor(Requirement("gunicorn")) is None
