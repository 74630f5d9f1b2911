"""One rule, at start-up and on a promote, for writing into a namespace built with other definitions."""

from __future__ import annotations

import pytest

from streams.worker.namespace_follow import DefinitionsMismatch, definitions_rule


def test_a_namespace_without_a_recorded_version_takes_the_workers() -> None:
    assert definitions_rule("ns", None, "v1", adopt=False) == "v1"


def test_the_same_version_records_nothing() -> None:
    assert definitions_rule("ns", "v1", "v1", adopt=False) is None


def test_another_version_is_refused_unless_adopted() -> None:
    with pytest.raises(DefinitionsMismatch, match="built with definitions 'v2' and this worker runs 'v1'"):
        definitions_rule("ns", "v2", "v1", adopt=False)
    assert definitions_rule("ns", "v2", "v1", adopt=True) == "v1"
