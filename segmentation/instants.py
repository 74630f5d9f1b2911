"""Event-time instants: one canonical ISO 8601 text (UTC, `+00:00`) for ids and storage; due instants.

Transition ids hash the effective time, so the same instant must always print the same way, whatever
offset the producer used; hence everything is normalised to UTC before formatting.

A due instant past the last one `datetime` holds (9999-12-31) is never reached (`after`): a replay applies
events whatever their date (sentinel dates such as 9999-11-15 are common in exports), and a stage's end or
a window's close computed from one would raise OverflowError, dead-lettering every later event of the
customer and stopping every sweep of its partition.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

__all__ = ["EPOCH", "after", "day_text", "iso", "parse_iso", "to_us"]


_TEXTS: dict[datetime, str] = {}  # memo: formatting costs ~0.6 µs and the same instants recur
_TEXTS_LIMIT = 65_536


def iso(instant: datetime) -> str:
    """Canonical text of an aware instant: UTC, microseconds only when non-zero."""
    text = _TEXTS.get(instant)
    if text is None:
        if len(_TEXTS) >= _TEXTS_LIMIT:
            _TEXTS.clear()
        text = _TEXTS[instant] = instant.astimezone(UTC).isoformat()
    return text


_DAYS: dict[date, str] = {}  # memo: `date.isoformat` goes through printf (~0.3 µs); an import names ~550 days


def day_text(day: date) -> str:
    """`day.isoformat()`, memoised: KPI days, periods and day moves format a day per transition."""
    text = _DAYS.get(day)
    if text is None:
        if len(_DAYS) >= _TEXTS_LIMIT:
            _DAYS.clear()
        text = _DAYS[day] = day.isoformat()
    return text


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(moment: datetime) -> int:
    """Epoch microseconds, exact (no float): the store's scores, watermarks and coded history times."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_iso(text: str) -> datetime:
    """Inverse of `iso`; refuses naive times, which would make recency depend on the reader's zone."""
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError(f"naive timestamp {text!r}: an offset is required")
    return instant.astimezone(UTC)


def after(at: datetime, delta: timedelta) -> datetime | None:
    """`at + delta`, or None when that is past `datetime.max` (never reached)."""
    try:
        return at + delta
    except OverflowError:
        return None
