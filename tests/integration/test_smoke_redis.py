"""The real Redis answers hashes and Lua, the two things the state store relies on."""

from __future__ import annotations

from streams.store.connection import sync_client
from tests.services import Services


def test_redis_hash_and_lua_round_trip(services: Services, redis_prefix: str) -> None:
    client = sync_client(services.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    key = f"{redis_prefix}{{c42}}:state"
    client.hset(key, mapping={"segment:lifecycle": "active", "orders": "3"})
    script = client.register_script(
        "redis.call('HINCRBY', KEYS[1], 'orders', ARGV[1]); return redis.call('HGETALL', KEYS[1])"
    )
    result = script(keys=[key], args=[2])
    assert dict(zip(result[::2], result[1::2], strict=True)) == {"segment:lifecycle": "active", "orders": "5"}
    assert int(client.info("server")["redis_version"].split(".")[0]) >= 7
