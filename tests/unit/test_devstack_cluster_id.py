"""The local stack's KRaft cluster id must be a valid kafka-storage argument on every draw."""

from __future__ import annotations

import base64
from collections.abc import Iterator

from streams.devstack.kafka import new_cluster_id


def test_a_draw_starting_with_a_dash_is_redrawn() -> None:
    # 0xf8 as first byte encodes to "-" in urlsafe base64: the draw CI once failed on.
    draws: Iterator[bytes] = iter([b"\xf8" + bytes(15), bytes(range(16))])
    assert base64.urlsafe_b64encode(b"\xf8" + bytes(15)).startswith(b"-")
    cluster_id = new_cluster_id(lambda: next(draws))
    assert cluster_id == base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()


def test_ids_are_22_characters_of_urlsafe_base64() -> None:
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
