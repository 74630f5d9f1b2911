"""Taking a partition as a compare-and-set on its fence.

A claim that only increments the fence is not safe to send twice: when its reply is lost (a dropped
connection) the worker claims again, and if the first request still reaches Redis after the second one (it
travelled on the dead connection), it increments the fence once more and fences the worker out of the
partition it has just claimed; it then stalls until a restart (`FencedStall`). Here each request names the
fence it expects to supersede, so a late one finds the fence moved and changes nothing
(tests/integration/test_claim_late_request.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streams.store.indexes import CLEARED
from streams.store.membership import ORDINALS
from streams.store.weeks import FORMAT, FORMAT_FIELD

ClaimScript = Callable[..., Awaitable[list[bytes | str | int | None]]]


@dataclass(frozen=True)
class Taken:
    """What the claim read from the partition's meta hash, in the same atomic step."""

    fence: int
    offset: int | None
    watermark_us: int | None
    seq: int | None
    ordinals: int | None
    swept_us: int | None  # the last sweep an owner marked before publishing it (streams/worker/sweep_mark.py)


async def take(script: ClaimScript, meta: str, expected: int | None, owner: str) -> Taken:
    """Claim with the fence we last knew (None: unknown); a fence moved since (another claimer, or ours
    whose reply we never read) is read back in the refusal and claimed over at once."""
    guess = "" if expected is None else str(expected)
    while True:
        reply = await script(keys=[meta], args=[guess, owner, ORDINALS, FORMAT_FIELD, FORMAT])
        head = reply[0]
        if head in (b"STALE", "STALE"):
            current = reply[1]
            guess = current.decode() if isinstance(current, bytes) else str(current)
            continue
        padded = [*reply, *[None] * (6 - len(reply))]  # fewer values than asked: the rest are nil
        fence, offset, watermark, seq, ordinals, swept = (_int(v) for v in padded)
        assert fence is not None, "the claim script returns the new fence"
        return Taken(fence, offset, watermark, seq, ordinals, None if swept == CLEARED else swept)


def _int(value: bytes | str | int | None) -> int | None:
    return None if value is None else int(value)
