"""Redis replies as text: clients here may or may not decode responses, readers want `str` either way.

Undecodable bytes (the packed `state` of a customer hash) become lone surrogates (`surrogateescape`), as with
a client made with `decode_responses=True, encoding_errors="surrogateescape"` (`TEXT_OPTIONS`): lossless."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TEXT_OPTIONS: dict[str, Any] = {"decode_responses": True, "encoding_errors": "surrogateescape"}


def text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def texts(row: Mapping[Any, Any]) -> dict[str, str]:
    """A hash reply (HGETALL) with its fields and values as text."""
    return {text(k): text(v) for k, v in row.items()}
