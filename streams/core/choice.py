"""Which segmentation core runs: the mypyc-compiled build when it matches the sources, else pure Python.

`make setup` (`streams.core.build`) installs a `.pth` file that calls `choose` when any interpreter of the
venv starts, before anything imports `segmentation` (which itself does no I/O). The build lives apart from
the sources (`.build/mypyc`), so an edited `.py` is never shadowed by an older extension module: the build
is used only while every source file has the digest recorded when it was compiled.
Kept to the standard library's cheapest modules: it runs at every interpreter start.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec, PathFinder
from types import ModuleType

__all__ = [
    "MANIFEST", "PACKAGE", "PURE_ENV", "choose", "compiled", "describe", "file_digests", "source_files",
    "status",
]  # fmt: skip

PURE_ENV = "SEGSTREAM_PURE_PYTHON"
MANIFEST = "manifest.json"
PACKAGE = "segmentation"
_ARTEFACTS = (".pyc", ".so", ".pyd", ".c", ".o")

# Why the build is not in use, kept on `sys`: the start-up hook drops this module (and `streams`) from
# sys.modules once it has chosen, so that a benchmark's baseline can import another checkout's `streams`.
_REASON = "_segstream_core_reason"


def _reason() -> str:
    return str(getattr(sys, _REASON, "no compiled build installed (run make setup)"))


def _set_reason(text: str) -> None:
    setattr(sys, _REASON, text)


def source_files(source: str) -> list[str]:
    """The files of the package (code and data), relative, sorted; build artefacts left out."""
    found: list[str] = []
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        rel_root = os.path.relpath(root, source)
        for name in files:
            if not name.endswith(_ARTEFACTS):
                found.append(name if rel_root == "." else os.path.join(rel_root, name).replace(os.sep, "/"))
    return sorted(found)


def file_digests(source: str) -> dict[str, str]:
    """SHA-256 of each source file: what a build records and a start compares."""
    digests: dict[str, str] = {}
    for rel in source_files(source):
        with open(os.path.join(source, rel), "rb") as f:
            digests[rel] = hashlib.sha256(f.read()).hexdigest()
    return digests


class _CompiledCore:
    """Finds `segmentation` (and the mypyc runtime library) in the build directory, ahead of every other
    finder (so neither pytest's rootdir on sys.path nor the editable install can pick the sources); not when
    sys.path leads to another checkout's `segmentation` (a benchmark's baseline, a script run elsewhere)."""

    def __init__(self, build: str, source: str, libraries: list[str]) -> None:
        self.build = build
        self.source = os.path.realpath(source)
        self.libraries = frozenset(libraries)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None, /
    ) -> ModuleSpec | None:
        if fullname == PACKAGE:
            found = PathFinder.find_spec(fullname, sys.path)
            where = next(iter(found.submodule_search_locations or ())) if found is not None else None
            if where is not None and os.path.realpath(where) != self.source:
                _set_reason(f"sys.path leads to another {PACKAGE}/ ({where}) than the one built")
                return None
            return PathFinder.find_spec(fullname, [self.build])
        if fullname in self.libraries:
            return PathFinder.find_spec(fullname, [self.build])
        if fullname.startswith(PACKAGE + "."):
            return PathFinder.find_spec(fullname, path)
        return None


def _stale(recorded: dict[str, str], source: str) -> str | None:
    current = file_digests(source)
    changed = sorted(set(recorded) ^ set(current) | {f for f in current if recorded.get(f) != current[f]})
    if not changed:
        return None
    shown = ", ".join(f"{PACKAGE}/{f}" for f in changed[:3]) + (" ..." if len(changed) > 3 else "")
    return f"stale build: {shown} changed since it was compiled; run make setup"


def _refusal(build: str, source: str) -> str | None:
    """Why the build may not be used, or None when it may."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"{PURE_ENV}={os.environ[PURE_ENV]}"
    try:
        with open(os.path.join(build, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        return "no compiled build (run make setup)"
    except (OSError, ValueError) as exc:
        return f"unreadable {build}/{MANIFEST}: {exc}"
    if manifest.get("error"):
        return f"mypyc build failed: {manifest['error']}"
    if manifest.get("ext_suffix") != EXTENSION_SUFFIXES[0]:
        return f"built for another interpreter ({manifest.get('ext_suffix')}); run make setup"
    stale = _stale(manifest.get("files", {}), source)
    if stale:
        return stale
    if PACKAGE in sys.modules:
        return f"{PACKAGE} was imported before the core was chosen"
    sys.meta_path.insert(0, _CompiledCore(build, source, list(manifest.get("libraries", []))))
    return None


def choose(build: str, source: str) -> None:
    """Put the compiled core ahead of the sources when it is current; remember why not otherwise."""
    try:
        refusal = _refusal(build, source)
    except Exception as exc:  # an interpreter must start whatever the build directory holds
        refusal = f"build check failed: {exc!r}"
    _set_reason(refusal or "")


def compiled() -> bool:
    """True when the loaded core is the mypyc build (judged by the module actually imported)."""
    import segmentation.evolution as core

    return (core.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))


def status() -> str:
    """`compiled (mypyc)` or `pure Python (<why>)`, for logs and `segstream version`."""
    if compiled():
        return "compiled (mypyc)"
    return f"pure Python ({_reason() or 'the compiled build was chosen but the sources were imported'})"


def describe() -> str:
    """The one line a process logs at start: `core: ...`."""
    return f"core: {status()}"
