"""Which segmentation core runs: the mypyc-compiled build when it matches the sources, else pure Python.

The build holds `segmentation/` and the pure modules of the write path (`WRITE_PATH`: coding a batch's
history, KPI markers and index deltas, no I/O), which cost as much per transition as the core itself.

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
    "MANIFEST", "PACKAGE", "PURE_ENV", "WRITE_PATH", "choose", "compiled", "describe", "file_digests",
    "module_name", "source_files", "status", "write_path_digests",
]  # fmt: skip

PURE_ENV = "SEGSTREAM_PURE_PYTHON"
MANIFEST = "manifest.json"
PACKAGE = "segmentation"
# Modules of `streams/` compiled with the core (paths from the checkout's root): pure code of the write path,
# per transition and per customer write (docs/benchmarks.md, "Compiled core").
WRITE_PATH = (
    "streams/store/coded_numbers.py",
    "streams/store/commit_script.py",
    "streams/store/day_names.py",
    "streams/store/history_cap.py",
    "streams/store/history_format.py",
    "streams/store/indexes.py",
    "streams/store/kpi_ops.py",
    "streams/store/partitioning.py",
    "streams/store/preset_names.py",
    "streams/store/weeks.py",
    "streams/store/writes.py",
    "streams/store/written.py",
    "streams/worker/batch.py",
)
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


def _digests(root: str, files: Sequence[str]) -> dict[str, str]:
    digests: dict[str, str] = {}
    for rel in files:
        with open(os.path.join(root, rel), "rb") as f:
            digests[rel] = hashlib.sha256(f.read()).hexdigest()
    return digests


def file_digests(source: str) -> dict[str, str]:
    """SHA-256 of each source file: what a build records and a start compares."""
    return _digests(source, source_files(source))


def write_path_digests(root: str, modules: Sequence[str] = WRITE_PATH) -> dict[str, str]:
    """SHA-256 of each of `modules` (`WRITE_PATH`) of the checkout at `root`."""
    return _digests(root, modules)


def module_name(rel: str) -> str:
    """`streams/store/indexes.py` -> `streams.store.indexes`."""
    return rel.removesuffix(".py").replace("/", ".")


class _CompiledCore:
    """Finds `segmentation` (and the mypyc runtime library) in the build directory, ahead of every other
    finder (so neither pytest's rootdir on sys.path nor the editable install can pick the sources); not when
    sys.path leads to another checkout's `segmentation` (a benchmark's baseline, a script run elsewhere)."""

    def __init__(self, build: str, source: str, libraries: list[str], modules: Sequence[str] = ()) -> None:
        self.build = build
        self.source = os.path.realpath(source)
        self.libraries = frozenset(libraries)
        # compiled modules of `streams/`: dotted name -> (the source's package directory, the build's)
        root = os.path.dirname(self.source)
        self.modules = {
            module_name(rel): (os.path.join(root, package), os.path.join(build, package))
            for rel in modules
            for package in (os.path.dirname(rel),)
        }

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
        compiled = self.modules.get(fullname)
        if compiled is not None:
            # only under this checkout's package (`path`: the parent package's), never another checkout's, and
            # only beside this build's core: compiled code reads the core's classes by their native layout
            where = next(iter(path or ()), None)
            if where is None or os.path.realpath(where) != os.path.realpath(compiled[0]):
                return None
            core = sys.modules.get(PACKAGE) or __import__(PACKAGE)
            if not os.path.realpath(core.__file__ or "").startswith(os.path.realpath(self.build) + os.sep):
                return None
            return PathFinder.find_spec(fullname, [compiled[1]])
        return None


def _changed(recorded: dict[str, str], current: dict[str, str], prefix: str = "") -> str | None:
    """The one-line refusal naming the files whose digest differs (added and removed ones too), or None."""
    changed = sorted(set(recorded) ^ set(current) | {f for f in current if recorded.get(f) != current[f]})
    if not changed:
        return None
    shown = ", ".join(f"{prefix}{f}" for f in changed[:3]) + (" ..." if len(changed) > 3 else "")
    return f"stale build: {shown} changed since it was compiled; run make setup"


def _stale(recorded: dict[str, str], source: str) -> str | None:
    return _changed(recorded, file_digests(source), f"{PACKAGE}/")


def _stale_write_path(recorded: dict[str, str], root: str) -> str | None:
    """The build's `streams/` modules against the checkout's `WRITE_PATH` (a build from before they were
    compiled records none: then nothing of `streams/` is taken from it)."""
    if not recorded:
        return None
    try:
        current = write_path_digests(root)
    except OSError as exc:
        return f"stale build: {exc.filename} is gone; run make setup"
    return _changed(recorded, current)


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
    if manifest.get("error"):  # `make setup` does not retry it (the manifest is newer than the sources)
        return f"mypyc build failed: {manifest['error']}; once fixed, make core"
    if manifest.get("ext_suffix") != EXTENSION_SUFFIXES[0]:
        return f"built for another interpreter ({manifest.get('ext_suffix')}); run make setup"
    stale = _stale(manifest.get("files", {}), source)
    if stale:
        return stale
    modules = list(manifest.get("write_path", {}))
    stale = _stale_write_path(manifest.get("write_path", {}), os.path.dirname(source))
    if stale:
        return stale
    if PACKAGE in sys.modules:
        return f"{PACKAGE} was imported before the core was chosen"
    sys.meta_path.insert(0, _CompiledCore(build, source, list(manifest.get("libraries", [])), modules))
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
