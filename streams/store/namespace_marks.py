"""The building mark's fields, and its acceptance: the one way a marked namespace becomes one workers run on.

Why: a `replay --into-active` that stopped before its end leaves its mark on the *active* namespace, as
`promote --allow-incomplete` leaves one on a namespace it makes active. Workers must write on the second (the
operator chose it as it is) and refuse the first (live events on top of part of a log). `promote
--allow-incomplete` therefore stamps the mark `accepted`; a worker runs on a marked namespace only when it is
the active one and its mark is stamped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from streams.store.keys import building_key

ACCEPTED = "accepted"

# The mark stamped only if it is still the one the promote looked at: a replay or drop that marked the
# namespace since (its lease is looked at again after the pointer's SET, `namespaces.promote`) keeps its own.
_STAMP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
"""


def mark_fields(note: str) -> dict[str, Any]:
    """A mark's JSON object (`holder_note`); empty for a mark of another shape (an earlier release's)."""
    try:
        fields = orjson.loads(note)
    except orjson.JSONDecodeError:
        return {}
    return fields if isinstance(fields, dict) else {}


async def accept(client: aioredis.Redis, prefix: str, name: str, seen: bytes | str | None) -> bytes | None:
    """Stamp `name`'s mark accepted as it is (the time kept in it), if it is still `seen` (the mark the
    promote looked at): a replay that marked the namespace since keeps its own mark, unstamped. Returns the
    stamped mark (what `promote` takes back if it is refused after), None if nothing was stamped."""
    if seen is None:
        return None
    raw = seen.encode() if isinstance(seen, str) else bytes(seen)
    fields = mark_fields(raw.decode(errors="replace"))
    if ACCEPTED in fields:
        return None
    when = datetime.now(UTC).isoformat(timespec="seconds")
    stamped = orjson.dumps((fields or {"mark": raw.decode(errors="replace")}) | {ACCEPTED: when})
    done = await client.register_script(_STAMP)(keys=[building_key(prefix, name)], args=[raw, stamped])
    return stamped if done else None
