"""What a customer state remembers of an event id to recognise a duplicate: a 9-byte key per id.

The state keeps the last `recent_event_ids` (default 64) keys, concatenated in one bytes value (the
*window*, `CustomerState.recent_ids`), oldest first. Every key is 9 bytes, so the window is a plain array:
the duplicate check is one `bytes.find` over contiguous memory (a hit counts only at a key boundary), and
remembering an id is one slice and one concatenation.

- An id of at most 8 UTF-8 bytes is kept as itself: its length (0-8) then the id, zero-padded.
- A longer id (a UUID is 36 characters) is kept as its 72-bit BLAKE2b digest, whose first byte is moved
  above 8 when it falls in 0-8, so a digest never equals a kept id. Two long ids of one customer collide
  with probability ~64 / 2^72 per event, far below any hardware error rate.

Why bytes and not text: storage format 4 kept the window as a string of 12-character base64 digests
between separators (~13 bytes an id, ~840 of an active customer's ~1,150-byte state). Its digest was
base64-encoded for every event, and the window was the bulk of what zstd compressed at every write
(incompressible, ~4 µs a write); the binary window is written beside the compressed state instead
(`state_codec`), 9 bytes an id.

`duplicate_key` is the text key of an order id (`RecentOrder.key`, which refunds look up): kept as is.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

__all__ = ["KEY_SIZE", "SHORT_ID", "duplicate_key", "event_key", "key_text", "remember", "seen", "trim"]

SHORT_ID: Final = 11  # order ids up to this length are their own key
KEY_SIZE: Final = 9  # bytes per remembered event id
_KEPT: Final = KEY_SIZE - 1  # an event id of at most this many UTF-8 bytes is kept as itself
_PAD: Final = bytes(KEY_SIZE)


def duplicate_key(event_id: str) -> str:
    """The text key of an order id: the id, or a 12-character digest of a long one (deterministic across
    processes and machines)."""
    if len(event_id) <= SHORT_ID:
        return event_id
    digest = hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def event_key(event_id: str) -> bytes:
    """The 9-byte key remembered for `event_id` (deterministic across processes and machines)."""
    raw = event_id.encode("utf-8", "surrogatepass")
    size = len(raw)
    if size <= _KEPT:
        return bytes((size,)) + raw + _PAD[: _KEPT - size]
    digest = hashlib.blake2b(raw, digest_size=KEY_SIZE).digest()
    if digest[0] > _KEPT:
        return digest
    return bytes((digest[0] + KEY_SIZE,)) + digest[1:]


def key_text(key: bytes) -> str:
    """How readers see a key: the id kept as itself, else the key as 12 base64url characters (a digest; or
    a damaged kept id, shown rather than refused: the window only ever answers "seen before?")."""
    size = key[0]
    if size <= _KEPT and not any(key[1 + size :]):
        try:
            return key[1 : 1 + size].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            pass
    return base64.urlsafe_b64encode(key).decode("ascii")


def seen(window: bytes, key: bytes) -> bool:
    """Whether `window` holds `key` (at a key boundary: a key's bytes may straddle two others)."""
    at = window.find(key)
    while at >= 0:
        if at % KEY_SIZE == 0:
            return True
        at = window.find(key, at + 1)
    return False


def remember(window: bytes, key: bytes, limit: int) -> bytes:
    """`window` with `key` appended, the oldest keys beyond `limit` forgotten."""
    keep = (limit - 1) * KEY_SIZE
    if keep <= 0:
        return key if limit >= 1 else b""
    if len(window) > keep:
        window = window[len(window) - keep :]
    return window + key


def trim(window: bytes, limit: int) -> bytes:
    """The `limit` most recent keys of `window`."""
    size = max(0, limit) * KEY_SIZE
    return window[len(window) - size :] if len(window) > size else window
