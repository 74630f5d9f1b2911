"""A round trip's commands packed by hiredis are the bytes redis-py's own packer makes, for every argument a
caller may give (texts with lone surrogates, which the store's clients encode with `surrogateescape`, bools,
floats, big ints, names of two words), or the same refusal: Redis must never receive anything else."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection

from streams.store.round_trips import packed


def _view(data: bytes) -> memoryview:
    return memoryview(data)


ARGUMENT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF), min_size=1, max_size=3),
    st.binary(max_size=40),
    st.binary(min_size=7000, max_size=9000),  # beyond redis-py's buffer cutoff: sent as its own chunk
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.binary(max_size=10).map(_view),
)
COMMAND = st.tuples(
    st.sampled_from(["HGETALL", "EVALSHA", "HMGET", "CONFIG GET", b"HGETALL", b"CONFIG GET"]),
    st.lists(ARGUMENT, max_size=6),
)


def _outcome(pack: Any, conn: Connection, commands: list[tuple[Any, ...]]) -> bytes | str:
    try:
        out = pack(conn, commands) if pack is packed else conn.pack_commands(commands)
    except Exception as exc:  # the same refusal: same type
        return type(exc).__name__
    return out if isinstance(out, bytes) else b"".join(bytes(part) for part in out)


@pytest.mark.parametrize("errors", ["surrogateescape", "strict"])
@given(commands=st.lists(COMMAND, min_size=1, max_size=5))
def test_hiredis_packs_what_redis_py_packs(errors: str, commands: list[tuple[str, list[Any]]]) -> None:
    conn = Connection(decode_responses=True, encoding_errors=errors)
    flat = [(name, *args) for name, args in commands]
    assert _outcome(packed, conn, flat) == _outcome(None, conn, flat)


def test_the_store_commands_go_to_hiredis() -> None:
    """Texts, bytes and ints only, as the store sends: one bytes object, not redis-py's list of chunks."""
    conn = Connection(decode_responses=True, encoding_errors="surrogateescape")
    commands = [("EVALSHA", "a" * 40, 1, "ss:{e:0}:p", b"\x00\xff" * 5000, 7), ("HGETALL", "ss:{e:0}:c:é")]
    out = packed(conn, commands)
    assert isinstance(out, bytes)
    assert out == b"".join(conn.pack_commands(commands))
