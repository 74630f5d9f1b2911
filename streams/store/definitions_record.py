"""The definitions version each namespace records (`<prefix>:<ns>:definitions`), and after a lazy adoption
(SEGSTREAM_ADOPT_DEFINITIONS=true) which of its partitions still hold customers of the earlier version.

Why the second part: a customer with no event is moved only by a sweep, and the due index names it at the
time its *earlier* definitions set. Definitions that bring a change earlier would move it late, and never
where the earlier ones set no time. So the first worker that claims a partition after an adoption walks
its customers once (`streams/worker/realign.py`) and records here that it is done."""

from __future__ import annotations

import secrets
from typing import Protocol

import redis.asyncio as aioredis

from streams.store.keys import KeySpace
from streams.store.replies import text
from streams.store.stored_state import StoredFormatError

PARTITIONS = "partitions"  # the SEGSTREAM_TOPIC_PARTITIONS it was built for (`partition_count_conflict`)
VERSION = "version"  # the definitions version the namespace holds
BORN = "born"  # a random token set with the first PARTITIONS: this build of the namespace, not its name
REALIGN = "realign"  # '<version> <token>': the version a lazy adoption moves the namespace to, and which one
REALIGNED = "realigned:"  # + partition: that value, once every customer of the partition was moved
# (the token: a later adoption of the same version, after a roll-back, must walk again, whatever an earlier
# one recorded as done)


def adoption(version: str) -> str:
    """The REALIGN value of a new adoption of `version`."""
    return f"{version} {secrets.token_hex(6)}"


def walk_of(target: str | None, done: str | None, version: str) -> str | None:
    """The adoption a partition still has to be walked for (its REALIGN value), if any."""
    if target is None or target.split(" ", 1)[0] != version or done == target:
        return None
    return target


class PartitionCountError(StoredFormatError):
    """The namespace records another partition count than the reader's SEGSTREAM_TOPIC_PARTITIONS: customers
    would be looked for in other partitions' keys (exit code 3, HTTP 409)."""


def partition_count_conflict(namespace: str, recorded: int | None, mine: int) -> str | None:
    """The one partition-count rule, for workers, admin commands and readers alike: a namespace keys each
    customer by `partition_for(id, count)` and stores offsets per partition of that count, so a process with
    another count would look for customers in other partitions' keys (and a worker would resume at offsets
    of another partitioning: events skipped, others applied twice). Returns why, or None (the same count, or
    none recorded: a namespace no worker has started on yet). Each caller raises its own error type."""
    if recorded is None or recorded == mine:
        return None
    return (
        f"namespace {namespace!r} was built for {recorded} partitions and SEGSTREAM_TOPIC_PARTITIONS is"
        f" {mine}: its customers are keyed by partition; set SEGSTREAM_TOPIC_PARTITIONS={recorded}"
    )


def recorded_partitions(value: bytes | str | None) -> int | None:
    """The stored count; a value that is not a positive integer is a damaged record, said as such."""
    raw = _text(value)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and int(raw) > 0):
        raise StoredFormatError(
            f"the definitions record's {PARTITIONS!r} field is {raw!r}, not a partition count"
        )
    return int(raw)


async def check_partition_count(client: aioredis.Redis, keys: KeySpace, mine: int) -> None:
    """`partition_count_conflict` for admin commands and readers: PartitionCountError (exit 3, HTTP 409)."""
    recorded = recorded_partitions(await client.hget(keys.definitions(), PARTITIONS))
    conflict = partition_count_conflict(keys.namespace, recorded, mine)
    if conflict is not None:
        raise PartitionCountError(conflict)


class DefinitionsRecord(Protocol):
    async def version(self, namespace: str) -> str | None: ...

    async def record(self, namespace: str, version: str, adopted: bool) -> None:
        """The namespace now holds (`adopted`: moves to) this version; a YAML kept for another one goes."""
        ...

    async def realigning(self, namespace: str, partition: int, version: str) -> str | None:
        """The adoption (to `version`) whose walk of the partition has not ended, if any: the partition may
        still hold customers of the version the namespace was adopted from."""
        ...

    async def realigned(self, namespace: str, partition: int, walk: str) -> None: ...


# The count, and the token unless the namespace has one. HGET and HSET only, the commands the documented ACL
# line grants (docs/security.md; HSETNX is not among them), in one script: nothing runs between the two, so a
# second first worker cannot replace a token a reader may already have walked with (a cursor, a sync cursor).
_RECORD = """
if redis.call('HGET', KEYS[1], ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
end
return 0
"""


class RedisDefinitionsRecord:
    def __init__(self, client: aioredis.Redis, prefix: str, topic: str) -> None:
        self._r, self._prefix, self._topic = client, prefix, topic

    def _key(self, namespace: str) -> str:
        return KeySpace(self._prefix, namespace, self._topic).definitions()

    async def version(self, namespace: str) -> str | None:
        return _text(await self._r.hget(self._key(namespace), "version"))

    async def partitions(self, namespace: str) -> int | None:
        """The partition count the namespace was built for (None: not recorded)."""
        return recorded_partitions(await self._r.hget(self._key(namespace), PARTITIONS))

    async def record_partitions(self, namespace: str, count: int) -> None:
        """The count, and once per build of the namespace its BORN token (a members cursor names the build it
        walked: one of a namespace dropped and built again under its name is refused, `members_walk`), in one
        script: two first workers at the same instant keep the first one's token (`_RECORD`)."""
        script = self._r.register_script(_RECORD)
        await script(keys=[self._key(namespace)], args=[PARTITIONS, count, BORN, secrets.token_hex(8)])

    async def record(self, namespace: str, version: str, adopted: bool) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(namespace), "version", version)
            pipe.hdel(self._key(namespace), "yaml")
            if adopted:
                pipe.hset(self._key(namespace), REALIGN, adoption(version))
            await pipe.execute()

    async def realigning(self, namespace: str, partition: int, version: str) -> str | None:
        target, done = await self._r.hmget(self._key(namespace), [REALIGN, f"{REALIGNED}{partition}"])
        return walk_of(_text(target), _text(done), version)

    async def realigned(self, namespace: str, partition: int, walk: str) -> None:
        await self._r.hset(self._key(namespace), f"{REALIGNED}{partition}", walk)


class InMemoryDefinitionsRecord:
    """The same, for unit tests of the worker."""

    def __init__(self) -> None:
        self.fields: dict[str, dict[str, str]] = {}

    async def version(self, namespace: str) -> str | None:
        return self.fields.get(namespace, {}).get("version")

    async def record(self, namespace: str, version: str, adopted: bool) -> None:
        fields = self.fields.setdefault(namespace, {})
        fields["version"] = version
        fields.pop("yaml", None)
        if adopted:
            fields[REALIGN] = adoption(version)

    async def realigning(self, namespace: str, partition: int, version: str) -> str | None:
        fields = self.fields.get(namespace, {})
        return walk_of(fields.get(REALIGN), fields.get(f"{REALIGNED}{partition}"), version)

    async def realigned(self, namespace: str, partition: int, walk: str) -> None:
        self.fields.setdefault(namespace, {})[f"{REALIGNED}{partition}"] = walk


def _text(value: bytes | str | None) -> str | None:
    return None if value is None else text(value)
