"""What a customer state remembers of an event id to recognise a duplicate: the id, or a digest of a long one.

The state keeps the last `recent_event_ids` (default 64) keys. Producers often use UUIDs (36 characters): 64
of them made the de-duplication window ~2.5 KB of every customer hash, half its memory. An id longer than
11 characters is remembered as 12 base64url characters of its 72-bit BLAKE2b digest instead: shorter ids are
kept as they are, so the two kinds never collide (different lengths), and two long ids of one customer
collide with probability ~64 / 2^72 per event, far below any hardware error rate.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

__all__ = ["SHORT_ID", "duplicate_key"]

SHORT_ID: Final = 11  # ids up to this length are their own key


def duplicate_key(event_id: str) -> str:
    """The key remembered for `event_id` (deterministic across processes and machines)."""
    if len(event_id) <= SHORT_ID:
        return event_id
    digest = hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")
