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


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = version
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    return [r for r in map(Requirement, declared) if canonicalize_name(r.name) != "customer-value"]


def test_every_requirement_is_pinned_inside_its_range():
    pins = _pins()
    missing = [str(r) for r in _requirements() if canonicalize_name(r.name) not in pins]
    outside = [f"{r} (pinned {pins[canonicalize_name(r.name)]})" for r in _requirements()
               if canonicalize_name(r.name) in pins
               and not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)]
    assert not missing, f"not pinned in .ci/constraints.txt (run `make lock`): {missing}"
    assert not outside, f"pinned outside pyproject.toml's range (run `make lock`): {outside}"


def test_pins_are_unique_and_pip_is_pinned():
    names = [canonicalize_name(line.partition("==")[0])
             for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(names) == len(set(names))
    assert "pip" in names
