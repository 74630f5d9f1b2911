"""The one factory of Redis clients: a single server or a Redis Cluster, chosen from the URL or a setting.

A cluster is named by the scheme `redis+cluster://host:port` (`rediss+cluster://` for TLS), or by a plain
`redis://` URL with SEGSTREAM_REDIS_CLUSTER=true; any node serves as the entry point, redis-py's cluster
client learns the others (CLUSTER SLOTS) and routes each command to the primary of its key's slot. Name
several entry nodes (`redis+cluster://h1:7000,h2:7000,h3:7000/0`) so that a process starting while one is
down still finds the cluster (a running client already knows every node and follows a failover). Every key
of one Kafka partition shares a hash tag (streams/store/keys.py), so a partition is one slot: the commit
script and the claim's MULTI run on one node. Keys outside a partition (the namespace pointer, definitions,
metrics) are single-key commands. A namespace-wide SCAN runs on every primary (redis-py's cluster
`scan_iter`); a walk of one partition (`scan_slot`) on the node serving its slot, and while that slot
migrates on the importing node too (streams/store/slot_walk.py).

The cluster clients are typed as the single-server ones: they speak the same commands, and the callers'
few cluster differences (SCAN per node, pipelines split by slot) are redis-py's. Redis Cluster has only
database 0: redis-py refuses another number in the URL.

redis-py's private API: `_AskingCluster` relies on three internals of redis-py 8.1's asyncio cluster client,
verified with 8.1.0: the ASK branch of `RedisCluster._execute_command` finds the importing node with
`self.get_node(node_name=...)`, and `ClusterNode` keeps its free connections in the deque `_free`, taken
with `popleft()` by `acquire_connection` and given back with `append()` by `release`. pyproject.toml pins
`redis>=8.1,<8.2` for that reason, and tests/unit/test_redis_connection.py fails loudly if one of them
changes (for a new minor version, run it and tests/integration/test_reshard_under_load.py before widening
the pin).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import ClusterNode as SyncClusterNode
from redis.cluster import RedisCluster

from streams.store.slot_walk import walk_slot

_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster(url: str, cluster_setting: bool = False) -> bool:
    """A Redis Cluster: the URL's scheme says so (`redis+cluster://`), or the setting does."""
    return cluster_setting or url.split("://", 1)[0].lower() in _SCHEMES


def entry_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A URL naming several nodes (`redis+cluster://u:p@h1:7000,h2:7001/0`): the URL with the first one only
    (what redis-py parses, with the credentials, database and options) and the others as (host, port)."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    userinfo, at, hosts = rest[:end].rpartition("@")
    first, *others = hosts.split(",")
    return f"{scheme}{sep}{userinfo}{at}{first}{rest[end:]}", [host_port(node) for node in others]


def host_port(node: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `host` (port 6379) -> (host, port); ValueError naming a bad one."""
    if node.startswith("["):
        host, _, port = node[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, sep, port = node.rpartition(":")
        host, port = (host, port) if sep else (port, "")
    if not host or not (port or "6379").isdigit():
        raise ValueError(f"SEGSTREAM_REDIS_URL: {node!r} is not host:port")
    return host, int(port or "6379")


def plain_url(url: str) -> str:
    """The URL redis-py understands: `redis+cluster://h:p` -> `redis://h:p` (others unchanged)."""
    scheme, sep, rest = url.partition("://")
    return f"{_SCHEMES.get(scheme.lower(), scheme)}{sep}{rest}"


class _LastReleasedFirst(deque[Any]):
    """A node's free connections, the one given back last taken first (`popleft` is what redis-py calls)."""

    def popleft(self) -> Any:
        return self.pop()


class _AskingCluster(AsyncRedisCluster):
    """redis-py's asyncio cluster client, with ASK redirections that work while a slot migrates.

    On ASK it sends ASKING, then the command, each on a free connection of the importing node taken from the
    front of its queue and given back at the end: with two free connections they go out on different ones,
    the node answers the command MOVED (no ASKING on that connection), the source answers ASK again, until
    "TTL exhausted" (redis-py 8.1; lettuce had the same bug, redis/lettuce#1218). A read of a key already
    migrated failed for the whole migration. Taking the connection given back last puts both on one
    connection: nothing runs between ASKING's release and the command's acquire (no await in between)."""

    def get_node(
        self, host: str | None = None, port: int | None = None, node_name: str | None = None
    ) -> ClusterNode | None:
        node = super().get_node(host, port, node_name)  # how the ASK branch finds the importing node
        if node is not None and not isinstance(node._free, _LastReleasedFirst):
            node._free = _LastReleasedFirst(node._free, maxlen=node._free.maxlen)
        return node


def async_client(url: str, cluster: bool = False, **options: Any) -> aioredis.Redis:
    """An asyncio client of `url` (single server or cluster), with redis-py connection `options`."""
    if is_cluster(url, cluster):
        first, others = entry_nodes(url)
        nodes = [ClusterNode(host, port) for host, port in others] or None
        client = _AskingCluster.from_url(plain_url(first), startup_nodes=nodes, **options)
        return cast(aioredis.Redis, client)
    return aioredis.Redis.from_url(url, **options)


def sync_client(url: str, cluster: bool = False, **options: Any) -> redis.Redis:
    """A blocking client of `url` (single server or cluster), with redis-py connection `options`."""
    if is_cluster(url, cluster):
        first, others = entry_nodes(url)
        nodes = [SyncClusterNode(host, port) for host, port in others] or None  # type: ignore[no-untyped-call]
        client = RedisCluster.from_url(plain_url(first), startup_nodes=nodes, **options)
        return cast(redis.Redis, client)
    return redis.Redis.from_url(url, **options)


def async_pooled_client(
    url: str, max_connections: int, pool_timeout_s: float, cluster: bool = False, **options: Any
) -> aioredis.Redis:
    """A bounded client for a server that answers many requests: on a single server, a pool that waits up
    to `pool_timeout_s` for a free connection (a burst queues); on a cluster, at most `max_connections` per
    node (redis-py's cluster client raises MaxConnectionsError at once when a node's are all busy)."""
    if is_cluster(url, cluster):
        return async_client(url, cluster, max_connections=max_connections, **options)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=pool_timeout_s, **options
    )
    return aioredis.Redis.from_pool(pool)


def scan_slot(client: aioredis.Redis, match: str, slot_key: str, count: int = 1000) -> AsyncIterator[Any]:
    """SCAN for keys of one slot (`match` names keys of `slot_key`'s hash tag, e.g. a partition's): on a
    cluster only the primary serving that slot is walked, not every node (a partition is one slot), and
    while the slot migrates the importing node after it (slot_walk.py; SlotMigrating on a race it cannot
    cover). Not a generator itself: one layer less per key."""
    if isinstance(client, AsyncRedisCluster):
        return walk_slot(client, match, slot_key, count)
    return client.scan_iter(match=match, count=count)
