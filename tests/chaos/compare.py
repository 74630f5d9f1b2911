"""What a scenario checks: the worker's namespace against the reference key by key, the transitions topic
against the reference's ids, and the dead letters against the replay's rejects."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from streams.settings import Settings
from tests.integration.replay_helpers import dump_namespace

# Meta fields that depend on who committed and how often, not on the log: the owner token, the commit
# counter and the sweep mark (`sweeping`, and `swept` of earlier releases, streams/worker/sweep_mark.py: a
# worker sweeps where its batches happen to end). Everything else (offset, watermark, every customer field
# including `_offset`) must be equal.
META_SKIP = ("fence", "seq", "owner", "swept", "sweeping")


def namespace_state(
    settings: Settings, namespace: str, skip_meta: tuple[str, ...] = META_SKIP
) -> dict[str, Any]:
    dump = dump_namespace(settings, namespace)
    for key, value in dump.items():
        if key.endswith(":meta") and isinstance(value, dict):
            dump[key] = {k: v for k, v in value.items() if k not in skip_meta}
    return dump


def _kind(key: str) -> str:
    tail = key.split("}:", 1)[-1]
    kinds = {
        "c": "customer", "h": "history", "m": "membership", "o": "ordinal map", "q": "due chunk", "k": "kpi",
        "f": "flow",
    }  # fmt: skip
    return kinds.get(tail.split(":", 1)[0], tail.split(":", 1)[0])


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def state_differences(reference: dict[str, Any], got: dict[str, Any], examples: int = 3) -> list[str]:
    """Human summary per kind of key: missing, extra, different (with the first fields that differ)."""
    by_kind: dict[str, dict[str, list[str]]] = {}
    for key in sorted(reference.keys() | got.keys()):
        ref, mine = reference.get(key), got.get(key)
        if ref == mine:
            continue
        kind = _kind(key)
        name = key.split("}:", 1)[-1]
        bucket = by_kind.setdefault(kind, {"missing": [], "extra": [], "differ": []})
        if mine is None:
            bucket["missing"].append(name)
        elif ref is None:
            bucket["extra"].append(name)
        elif isinstance(ref, dict) and isinstance(mine, dict):
            fields = sorted(f for f in ref.keys() | mine.keys() if ref.get(f) != mine.get(f))
            shown = ", ".join(
                f"{f} ref={_short(ref.get(f), 30)} got={_short(mine.get(f), 30)}" for f in fields[:2]
            )
            bucket["differ"].append(f"{name} [{len(fields)} fields: {shown}]")
        else:
            bucket["differ"].append(f"{name} [ref={_short(ref)} got={_short(mine)}]")
    out = []
    for kind, bucket in by_kind.items():
        for what, names in bucket.items():
            if names:
                out.append(f"{len(names)} {kind} keys {what}: " + "; ".join(names[:examples]))
    return out


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every record of the topic up to its end offsets now (read_committed)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        records: list[Any] = []
        import time

        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for batch in consumer.poll(timeout_ms=500).values():
                records += batch
        return records
    finally:
        consumer.close()


def transition_ids(bootstrap: str, topic: str) -> list[str]:
    return [str(orjson.loads(r.value)["id"]) for r in read_topic(bootstrap, topic)]


def dead_letter_origins(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    out = []
    for r in read_topic(bootstrap, topic):
        headers = {k: v.decode() for k, v in r.headers or ()}
        out.append((int(headers["__connect.errors.partition"]), int(headers["__connect.errors.offset"])))
    return out


def rejected_origins(rejects_file: Path) -> list[tuple[int, int]]:
    if not rejects_file.exists():
        return []
    rows = [orjson.loads(line) for line in rejects_file.read_bytes().splitlines() if line.strip()]
    return [(int(r["partition"]), int(r["offset"])) for r in rows]


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return not self.problems


def compare_ids(reference: list[str], got: list[str], verdict: Verdict, examples: int = 3) -> None:
    ref = set(reference)
    if len(ref) != len(reference):
        verdict.problems.append(f"HARNESS: the reference published {len(reference) - len(ref)} ids twice")
    mine = Counter(got)
    missing = sorted(ref - mine.keys())
    extra = sorted(mine.keys() - ref)
    if missing:
        verdict.problems.append(
            f"{len(missing)} reference transition ids missing: {', '.join(missing[:examples])}"
        )
    if extra:
        verdict.problems.append(
            f"{len(extra)} transition ids not in the reference: {', '.join(extra[:examples])}"
        )
    duplicated = sum(n - 1 for n in mine.values() if n > 1)
    if duplicated:
        verdict.info.append(f"{duplicated} redelivered transitions (same id, allowed)")


def compare_dead_letters(
    expected: list[tuple[int, int]], got: list[tuple[int, int]], verdict: Verdict, examples: int = 3
) -> None:
    want, have = set(expected), set(got)
    if want - have:
        lost = sorted(want - have)
        verdict.problems.append(
            f"dead letters: {len(have)} distinct origins, expected {len(want)}; missing "
            + ", ".join(f"p{p}@{o}" for p, o in lost[:examples])
        )
    if have - want:
        extra = sorted(have - want)
        verdict.problems.append(
            f"{len(extra)} unexpected dead letters: " + ", ".join(f"p{p}@{o}" for p, o in extra[:examples])
        )
    if len(got) > len(have):
        verdict.info.append(f"{len(got) - len(have)} dead letters published twice (allowed)")
