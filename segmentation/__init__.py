"""segstream's pure segmentation core: events in, customer state and segment transitions out.

No I/O, no wall clock: time is always the event time. See docs/semantics.md.
"""

from segmentation.config_reading import DefinitionsError
from segmentation.definitions import Definitions
from segmentation.events import Event, InvalidEvent, parse_event
from segmentation.evolution import advance, apply, next_due, resegment
from segmentation.limits import AmountAboveLimit, EventTooEarly
from segmentation.money import UnknownCurrency
from segmentation.recent_orders import OrderAlreadyCounted
from segmentation.state import CustomerState
from segmentation.transition import Outcome, Transition

__all__ = [
    "AmountAboveLimit",
    "CustomerState",
    "Definitions",
    "DefinitionsError",
    "Event",
    "EventTooEarly",
    "InvalidEvent",
    "OrderAlreadyCounted",
    "Outcome",
    "Transition",
    "UnknownCurrency",
    "advance",
    "apply",
    "next_due",
    "parse_event",
    "resegment",
]
