"""`replay --until` and `--since`: an RFC 3339 time with its offset, or the one line that refuses it."""

from __future__ import annotations

from datetime import UTC, datetime


def time_flag(flag: str, raw: str | None) -> datetime | str | None:
    """The flag's time in UTC (None when not given), or the reason it is refused (exit 2). A time without
    offset is refused: read as UTC, `--since 2026-12-01` from a shell at UTC+2 would skip two hours and
    store them as applied. A time with no UTC instant (year 1 east of UTC, 9999 west of it) is refused too."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
    except ValueError:
        return f"{flag} {raw!r} is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z)"
    if moment.tzinfo is None:
        return f"{flag} {raw!r} has no UTC offset (e.g. 2026-12-01T00:00:00Z or 2026-12-01T00:00:00+02:00)"
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return f"{flag} {raw!r} is outside the years 1-9999 once converted to UTC"
