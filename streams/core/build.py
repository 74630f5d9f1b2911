"""Compile `segmentation/` and the write path's pure modules (`choice.WRITE_PATH`) with mypyc into
`.build/mypyc`, apart from the sources (run by `make setup`).

Every module of the package is compiled except those in `EXCLUDED` (each with the reason mypyc refuses it),
so a new module is compiled without anyone touching this file. A build that fails (no C compiler, a
module mypyc rejects) leaves a manifest saying why, exits 0, and everything runs pure Python.
The `.pth` written here makes every interpreter of this venv call `streams.core.choice.choose` at start.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from streams.core.choice import MANIFEST, PACKAGE, WRITE_PATH, file_digests, write_path_digests

__all__ = ["EXCLUDED", "GROUP", "build", "main", "venv_is_ours", "write_pth"]

ROOT = Path(__file__).resolve().parents[2]
# Modules left to the interpreter, with why (docs/benchmarks.md, "Compiled core").
EXCLUDED: dict[str, str] = {
    "event_types.py": "pydantic models: mypyc emits C that references pydantic.main without declaring it",
    "events.py": "`python -m segmentation.events` writes the schema (a compiled module cannot run as -m),"
    " and `parse_event` takes any object by contract (compiled, a wrong type is a TypeError)",
    "state.py": "msgspec decodes the packed state by `CustomerState`'s annotations (state_codec.py);"
    " compiled, a NamedTuple's `X | None` annotations become `type` and no stored state decodes",
}
GROUP = "segmentation_core"  # mypyc's shared runtime library becomes `segmentation_core__mypyc`
PTH = "segstream_core.pth"

_SETUP = """\
from setuptools import setup
from mypyc.build import mypycify

setup(
    name="segmentation_core",
    ext_modules=mypycify({paths!r}, opt_level="3", multi_file=True, group_name={group!r}),
)
"""
_MYPY_INI = """\
[mypy]
python_version = {major}.{minor}
[mypy-scipy.*]
ignore_missing_imports = True
[mypy-streams.*]
# the rest of streams/ is here only for the types the compiled modules import; checked by `make lint`
follow_imports = silent
"""


def _modules(package: Path) -> list[str]:
    """Relative paths (from the build root) of the modules to compile."""
    return sorted(
        str(p.relative_to(package.parent))
        for p in package.rglob("*.py")
        if "__pycache__" not in p.parts and str(p.relative_to(package)) not in EXCLUDED
    )


def _extension(module: str) -> str:
    return module.removesuffix(".py") + EXTENSION_SUFFIXES[0]


def _tail(text: str, keep: int = 3) -> str:
    """The last error messages ("error: command 'gcc' failed", "x.py:3: error: ...", "x.c:9:1: error: ..."),
    not any line naming "error": mypyc's compiler command lines carry -Werror and crowded the reason out."""
    lines = [line for line in text.splitlines() if "error:" in line.lower()] or text.splitlines()
    return " | ".join(line.strip() for line in lines[-keep:])[:400]


def _compile(stage: Path, jobs: int, write_path: Sequence[str]) -> tuple[list[str], str | None]:
    """Run mypyc in `stage`; the compiled modules, or an error line."""
    modules = _modules(stage / PACKAGE) + list(write_path)
    (stage / "mypy.ini").write_text(_MYPY_INI.format(major=sys.version_info[0], minor=sys.version_info[1]))
    (stage / "setup.py").write_text(_SETUP.format(paths=modules, group=GROUP))
    try:
        done = subprocess.run(
            [sys.executable, "setup.py", "build_ext", "--inplace", "-j", str(jobs)],
            cwd=stage,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        return modules, f"could not run mypyc: {exc}"
    (stage / "build.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        return modules, f"exit {done.returncode}: {_tail(done.stdout + done.stderr)}"
    missing = [m for m in modules if not (stage / _extension(m)).exists()]
    if missing:
        return modules, f"no extension module for {', '.join(missing[:3])}"
    return modules, None


def build(
    out: Path, source: Path, jobs: int = 2, write_path: Sequence[str] = WRITE_PATH
) -> dict[str, object]:
    """Build into `out` (replaced whole, never left half-built); the manifest written there. `write_path`:
    the modules of the checkout's `streams/` (beside `source`) compiled too."""
    started, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    stage = out.with_name(out.name + ".new")
    shutil.rmtree(stage, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    shutil.copytree(source, stage / PACKAGE, ignore=ignore)
    if write_path:  # all of streams/ (what the compiled modules import must type-check); theirs is kept
        shutil.copytree(source.parent / "streams", stage / "streams", ignore=ignore)
    files = file_digests(str(stage / PACKAGE))
    compiled_streams = write_path_digests(str(stage), write_path)
    modules: list[str] = []
    error: str | None = "mypy (with mypyc) is not installed"
    try:
        mypy_version: str | None = version("mypy")
    except PackageNotFoundError:
        mypy_version = None
    if mypy_version is not None:
        modules, error = _compile(stage, jobs, write_path)
    if error is None and (
        file_digests(str(source)) != files
        or write_path_digests(str(source.parent), write_path) != compiled_streams
    ):
        error = "the sources changed while they were compiled; run make setup again"
    manifest: dict[str, object] = {
        "files": files,
        "write_path": compiled_streams,
        "ext_suffix": EXTENSION_SUFFIXES[0],
        "python": sys.version.split()[0],
        "mypyc": mypy_version,
        "excluded": EXCLUDED,
        "build_seconds": 0.0,
    }
    if error is None:
        for module in modules:
            (stage / module).unlink()  # only the extension may answer for a compiled module
        if write_path:
            _keep_only_extensions(stage / "streams")
        shutil.rmtree(stage / "build", ignore_errors=True)
        for name in ("setup.py", "mypy.ini"):
            (stage / name).unlink()
        manifest["compiled"] = modules
        manifest["libraries"] = [f"{GROUP}__mypyc"]
    else:
        manifest["error"] = error
    manifest["build_seconds"] = round(time.monotonic() - started, 1)
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    manifest["build_cpu_seconds"] = round(done.ru_utime + done.ru_stime - cpu.ru_utime - cpu.ru_stime, 1)
    shutil.rmtree(out, ignore_errors=True)
    if error is None:
        stage.rename(out)
    else:
        out.mkdir(parents=True)
        if (stage / "build.log").exists():
            shutil.copy(stage / "build.log", out / "build.log")
        shutil.rmtree(stage, ignore_errors=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _keep_only_extensions(tree: Path) -> None:
    """The staged copy of streams/ keeps only the compiled modules (the finder loads nothing else from it)."""
    for path in sorted(tree.rglob("*"), reverse=True):
        if path.is_file() and not path.name.endswith(EXTENSION_SUFFIXES[0]):
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def write_pth(out: Path, source: Path) -> Path:
    """The start-up hook of this venv: one line that chooses the core before anything imports it (and stays
    quiet in a checkout without `streams.core`, e.g. an older branch in the same venv)."""
    pth = Path(sysconfig.get_paths()["purelib"]) / PTH
    call = f"c.choose({str(out)!r}, {str(source)!r})"
    # `streams` leaves sys.modules again: a benchmark's baseline must be able to import another checkout's
    body = (
        f"try:\n import streams.core.choice as c\nexcept ImportError:\n pass\nelse:\n {call}\n"
        "finally:\n for m in ('streams.core.choice', 'streams.core', 'streams'):\n"
        "  sys.modules.pop(m, None)\n"
    )
    pth.write_text(f"import sys; exec({body!r})  # segstream: make setup (streams/core/build.py)\n")
    return pth


def venv_is_ours(prefix: Path, root: Path) -> bool:
    """Whether the running venv belongs to the checkout being built (`make setup`'s `.venv`): only then is its
    start-up hook pointed at this build, never from a baseline checkout built with another one's venv."""
    return prefix.resolve().is_relative_to(root.resolve())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.core.build", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / ".build" / "mypyc")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel C compilations")
    args = parser.parse_args(argv)
    source = ROOT / PACKAGE
    out = args.out.resolve()
    manifest = build(out, source, args.jobs)
    if venv_is_ours(Path(sys.prefix), ROOT):
        write_pth(out, source)
    else:  # another checkout's venv (a benchmark's --baseline built with it): its hook stays on its own build
        print(f"core: start-up hook of {sys.prefix} left as it is (that venv is not this checkout's)")
    if "error" in manifest:
        print(f"core: pure Python (mypyc build failed: {manifest['error']}); see {out}/build.log")
    else:
        count = len(manifest["compiled"])  # type: ignore[arg-type]
        took = f"{manifest['build_seconds']} s ({manifest['build_cpu_seconds']} CPU-s)"
        print(f"core: compiled {count} modules with mypyc in {took} into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
