"""A page of a segment's members: partition by partition, each partition's bitmap walked up to the end it
had when the walk entered it (`membership.walk_end`), in the namespace the walk began in."""

from __future__ import annotations

import redis.asyncio as aioredis

from streams.read.members_cursor import cursor_text, namespace_tag
from streams.read.profile import MembersPage
from streams.store import membership
from streams.store.keys import KeySpace
from streams.store.readable import first_recorded
from streams.store.stored_state import StoredFormatError


class WalkMoved(StoredFormatError):
    """A members cursor of a walk begun in another namespace (HTTP 409, the CLI exits 3, as for a namespace
    the reader cannot read: the walk starts again)."""


def gone(namespace: str, before: str = "", now: str = "") -> str:
    """Why a walk of `namespace` stops, its standing (`readable.standing_of`) `before` it and `now`."""
    if first_recorded(before, now):
        return (
            f"namespace {namespace!r} was first recorded by a worker or replay while this walk ran, which"
            " names its build from now on: start the walk again"
        )
    return (
        f"namespace {namespace!r}, where this walk began, was dropped or built again meanwhile: start the "
        "walk again"
    )


async def page(
    client: aioredis.Redis,
    keys: KeySpace,
    build: str,
    partitions: int,
    grid: str,
    segment: str,
    start: tuple[int, int, int | None, str | None],
    count: int,
) -> MembersPage:
    """Up to `count` members of `build` (`readable.build_of`) from `start`, a parsed cursor
    (`members_cursor.parse_cursor`)."""
    partition, position, end, tag = start
    if tag is not None and tag != namespace_tag(build):
        raise WalkMoved(
            f"this cursor's walk began in another namespace than {keys.namespace!r} or another build of it "
            "(the active namespace changed, `segstream promote`, or it was built again), where its positions "
            "name other customers; start the walk again without a cursor"
        )
    members: list[str] = []
    while partition < partitions:
        if end is None:  # the walk enters the partition: customers begun from now on are not listed
            end = await membership.walk_end(client, keys, partition)
        ids, after = await membership.page(  # OlderFormat: the namespace needs a replay
            client, keys, partition, grid, segment, position, count - len(members), end
        )
        members += ids
        if after is None:
            partition, position, end = partition + 1, 0, None
        else:
            position = after
        if len(members) >= count:
            break
    next_cursor = None if partition >= partitions else cursor_text(partition, position, end, build)
    return MembersPage(members=members, next_cursor=next_cursor)
