"""The architecture's import rule (docs/architecture.md), checked over every import statement.

A capability folder of `streams/` imports its own modules, the shared adapters (`store`, `topics`), the
top-level wiring it needs, and `segmentation/`; the read side and the worker never import each other, nothing
imports the CLI, and no two modules import each other (directly or around a circle), lazily or not.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ALLOWED: dict[str, frozenset[str]] = {
    # shared adapters: the Redis side and what goes onto Kafka topics
    "store": frozenset(),
    "topics": frozenset({"store"}),
    # capabilities
    "worker": frozenset({"store", "topics", "settings"}),
    "read": frozenset({"store", "settings", "logs"}),
    "replay": frozenset({"worker", "store", "topics", "sample", "bootstrap", "settings", "progress"}),
    "admin": frozenset({"store", "topics", "bootstrap", "settings", "progress"}),
    "sample": frozenset(),
    "core": frozenset({"sample", "store"}),  # builds and chooses the compiled core; trains the dictionaries
    "devstack": frozenset({"store"}),
    # top-level wiring
    "settings": frozenset(),
    "logs": frozenset(),
    "progress": frozenset(),
    "bootstrap": frozenset({"store", "topics", "worker", "settings", "logs"}),
    "demo": frozenset({"bootstrap", "devstack", "sample", "settings", "store"}),
    "sample_command": frozenset({"bootstrap", "progress", "sample", "settings"}),
    "errors": frozenset({"settings", "store"}),
    "cli": frozenset(
        {
            "admin",
            "bootstrap",
            "core",
            "errors",
            "logs",
            "progress",
            "read",
            "replay",
            "sample",
            "sample_command",
            "settings",
            "store",
            "worker",
        }
    ),
}
"""Folder (or top-level module) of `streams/` -> what else in `streams/` it may import."""


def imported_modules(source: str) -> Iterator[str]:
    """Every module an import statement names, at module level or inside a function."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def room(module: str) -> str:
    """`streams.read.api` -> `read`; `streams.cli` -> `cli`."""
    return module.split(".")[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def violations(module: str, source: str) -> list[str]:
    """The imports of `module` (a `streams.*` module) that break the rule."""
    found = []
    mine = room(module)
    seen: set[str] = set()
    for target in imported_modules(source):
        if not target.startswith("streams.") or room(target) in seen:
            continue
        other = room(target)
        seen.add(other)
        if other == "cli":
            found.append(f"{module} imports {target}: nothing imports the CLI")
        elif other != mine and other in ALLOWED and other not in ALLOWED[mine]:
            found.append(f"{module} imports {target}: {mine}/ may import only {sorted(ALLOWED[mine])}")
    return found


def sources(package: str) -> dict[str, str]:
    return {module_name(p): p.read_text(encoding="utf-8") for p in sorted((ROOT / package).rglob("*.py"))}


def test_every_streams_module_keeps_the_import_rule() -> None:
    mods = sources("streams")
    assert {room(m) for m in mods if m != "streams"} <= set(ALLOWED), "a new folder needs its rule here"
    broken = [v for m, src in mods.items() if m != "streams" for v in violations(m, src)]
    assert broken == []


def test_the_rule_catches_a_wrong_import() -> None:
    """The check is not vacuous: the read side reaching into the worker, or anyone into the CLI, is caught."""
    assert violations("streams.read.api", "from streams.worker.loop import Worker\n") == [
        "streams.read.api imports streams.worker.loop: read/ may import only ['logs', 'settings', 'store']"
    ]
    assert violations("streams.worker.pipeline", "def f():\n    from streams.read import reader\n")
    assert violations("streams.admin.calibrate", "import streams.cli\n")
    assert violations("streams.read.api", "from streams.store.keys import KeySpace\n") == []


def cycles(mods: dict[str, str]) -> list[list[str]]:
    """Import circles between modules of one tree (every import counted, lazy ones too)."""
    graph = {
        m: {t for t in imported_modules(src) if t in mods and t != m and not m.startswith(t + ".")}
        for m, src in mods.items()
    }
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def test_no_import_cycles() -> None:
    for package in ("segmentation", "streams"):
        mods = {m: s for m, s in sources(package).items() if not m.endswith("__init__")}
        packages = {m for m in mods if (ROOT / m.replace(".", "/") / "__init__.py").exists()}
        assert cycles({m: s for m, s in mods.items() if m not in packages}) == [], package


def test_the_cycle_check_finds_a_circle() -> None:
    assert cycles({"a": "import b\n", "b": "def f():\n    import a\n"}) == [["a", "b", "a"]]


def test_no_module_grows_past_the_split_size() -> None:
    """One module per concept: a module nearing ~300 lines is split along its concepts."""
    for package in ("segmentation", "streams"):
        for path in (ROOT / package).rglob("*.py"):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines <= 320, f"{path.relative_to(ROOT)} has {lines} lines"
