"""Which core runs: a compiled build is used only when current; otherwise pure Python, saying why."""

from __future__ import annotations

import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from streams.core import build, choice
from tests.core_differential import compare

ROOT = Path(__file__).resolve().parents[2]


def _build_dir(tmp_path: Path, source: Path, **extra: object) -> Path:
    out = tmp_path / "build"
    out.mkdir()
    manifest: dict[str, object] = {
        "files": choice.file_digests(str(source)),
        "ext_suffix": ".cpython-311-x86_64-linux-gnu.so",
        "libraries": [],
    }
    manifest.update(extra)
    (out / choice.MANIFEST).write_text(json.dumps(manifest))
    return out


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "segmentation"
    src.mkdir()
    (src / "__init__.py").write_text('"""pkg"""\n')
    (src / "rules.py").write_text("X = 1\n")
    (src / "definitions.yaml").write_text("grids: {}\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "rules.cpython-311.pyc").write_bytes(b"\0")
    return src


def test_an_edited_source_makes_the_build_stale_and_names_the_file(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _build_dir(tmp_path, source)
    (source / "rules.py").write_text("X = 2\n")
    monkeypatch.delenv(choice.PURE_ENV, raising=False)
    assert choice._refusal(str(out), str(source)) == (
        "stale build: segmentation/rules.py changed since it was compiled; run make setup"
    )
    (source / "new_module.py").write_text("")
    assert "segmentation/new_module.py, segmentation/rules.py changed" in str(
        choice._refusal(str(out), str(source))
    )


def test_an_edited_write_path_module_makes_the_build_stale_and_names_it(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled modules of streams/ (`WRITE_PATH`) are checked like the core's: edited, pure Python."""
    for rel in choice.WRITE_PATH:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"# {rel}\n")
    digests = choice.write_path_digests(str(tmp_path))
    out = _build_dir(tmp_path, source, ext_suffix=EXTENSION_SUFFIXES[0], write_path=digests)
    monkeypatch.delenv(choice.PURE_ENV, raising=False)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.delitem(sys.modules, "segmentation")
    (tmp_path / "streams/store/indexes.py").write_text("X = 2\n")
    assert choice._refusal(str(out), str(source)) == (
        "stale build: streams/store/indexes.py changed since it was compiled; run make setup"
    )
    (tmp_path / "streams/store/writes.py").unlink()
    assert "streams/store/writes.py is gone" in str(choice._refusal(str(out), str(source)))


def test_the_write_path_runs_compiled_exactly_when_the_core_does() -> None:
    """`make test`'s compiled run covers the compiled write path; the pure run, its sources."""
    for rel in choice.WRITE_PATH:
        module = importlib.import_module(choice.module_name(rel))
        assert (module.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES)) == choice.compiled(), rel


def test_only_sources_count_not_caches(source: Path) -> None:
    assert choice.source_files(str(source)) == ["__init__.py", "definitions.yaml", "rules.py"]


def test_every_reason_for_pure_python_is_one_line(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(choice.PURE_ENV, raising=False)
    assert choice._refusal(str(tmp_path / "none"), str(source)) == "no compiled build (run make setup)"
    failed = _build_dir(tmp_path, source, error="exit 1: gcc: command not found")
    assert choice._refusal(str(failed), str(source)) == (
        "mypyc build failed: exit 1: gcc: command not found; once fixed, make core"
    )
    (failed / choice.MANIFEST).write_text(json.dumps({"files": {}, "ext_suffix": ".cpython-39-x.so"}))
    assert choice._refusal(str(failed), str(source)) == (
        "built for another interpreter (.cpython-39-x.so); run make setup"
    )
    monkeypatch.setenv(choice.PURE_ENV, "1")
    assert choice._refusal(str(failed), str(source)) == "SEGSTREAM_PURE_PYTHON=1"


def test_a_current_build_is_not_installed_under_an_imported_core(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(choice.PURE_ENV, raising=False)
    out = _build_dir(tmp_path, source, ext_suffix=EXTENSION_SUFFIXES[0])
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    assert "segmentation" in sys.modules  # this test process already runs one core
    assert choice._refusal(str(out), str(source)) == "segmentation was imported before the core was chosen"
    monkeypatch.delitem(sys.modules, "segmentation")
    assert choice._refusal(str(out), str(source)) is None
    assert type(sys.meta_path[0]).__name__ == "_CompiledCore"


def test_segstream_version_names_the_core_and_the_env_forces_pure_python() -> None:
    env = {**os.environ, choice.PURE_ENV: "1"}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "version"], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[1] == "core: pure Python (SEGSTREAM_PURE_PYTHON=1)"


def test_a_failed_build_leaves_a_reason_and_no_extension(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `make setup` meets without a working mypyc or compiler: exit 0, pure Python, the reason kept."""
    monkeypatch.delenv(choice.PURE_ENV, raising=False)
    src = tmp_path / "segmentation"
    src.mkdir()
    (src / "__init__.py").write_text("")
    (src / "broken.py").write_text('X: int = "not an int"\n')  # mypyc type-checks before compiling
    manifest = build.build(tmp_path / "out", src, jobs=1, write_path=())
    assert str(manifest["error"]).startswith("exit 1: ")
    assert "broken.py" in str(manifest["error"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["build.log", "manifest.json"]
    assert "mypyc build failed: exit 1" in str(choice._refusal(str(tmp_path / "out"), str(src)))


def test_the_differential_check_fails_on_any_difference() -> None:
    pure = {
        "compiled": False, "core": "pure Python (x)", "digest": "a", "chunks": ["1", "2"], "events": 10,
        "transitions": 3, "dead_letters": 1, "writes": 4, "swept": 0, "customers": 2,
    }  # fmt: skip
    compiled = {**pure, "compiled": True, "core": "compiled (mypyc)"}
    assert compare(pure, compiled, 5) == []
    assert compare(pure, {**compiled, "digest": "b", "chunks": ["1", "3"]}, 5) == [
        "outputs differ within events 5-10"
    ]
    assert compare(pure, {**compiled, "transitions": 4}, 5) == ["transitions: pure 3 vs compiled 4"]
    missing = {**compiled, "compiled": False, "core": "pure Python (no compiled build (run make setup))"}
    assert compare(pure, missing, 5) == [
        "no compiled core to compare: pure Python (no compiled build (run make setup))"
    ]


def test_another_checkouts_sources_on_sys_path_run_as_they_are(tmp_path: Path) -> None:
    """A benchmark's baseline (`PYTHONPATH=<other checkout>`) must run that checkout's code, not our build."""
    shutil.copytree(
        ROOT / "segmentation", tmp_path / "segmentation", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {k: v for k, v in os.environ.items() if k != choice.PURE_ENV}
    env["PYTHONPATH"] = str(tmp_path)
    code = (
        "import segmentation.evolution as e, streams.core.choice as c, streams.store.indexes as i;"
        " print(e.__file__, i.__file__, c.describe())"
    )
    run = [sys.executable, "-c", code]
    done = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    where, index, line = done.stdout.split(" ", 2)
    assert where == str(tmp_path / "segmentation" / "evolution.py")
    # this checkout's streams/ beside another core: its sources, never code compiled against our core
    assert index == str(ROOT / "streams" / "store" / "indexes.py")
    assert line.startswith("core: pure Python (")


def test_the_start_up_choice_leaves_no_streams_module_behind() -> None:
    """After the venv's start-up hook, `streams` is importable from any checkout (a benchmark's --baseline):
    the hook must not leave this checkout's package in sys.modules."""
    code = "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] == 'streams'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_only_the_checkouts_own_venv_gets_the_start_up_hook(tmp_path: Path) -> None:
    """Building a benchmark's baseline checkout with this venv must not point this venv at the baseline."""
    main, baseline = tmp_path / "main", tmp_path / "baseline"
    (main / ".venv").mkdir(parents=True)
    baseline.mkdir()
    assert build.venv_is_ours(main / ".venv", main)
    assert not build.venv_is_ours(main / ".venv", baseline)
    assert not build.venv_is_ours(tmp_path / "elsewhere", main)


def test_the_compiled_write_path_reads_no_final_constant_of_a_module_left_uncompiled() -> None:
    """mypyc may fold a `Final` constant of an imported module into the compiled code, where an edit of that
    module would not reach it while the build still looks current (only `segmentation/` and WRITE_PATH are
    digested). So a module of `streams/` that a compiled one imports from is compiled too, or has no Final."""
    compiled = set(choice.WRITE_PATH)
    offenders: list[str] = []
    for path in sorted(compiled):
        tree = ast.parse((ROOT / path).read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("streams"):
                continue
            target = (node.module or "").replace(".", "/")
            module = f"{target}.py" if (ROOT / f"{target}.py").exists() else f"{target}/__init__.py"
            submodules = [
                f"{target}/{a.name}.py" for a in node.names if (ROOT / target / f"{a.name}.py").exists()
            ]
            for imported in (module, *submodules):
                if imported in compiled:
                    continue
                finals = [
                    stmt.target.id
                    for stmt in ast.parse((ROOT / imported).read_text()).body
                    if isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and "Final" in ast.unparse(stmt.annotation)
                ]
                offenders += [f"{path} imports {imported}, which has Final {name}" for name in finals]
    assert offenders == []


def test_a_build_without_a_c_compiler_says_so(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make setup` on a machine without gcc: the reason shown by `segstream version` must name the missing
    compiler. mypyc's compiler lines carry -Werror, so "the last lines mentioning error" were three gcc
    command lines cut at 400 characters, and the one line that said what failed was left out."""
    monkeypatch.delenv(choice.PURE_ENV, raising=False)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-gcc"))  # setuptools compiles with $CC
    manifest = build.build(tmp_path / "out", source, jobs=1, write_path=())
    assert "no-such-gcc' failed: No such file or directory" in str(manifest["error"])


def test_a_failed_build_names_the_command_that_retries_it(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a build failed for want of gcc, installing gcc and running `make setup` again does nothing (its
    manifest is newer than the sources), and `make test` kept refusing the pure core with no way out shown."""
    monkeypatch.delenv(choice.PURE_ENV, raising=False)
    failed = _build_dir(
        tmp_path, source, error="exit 1: error: command 'gcc' failed: No such file or directory"
    )
    assert str(choice._refusal(str(failed), str(source))).endswith("; once fixed, make core")
