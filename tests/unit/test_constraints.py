"""constraints.txt pins every dependency `make setup` installs, inside pyproject.toml's ranges.

A dependency added to pyproject.toml without `make lock` would be installed at whatever version the registry
serves that day: the repeatability the file exists for would be lost without anyone noticing.
"""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, Version]:
    """The name -> version lines of constraints.txt; anything but a comment or `name==version` is refused."""
    pinned: dict[str, Version] = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and name and version, f"constraints.txt:{number}: not name==version: {line!r}"
        pinned[canonicalize_name(name)] = Version(version)
    return pinned


def requirements() -> list[Requirement]:
    """What `pip install -e '.[dev]'` asks for directly: the dependencies and the test and dev extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    texts += project["optional-dependencies"]["dev"]
    wanted = [Requirement(text) for text in texts]
    return [req for req in wanted if canonicalize_name(req.name) != "segstream"]


def test_every_direct_dependency_is_pinned_inside_its_range() -> None:
    pinned = pins()
    wrong = []
    for req in requirements():
        version = pinned.get(canonicalize_name(req.name))
        if version is None:
            wrong.append(f"{req}: not in constraints.txt (run `make lock`)")
        elif not req.specifier.contains(version, prereleases=True):
            wrong.append(f"{req}: constraints.txt pins {version}, outside the range (run `make lock`)")
    assert wrong == []


def test_no_name_is_pinned_twice() -> None:
    lines = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line]
    names = [canonicalize_name(line.partition("==")[0]) for line in lines]
    assert len(names) == len(set(names))
