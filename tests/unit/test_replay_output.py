"""Replay bookkeeping without services: line numbers of pending records, dead letters that pin no batch (no
traceback cycle), partitions dealt to processes, rejects files merged in line order."""

from __future__ import annotations

import gc
import weakref
from array import array
from pathlib import Path

import orjson

from streams.replay.output import LineIndex
from streams.replay.split import merge_rejects, shares
from streams.topics.deadletter import DeadLetter


def test_line_index_runs_of_offsets() -> None:
    index = LineIndex()
    index.extend(1, 0, array("q", [3, 5]))
    index.extend(1, 2, array("q", [9]))  # contiguous: same run
    index.extend(1, 10, array("q", [40]))  # a gap: a new run
    assert [index.get(1, o) for o in (0, 1, 2, 3, 10)] == [3, 5, 9, None, 40]
    assert index.get(0, 0) is None
    index.clear()
    assert index.get(1, 0) is None


class Batch:
    """Stands for the records and states a real batch holds."""


def _dead_letter_holding(batch: Batch) -> DeadLetter:
    held = [batch]
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("bad line") from inner
    except ValueError as exc:
        dead = DeadLetter("t", 0, 7, None, b"x", exc, "parse")
        held.append(dead)  # type: ignore[arg-type]  # the frame's locals hold the dead letter: a cycle
        return dead


def test_a_dead_letter_frees_its_batch_without_a_collection() -> None:
    gc.disable()
    try:
        batch = Batch()
        alive = weakref.ref(batch)
        dead = _dead_letter_holding(batch)
        del batch
        assert alive() is None, "exception -> traceback -> frame -> locals -> dead letter would pin it"
        assert str(dead.error) == "bad line" and dead.error.__traceback__ is None
        assert dead.error.__cause__ is not None and dead.error.__cause__.__traceback__ is None
    finally:
        gc.enable()


def test_shares_deal_partitions_round_robin() -> None:
    assert shares(4, 2) == [(0, 2), (1, 3)]
    assert shares(4, 3) == [(0, 3), (1,), (2,)]
    assert shares(2, 8) == [(0,), (1,)]
    assert shares(4, 1) == [(0, 1, 2, 3)]


def test_merge_rejects_in_line_order(tmp_path: Path) -> None:
    def row(line: int | None, partition: int, offset: int) -> bytes:
        return orjson.dumps({"line": line, "partition": partition, "offset": offset})

    (tmp_path / "r.part0").write_bytes(row(9, 0, 4) + b"\n" + row(2, 0, 1) + b"\n")
    (tmp_path / "r.part1").write_bytes(row(None, 1, 3) + b"\n" + row(5, 1, 0) + b"\n")
    target = tmp_path / "r"
    parts = [tmp_path / "r.part0", tmp_path / "r.part1", tmp_path / "r.part2"]
    assert merge_rejects(parts, target) == 4
    lines = [orjson.loads(x)["line"] for x in target.read_bytes().splitlines()]
    assert lines == [None, 2, 5, 9]
    assert not any(p.exists() for p in parts)
