"""The pinned install (``.ci/constraints.txt``) agrees with ``pyproject.toml``'s ranges.

``make demo`` and ``make test`` install with those pins, so a range raised in ``pyproject.toml``
without ``make lock`` would fail the install with pip's resolver message; this names the package.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pin_lines() -> list[tuple[str, str]]:
    """(canonical name, version) of every pin, in file order (duplicates kept, for the test)."""
    pins = []
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"not an exact pin: {line!r}"
        pins.append((canonicalize_name(name), version))
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    return [r for r in map(Requirement, declared) if canonicalize_name(r.name) != "customer-value"]


def test_every_requirement_is_pinned_inside_its_range():
    pins = dict(_pin_lines())
    pinned = {r: pins.get(canonicalize_name(r.name)) for r in _requirements()}
    missing = [str(r) for r, version in pinned.items() if version is None]
    outside = [f"{r} (pinned {version})" for r, version in pinned.items()
               if version is not None and not r.specifier.contains(version, prereleases=True)]
    assert not missing, f"not pinned in .ci/constraints.txt (run `make lock`): {missing}"
    assert not outside, f"pinned outside pyproject.toml's range (run `make lock`): {outside}"


def test_pins_are_unique_and_pip_is_pinned():
    names = [name for name, _ in _pin_lines()]
    assert len(names) == len(set(names))
    assert "pip" in names
