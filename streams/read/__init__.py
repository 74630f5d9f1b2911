"""The read side: the read client (profile, history, counts, KPIs, members), the HTTP API and its OpenAPI
document.

The documented import path for users: `from streams.read import SegmentReader, SyncReader`.
"""

from streams.read.history import History, HistoryEntry, SegmentAt
from streams.read.profile import CustomerProfile, Kpis, MembersPage
from streams.read.reader import BadRequest, NotFound, SegmentReader
from streams.read.sync_reader import SyncReader

__all__ = [
    "BadRequest",
    "CustomerProfile",
    "History",
    "HistoryEntry",
    "Kpis",
    "MembersPage",
    "NotFound",
    "SegmentAt",
    "SegmentReader",
    "SyncReader",
]
