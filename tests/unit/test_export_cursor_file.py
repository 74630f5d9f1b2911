"""A cursor file that is not text (damaged, or another file named by mistake) is one line and exit 2, as a
garbled text cursor is: it was a traceback (review of 7 December 2026). Refused before Redis is reached."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_cursor_file_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cursor"
    bad.write_bytes(b"\xff\xfe garbage")
    env = {**os.environ, "SEGSTREAM_REDIS_URL": "redis://127.0.0.1:1/0"}  # never reached
    env.pop("SEGSTREAM_NAMESPACE", None)
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "export", "lifecycle", "at_risk", "--cursor-file", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"segstream export: {bad}: cannot be read as a cursor")
