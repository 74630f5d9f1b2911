"""Transitions on the wire: a CloudEvents 1.0 structured JSON envelope, keyed by customer id."""

from __future__ import annotations

import orjson

from segmentation.transition import NO_WHY, Transition

SOURCE = "urn:segstream"
TYPE = "io.segstream.segment.transition.v1"


def transition_event(transition: Transition) -> bytes:
    """The CloudEvents `id` is the transition id, so a redelivered transition is recognisable."""
    if transition.why is NO_WHY:  # applied with explain=False (a replay that publishes nothing): a bug
        raise ValueError(
            f"transition {transition.customer_id}/{transition.grid} at {transition.effective_at} has no why"
            " and no id: it was applied without explain=True"
        )
    data = transition.to_dict()
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": transition.id,
            "source": SOURCE,
            "type": TYPE,
            "subject": transition.customer_id,
            "time": data["effective_at"],
            "datacontenttype": "application/json",
            "data": data,
        }
    )
