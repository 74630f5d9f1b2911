"""Why a customer is in each of its current segments, as of its clock: derived from the state on read.

The stored history keeps no `why` (storage format 2); the transitions topic carries every transition's own.
For the current segments the core recomputes it from the state and the definitions it was built with, with
the same explainers that fill a transition's `why` (so it is the why of a move made at the clock).
"""

from __future__ import annotations

from segmentation.audiences import PREFIX
from segmentation.definitions import Definitions
from segmentation.reevaluation import SEG, _explain
from segmentation.state import CustomerState

__all__ = ["current_why"]


def current_why(state: CustomerState, definitions: Definitions) -> dict[str, dict[str, str]]:
    """grid -> the why of the customer's segment in it, for every grid where it has one; empty when the state
    has no clock yet or was built with other definitions (their rules are not these)."""
    clock = state.clock
    if clock is None or state.definitions_version != definitions.version:
        return {}
    out: dict[str, dict[str, str]] = {}
    for grid in definitions.grid_segments:
        if grid.startswith(PREFIX):
            continue
        segment = state[SEG[grid]]
        if isinstance(segment, str) and segment:
            out[grid] = _explain(grid, state, definitions, clock, segment)
    for name, segment in state.audiences:
        if segment:
            out[PREFIX + name] = _explain(PREFIX + name, state, definitions, clock, segment)
    return out
