"""Redis key layout. Every key of one Kafka partition shares a hash tag, so one Lua script may touch the
partition's customers, its offset and its due index together, also on Redis Cluster."""

from __future__ import annotations

from dataclasses import dataclass


def lease_key(prefix: str, name: str) -> str:
    """The lease of a replay or drop rewriting namespace `name` (streams/store/namespace_lease.py), outside
    every namespace (`namespace` is a reserved name): a drop never removes it. The name is its hash tag, so
    that its holder key (`lease_key(...) + ":holder"`) is in its slot on a Redis Cluster."""
    return f"{prefix}:namespace:lease:{{{name}}}"


def building_key(prefix: str, namespace: str) -> str:
    """`KeySpace.building`, for what knows a namespace but no events topic (`namespaces.promote`)."""
    return f"{prefix}:{namespace}:building"


@dataclass(frozen=True)
class KeySpace:
    prefix: str
    namespace: str
    topic: str

    def _tag(self, partition: int) -> str:
        return f"{self.prefix}:{self.namespace}:{{{self.topic}:{partition}}}"

    def customer(self, partition: int, customer_id: str) -> str:
        """Hash with the customer's state, segments and freshness (fields: see README)."""
        return f"{self._tag(partition)}:c:{customer_id}"

    def partition_meta(self, partition: int) -> str:
        """Hash: `offset` last applied, `watermark` max event time (epoch µs), `fence` owner token."""
        return f"{self._tag(partition)}:meta"

    def erased(self, partition: int) -> str:
        """Hash: digest of an erased customer's id -> epoch µs of its erasure (streams/store/erasures.py)."""
        return f"{self._tag(partition)}:erased"

    def due(self, partition: int) -> str:
        """Sorted set: each due chunk (`due_chunk`) scored by its earliest due time (store/due_index.py)."""
        return f"{self._tag(partition)}:due"

    def due_chunk(self, partition: int, chunk: int | str) -> str:
        """Sorted set: `<ordinal % 128>` scored by the epoch µs of that customer's next time-driven change,
        for the ordinals of `chunk` (as `ordinals`); chunk `_`: by customer id, customers without ordinal."""
        return f"{self._tag(partition)}:q:{chunk}"

    def customer_pattern(self, partition: int) -> str:
        return f"{self._tag(partition)}:c:*"

    # -- read-side indexes and history, kept by the same commit script (see docs/read_side.md) ----------
    def members(self, partition: int, grid: str, segment: str) -> str:
        """Bitmap: bit `ordinal` set while that customer is in `segment` of `grid` (store/membership.py)."""
        return f"{self._tag(partition)}:m:{grid}:{segment}"

    def ordinals(self, partition: int, chunk: int) -> str:
        """Hash: `<ordinal % 128>` -> customer id for the ordinals `chunk * 128` .. `chunk * 128 + 127`."""
        return f"{self._tag(partition)}:o:{chunk}"

    def kpis(self, partition: int, grid: str) -> str:
        """Hash: `<segment>:customers`, `<segment>:revenue_minor`, `<segment>:orders` (partition's share)."""
        return f"{self._tag(partition)}:k:{grid}"

    def moves(self, partition: int, grid: str, week: str) -> str:
        """Hash: `<from>><to>:<weekday>` transitions per (from, to) pair and UTC day of the week ('-': no
        segment)."""
        return f"{self._tag(partition)}:t:{grid}:{week}"

    def segment_days(self, partition: int, grid: str, week: str) -> str:
        """Hash: per-segment KPI counters per UTC day of the week (`<segment>:<metric>:<weekday>`)."""
        return f"{self._tag(partition)}:d:{grid}:{week}"

    def segment_periods(self, partition: int, grid: str, year: str) -> str:
        """Hash: per-segment KPI counters per retention period of the year (`<segment>:retained:<period>` ...,
        coded: `day_names.period_field`; the year: the period name's first four characters, `2026` for
        `2026-03` and `2026-W10`)."""
        return f"{self._tag(partition)}:r:{grid}:{year}"

    def weeks(self, partition: int) -> str:
        """Set: every ISO week with `d:`, `f:` or `t:` counters in the partition (readers need no scan)."""
        return f"{self._tag(partition)}:w"

    def crosstab(self, partition: int, pair: str) -> str:
        """Hash: `<segment a>|<segment b>:customers|revenue_minor|orders` for the grid pair `<a>|<b>`."""
        return f"{self._tag(partition)}:x:{pair}"

    def definitions(self) -> str:
        """Hash: `version` (and `yaml` after `definitions apply`) of the definitions the namespace was built
        with; written by replay and apply, read by a worker before it follows a promote."""
        return f"{self.prefix}:{self.namespace}:definitions"

    def definitions_log(self) -> str:
        """List, oldest first: one JSON entry per `definitions apply` or replay that set the namespace's
        definitions (version, when, by whom, moves per grid): streams/store/definitions_log.py."""
        return f"{self.prefix}:{self.namespace}:definitions:log"

    def building(self) -> str:
        """String (JSON: source, started, host, pid) while `segstream replay` builds the namespace, deleted
        once the replay recorded its definitions. Left behind: the replay did not finish (promote refuses)."""
        return building_key(self.prefix, self.namespace)

    def metrics(self) -> str:
        """Hash (no hash tag, one key per namespace): the workers' published counters and lag."""
        return f"{self.prefix}:{self.namespace}:metrics"
