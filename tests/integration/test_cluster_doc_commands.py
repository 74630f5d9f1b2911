"""docs/redis_cluster.md's commands to move the slot of one partition, pasted as written (the template's
placeholders filled in), on a real Redis Cluster.

A customer id may hold a space (any character but a control one, streams/read/reader.py `ID_PATTERN`), so a
partition's slot may hold a key `...:c:John Smith`. The template passed the keys of `CLUSTER GETKEYSINSLOT`
to MIGRATE unquoted: the shell split that key in two, Redis refused the whole MIGRATE (CROSSSLOT: `Smith`
is another slot), nothing moved, and the loop asked again for ever, printing CROSSSLOT; a key holding `*` was
expanded against the files of the current directory."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.crc import key_slot

from tests.integration.slot_migration import Primary, command, move_slot, owner, primaries
from tests.services import Services, wants_cluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not wants_cluster(), reason="moves Redis Cluster slots: SEGSTREAM_TEST_REDIS=cluster"),
]
DOC = Path(__file__).resolve().parents[2] / "docs" / "redis_cluster.md"
IDS = ["plain", "John Smith", "a*", "no\u00a0break", " lead"]


def _template() -> str:
    """The bash block that moves one slot key batch by key batch."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S)
    (block,) = [b for b in blocks if "IMPORTING $SID" in b]
    return str(block)


@pytest.fixture
def slot(services: Services) -> Iterator[tuple[int, list[Primary], list[str]]]:
    unique = uuid.uuid4().hex[:12]
    tag = f"test:{unique}:main:{{test-{unique}-events:3}}"
    keys = [f"{tag}:c:{cid}" for cid in IDS] + [f"{tag}:meta"]
    host, port = services.redis_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    nodes = primaries(host, int(port))
    number = key_slot(keys[0].encode())
    source = owner(nodes, number)
    src = source.client()
    for key in keys:
        src.hset(key, "clock", "1")
    try:
        yield number, nodes, keys
    finally:
        move_slot(nodes, number, nodes[(nodes.index(source) + 1) % len(nodes)])  # ends a half-done move
        move_slot(nodes, number, source)
        src.delete(*keys)
        src.close()


def test_the_documented_slot_move_moves_keys_with_spaces_and_globs(
    slot: tuple[int, list[Primary], list[str]], tmp_path: Path
) -> None:
    number, nodes, keys = slot
    source = owner(nodes, number)
    target = nodes[(nodes.index(source) + 1) % len(nodes)]
    others = " ".join(n.name for n in nodes if n not in (source, target))
    script = _template()
    first = script.splitlines()[0]
    assert first.startswith("SLOT="), first
    script = script.replace(
        first,
        f"SLOT={number} S={source.name} T={target.name}; SID={source.node_id}; TID={target.node_id}",
    ).replace("<other primaries>", others)
    (tmp_path / "a-file").write_text("")  # a glob `a*` would expand to it
    try:
        done = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the documented loop never ended: {str(exc.stdout)[-300:]}") from None
    assert owner(nodes, number) == target, done.stdout[-500:] + done.stderr[-500:]
    dst = target.client()
    try:
        assert int(command(dst, "CLUSTER COUNTKEYSINSLOT", number)) >= len(keys)
        assert all(dst.exists(key) for key in keys)
    finally:
        dst.close()
