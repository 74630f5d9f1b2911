"""Redis replies as text: clients here may or may not decode responses, readers want `str` either way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def texts(row: Mapping[Any, Any]) -> dict[str, str]:
    """A hash reply (HGETALL) with its fields and values as text."""
    return {text(k): text(v) for k, v in row.items()}
