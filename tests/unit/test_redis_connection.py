"""Which Redis a URL or setting names: a single server or a Redis Cluster (streams/store/connection.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from streams.settings import Settings
from streams.store import connection


@pytest.mark.parametrize(
    ("url", "setting", "cluster"),
    [
        ("redis://127.0.0.1:6379/0", False, False),
        ("rediss://h:6380", False, False),
        ("redis+cluster://127.0.0.1:7000", False, True),
        ("REDISS+CLUSTER://u:p@h:7000", False, True),
        ("redis://127.0.0.1:7000", True, True),
    ],
)
def test_a_cluster_is_named_by_the_scheme_or_the_setting(url: str, setting: bool, cluster: bool) -> None:
    assert connection.is_cluster(url, setting) is cluster
    # settings.py repeats the rule (settings and store may import nothing of each other: test_layout):
    # its database-0 check must name the same URLs a cluster
    refused = f"{url.removesuffix('/0')}/1"
    if cluster:
        with pytest.raises(ValueError, match="a Redis Cluster has database 0 only"):
            Settings(redis_url=refused, redis_cluster=setting)
    else:
        assert Settings(redis_url=refused, redis_cluster=setting).redis_url == refused


def test_the_cluster_scheme_becomes_the_one_redis_py_knows() -> None:
    assert connection.plain_url("redis+cluster://h:7000") == "redis://h:7000"
    assert connection.plain_url("rediss+cluster://u:p@h:7000/0") == "rediss://u:p@h:7000/0"
    assert connection.plain_url("redis://h:6379/2") == "redis://h:6379/2"


def test_the_factory_builds_the_client_the_url_names_without_connecting() -> None:
    assert type(connection.async_client("redis://127.0.0.1:1/0")) is aioredis.Redis
    assert isinstance(connection.async_client("redis+cluster://127.0.0.1:1"), AsyncRedisCluster)
    assert isinstance(connection.async_client("redis://127.0.0.1:1", cluster=True), AsyncRedisCluster)
    assert type(connection.sync_client("redis://127.0.0.1:1/0")) is redis.Redis
    pooled = connection.async_pooled_client("redis://127.0.0.1:1/0", 7, 0.5)
    assert type(pooled.connection_pool) is aioredis.BlockingConnectionPool
    assert pooled.connection_pool.max_connections == 7
    clustered = connection.async_pooled_client("redis+cluster://127.0.0.1:1", 7, 0.5)
    assert isinstance(clustered, AsyncRedisCluster)


def test_tls_options_follow_the_cluster_tls_scheme_too(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"  # a TLS file must exist (Settings)
    ca.write_text("-", encoding="utf-8")
    tls = Settings(redis_url="rediss+cluster://h:7000", redis_tls_ca_file=ca).redis_tls()
    assert tls == {"ssl_ca_certs": str(ca)}
    assert Settings(redis_url="redis+cluster://h:7000", redis_tls_ca_file=ca).redis_tls() == {}


def test_the_cluster_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_REDIS_CLUSTER", "true")
    assert Settings().redis_cluster is True


def test_a_cluster_url_with_another_database_is_a_configuration_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="database 2, but a Redis Cluster has database 0 only"):
        Settings(redis_url="redis+cluster://h:7000/2")
    with pytest.raises(ValidationError, match="database 1, but"):
        Settings(redis_url="redis://h:7000/1", redis_cluster=True)
    assert Settings(redis_url="redis+cluster://h:7000/0").redis_url == "redis+cluster://h:7000/0"
    assert Settings(redis_url="redis://h:6379/3").redis_url == "redis://h:6379/3"


def test_an_unreachable_cluster_is_waited_for_then_reported_as_unreachable() -> None:
    """redis-py's cluster client says "no node reachable" with RedisClusterException, not ConnectionError."""
    import asyncio

    from streams.bootstrap import wait_for_services
    from streams.store.reachable import ServiceUnreachable

    notes: list[str] = []
    settings = Settings(redis_url="redis+cluster://127.0.0.1:1", connect_timeout_s=1)
    with pytest.raises(ServiceUnreachable, match="did not answer within 1 s") as caught:
        asyncio.run(wait_for_services(settings, notes.append, kafka=False))
    assert caught.value.exit_code == 4
    assert notes == [
        "waiting for Redis at redis+cluster://127.0.0.1:1 (up to 1 s, SEGSTREAM_CONNECT_TIMEOUT_S)"
    ]


def test_the_redis_py_internals_the_ask_fix_relies_on_are_unchanged() -> None:
    """`_AskingCluster` (streams/store/connection.py) reaches into redis-py 8.1's private cluster API; a
    version that renames or reorders any of it must fail here, not as ASK loops during a slot migration."""
    import collections
    import inspect
    from importlib.metadata import version

    from redis.asyncio.cluster import ClusterNode

    assert version("redis").split(".")[:2] == ["8", "1"], "verified with 8.1: see connection.py's docstring"
    ask_branch = inspect.getsource(AsyncRedisCluster._execute_command)
    assert "self.get_node(node_name=redirect_addr)" in ask_branch
    node = ClusterNode("127.0.0.1", 1, max_connections=4)
    assert type(node._free) is collections.deque and node._free.maxlen == 4
    node._free = connection._LastReleasedFirst(node._free, maxlen=node._free.maxlen)
    first, second = node.acquire_connection(), node.acquire_connection()  # new ones, not connected
    node.release(first)
    node.release(second)
    assert node.acquire_connection() is second  # the one given back last: ASKING and its command share it
    assert node.acquire_connection() is first


def test_a_cluster_url_may_name_several_entry_nodes() -> None:
    """The first goes to redis-py with the credentials, database and options; the others become startup
    nodes, so a process starting while the first is down still finds the cluster (tests/chaos/
    test_redis_failover.py starts one with the killed primary first)."""
    url = "rediss+cluster://u:p@a.example:7000,b.example:7001,[::1]:7002,c.example/0?ssl_cert_reqs=none"
    first, others = connection.entry_nodes(url)
    assert first == "rediss+cluster://u:p@a.example:7000/0?ssl_cert_reqs=none"
    assert others == [("b.example", 7001), ("::1", 7002), ("c.example", 6379)]
    assert connection.entry_nodes("redis+cluster://h:7000") == ("redis+cluster://h:7000", [])
    client = connection.async_client("redis+cluster://127.0.0.1:1,127.0.0.2:2/0")
    assert isinstance(client, AsyncRedisCluster)
    names = list(client.nodes_manager.startup_nodes)
    assert sorted(names) == ["127.0.0.1:1", "127.0.0.2:2"]


def test_a_bad_entry_node_or_several_nodes_without_a_cluster_are_configuration_errors() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValueError, match="'b:x' is not host:port"):
        connection.entry_nodes("redis+cluster://a:1,b:x")
    with pytest.raises(ValidationError, match="names several nodes, which only a Redis Cluster has"):
        Settings(redis_url="redis://a:6379,b:6379/0")
    assert Settings(redis_url="redis://a:7000,b:7000/0", redis_cluster=True).redis_cluster
