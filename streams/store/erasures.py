"""Erasure tombstones: each erased customer's erasure time, kept under a digest of its id.

Why: an erased customer's hash is deleted whole (docs/privacy.md), so without a trace an event dated before
the erasure that arrives after it (a producer resending, a late event, a replayed log) would start a new
history with the erased data. The core ignores such events when the customer's state says when it was
erased (`CustomerState.erased_at`); the store keeps that instant in the partition's `erased` hash, field =
`digest(customer_id)`, value = epoch µs, written by the erasure's own commit (an index op) and read back by
`load` for a customer that has no hash, as a blank state with `erased_at`.

The id itself is not kept: the field is a 128-bit BLAKE2b digest, so the hash lists no customer id. It is
a pseudonym, not anonymity (an id that can be guessed can be checked against it): docs/privacy.md says so.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from hashlib import blake2b

from segmentation import CustomerState
from segmentation.state_mapping import STATE, packed_text

__all__ = ["digest", "tombstone_row", "tombstones"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PERSON = b"segstream-erased"  # the digest's personalisation: these digests match no other of ours


def digest(customer_id: str) -> str:
    """The tombstone's field for a customer id (hex)."""
    return blake2b(customer_id.encode("utf-8", "surrogateescape"), digest_size=16, person=_PERSON).hexdigest()


def tombstone_row(customer_id: str, erased_us: int) -> dict[str, str]:
    """What `load` answers for an erased customer without a hash: the blank state erased at that instant, as
    a stored row of `state` alone (`stored_state.is_tombstone`: in no segment, no fields to diff)."""
    erased_at = _EPOCH + timedelta(microseconds=erased_us)
    return {STATE: packed_text(CustomerState.new(customer_id)._replace(erased_at=erased_at))}


def tombstones(
    customer_ids: Iterable[str], erased: Iterable[bytes | str | None], found: Container[str]
) -> Iterator[tuple[str, dict[str, str]]]:
    """The tombstone rows of the customers without a hash (not in `found`) whose digest had a value in
    `erased` (an HMGET of their digests, in the same order)."""
    for cid, us in zip(customer_ids, erased, strict=True):
        if us is not None and cid not in found:
            yield cid, tombstone_row(cid, int(us))
