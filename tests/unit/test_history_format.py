"""The coded history field: every entry reads back as the transition it was, with its exact published id."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import streams.store
from segmentation.transition import Transition, transition_id
from streams.store.history_format import (
    COMPRESSED,
    DICTIONARY,
    VERSION,
    Entry,
    UnknownHistoryFormat,
    appended,
    decode,
    encode,
    entry_of,
    is_trimmed,
    plain,
)

# COMPRESSED is this dictionary: a field written with it must decompress with it forever. Another dictionary
# needs another version byte (history_format.py), never a new digest here.
_DICTIONARY_SHA256 = "9468d74129a567d8076428c032a7d648bca38dd1872b679ce95e2a6d03af3071"

T0 = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)


def t(
    grid: str, a: str | None, b: str | None, at: datetime, cause: str = "e1", version: str = "v1"
) -> Transition:
    return Transition.create("c9", grid, a, b, at, cause, version, {"rule": "r"})


def sent_back(blob: str) -> list[tuple[str, str | None, str | None, datetime, str, str]]:
    entries, _ = decode(blob)
    return [
        (e.grid, e.from_segment, e.to_segment, e.effective_at, e.cause, e.transition_id("c9"))
        for e in entries
    ]


def as_sent(ts: list[Transition]) -> list[tuple[str, str | None, str | None, datetime, str, str]]:
    return [(x.grid, x.from_segment, x.to_segment, x.effective_at, x.cause, x.id) for x in ts]


def test_every_kind_of_transition_reads_back_with_its_exact_id() -> None:
    ts = [
        t("lifecycle", None, "new", T0, "order-0001"),
        t("rfm", None, "new", T0, "order-0001"),
        t("audience:vip_recent", None, "not_member", T0, "order-0001"),
        t("loyalty", None, "gold", T0, "order-0001"),  # a grid and a segment outside the preset
        t("lifecycle", "new", "at_risk", T0 + timedelta(days=61, microseconds=7), "time"),
        t("lifecycle", "at_risk", "lost", T0 - timedelta(days=3), "late-é-event"),  # time goes back
        t("rfm", "new", "loyal", T0 + timedelta(days=70), "definitions", "2026.12-1"),
        t("loyalty", "gold", None, T0 + timedelta(days=70), "definitions", "2026.12-1"),
        t("value", None, "bronze", T0 + timedelta(days=71), "definitions", "v3"),  # preset grid, new segment
    ]
    blob = appended(None, ts, 64)
    assert blob[0] == COMPRESSED and plain(blob)[0] == VERSION and "\x00" not in blob
    assert sent_back(blob) == as_sent(ts)
    assert decode(blob)[1] is False and not is_trimmed(blob)
    # the cause as hashed: a definitions change names its version, an event's does not
    entries, _ = decode(blob)
    assert [e.key_cause for e in entries[-3:]] == ["definitions@2026.12-1"] * 2 + ["definitions@v3"]
    assert entries[6].transition_id("c9") == transition_id(
        "c9", "rfm", "new", "loyal", T0 + timedelta(days=70), "definitions", "2026.12-1"
    )


def test_a_numbered_definitions_change_reads_back_with_its_id() -> None:
    """A customer's second change on (`definitions_change` > 1) hashes its number: so does its entry."""
    at = T0 + timedelta(days=9)
    ts = [
        Transition.create("c9", "value", "medium", "big", at, "definitions", "v2", {}, 1),
        Transition.create("c9", "value", "big", "medium", at, "definitions", "v1", {}, 2),
        Transition.create("c9", "value", "medium", "big", at, "definitions", "v2", {}, 3),
    ]
    assert len({x.id for x in ts}) == 3
    for blob in (appended(None, ts, 64), encode([entry_of(x) for x in ts], False)):
        assert sent_back(blob) == as_sent(ts)
        assert [e.key_cause for e in decode(blob)[0]] == [
            "definitions@v2",
            "definitions@v1#2",
            "definitions@v2#3",
        ]


def test_appending_batch_by_batch_codes_what_one_batch_would() -> None:
    """A replay and a live worker batch the log differently: their histories must be equal, byte for byte."""
    ts = [t("lifecycle", None, "new", T0), t("rfm", None, "new", T0), t("loyalty", None, "gold", T0)]
    ts += [
        t("lifecycle", "new", "active", T0 + timedelta(days=2), "e2"),
        t("loyalty", "gold", "vip", T0, "e3"),
    ]
    blob: str | None = None
    for batch in (ts[:3], ts[3:4], ts[4:]):  # an event's transitions come in one batch
        blob = appended(blob, batch, 64)
    assert blob is not None and blob == appended(None, ts, 64) == encode(decode(blob)[0], False)
    assert sent_back(blob) == as_sent(ts)
    one_by_one = appended(None, ts[:1], 64)
    for x in ts[1:]:  # an event's moves split over two appends join its group again: the same code
        one_by_one = appended(one_by_one, [x], 64)
    assert one_by_one == blob


def test_the_oldest_entries_are_dropped_at_the_cap_and_the_history_says_so() -> None:
    ts = [t("lifecycle", None, "new", T0)] + [
        t("lifecycle", a, b, T0 + timedelta(days=n), f"e{n}")
        for n, (a, b) in enumerate([("new", "active"), ("active", "at_risk"), ("at_risk", "active")] * 3, 1)
    ]
    blob = appended(None, ts[:3], 4)
    assert not is_trimmed(blob)
    blob = appended(blob, ts[3:5], 4)  # 5 > 4: the first goes
    assert is_trimmed(blob) and sent_back(blob) == as_sent(ts[1:5])
    blob = appended(blob, ts[5:], 4)
    assert sent_back(blob) == as_sent(ts[-4:]) and decode(blob)[1] is True
    one_batch = appended(None, ts, 4)  # more than the cap in one batch: trimmed at once
    assert one_batch == blob


def test_an_order_import_customer_costs_a_few_bytes_per_transition() -> None:
    """A new customer's first order moves the 14 default grids, its second (35 days later) 5 of them."""
    grids = [
        ("lifecycle", "new"), ("rfm", "new"), ("value", "low"), ("email", "no_email"), ("channel", "web"),
        ("age_band", "unknown"), ("region", "unknown"), ("satisfaction", "unknown"), ("category", "apparel"),
        ("promotion", "full_price"), ("audience:vip_recent", "not_member"),
        ("audience:win_back", "not_member"), ("audience:unhappy_recent_buyers", "not_member"),
        ("clv", "tier_1"),
    ]  # fmt: skip
    first = [t(g, None, s, T0, "shopify-order-5550001") for g, s in grids]
    second_at = T0 + timedelta(days=35, hours=3)
    second = [
        t("lifecycle", "new", "active", second_at, "shopify-order-5550002"),
        t("rfm", "new", "promising", second_at, "shopify-order-5550002"),
        t("value", "low", "medium", second_at, "shopify-order-5550002"),
        t("category", "apparel", "mixed", second_at, "shopify-order-5550002"),
        t("clv", "tier_1", "tier_2", second_at, "shopify-order-5550002"),
    ]
    blob = appended(appended(None, first, 64), second, 64)
    assert sent_back(blob) == as_sent(first + second)
    assert len(plain(blob).encode()) == 129  # 6.8 bytes per transition (the JSON list spent ~220 each)
    assert len(blob.encode("utf-8", "surrogateescape")) <= 95  # stored compressed (91 with zstd 1.5.7)


def test_a_field_stored_uncompressed_is_read_and_appended_to() -> None:
    """Fields written up to 65f8a17 hold the coded text itself: read as they are, rewritten compressed."""
    ts = [t("lifecycle", None, "new", T0), t("rfm", None, "new", T0)]
    text = plain(appended(None, ts, 64))
    assert text[0] == VERSION and decode(text) == decode(appended(None, ts, 64))
    later = [t("lifecycle", "new", "active", T0 + timedelta(days=3), "e2")]
    blob = appended(text, later, 64)
    assert blob[0] == COMPRESSED and sent_back(blob) == as_sent(ts + later) and not is_trimmed(text)


def test_the_dictionary_is_the_one_compressed_fields_were_written_with() -> None:
    data = (Path(streams.store.__file__).parent / DICTIONARY).read_bytes()
    assert hashlib.sha256(data).hexdigest() == _DICTIONARY_SHA256


def test_a_field_of_another_format_is_refused_with_the_fix() -> None:
    blob = plain(appended(None, [t("lifecycle", None, "new", T0)], 64))
    for bad in ("", "\x03" + blob[1:], '[["lifecycle"]]'):
        with pytest.raises(UnknownHistoryFormat, match=r"version byte|empty field"):
            decode(bad)
    for bad in (COMPRESSED + blob[1:], COMPRESSED, COMPRESSED + "\udcfd" * 9):
        with pytest.raises(UnknownHistoryFormat, match="damaged compressed value"):
            decode(bad)
    with pytest.raises(UnknownHistoryFormat, match="sections missing"):
        decode(VERSION + "  ")
    with pytest.raises(UnknownHistoryFormat, match="header"):
        decode(VERSION + "\x1e\x1e\x1e")
    with pytest.raises(UnknownHistoryFormat, match="body"):
        decode(blob[:-1])
    with pytest.raises(UnknownHistoryFormat, match="body"):
        decode(blob[:-1] + "\x10")
    with pytest.raises(UnknownHistoryFormat, match="header says"):
        decode(blob[:2] + '"' + blob[3:])  # one entry more in the header than in the body


def test_names_with_control_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="control character"):
        appended(None, [t("lifecycle", None, "a\x1fb", T0)], 64)
    with pytest.raises(ValueError, match="control character"):
        appended(None, [t("lifecycle", None, "new", T0, "\x02x")], 64)
    with pytest.raises(ValueError, match="control character"):
        encode([Entry("g\x1e", None, "x", 0, "e")], False)
