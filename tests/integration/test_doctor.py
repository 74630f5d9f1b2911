"""`segstream doctor` against a replayed namespace, on the real single Redis and on a real Redis Cluster: the
exact slot, node, customers and memory of every partition, and the skew warning of a lopsided layout."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from tests.integration.replay_helpers import replay_file
from tests.integration.slot_migration import Primary, move_slot, owner, primaries
from tests.integration.worker_harness import make_settings
from tests.services import Services, wants_cluster

CUSTOMERS = 300


def doctor(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "doctor", *args],
        env=settings.as_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def replayed(settings: Settings, tmp_path: Path, namespace: str = "main") -> None:
    path = tmp_path / "events.jsonl.gz"
    if not path.exists():
        sample.write_jsonl(sample.SampleSpec(customers=CUSTOMERS, days=365, seed=5), path)
    summary = asyncio.run(replay_file(settings, path, namespace, tmp_path))
    assert summary.dead_letters == 0


def truth(settings: Settings, namespace: str) -> tuple[list[int], list[int]]:
    """Per partition, by SCAN of every key: customer hashes, and MEMORY USAGE summed (the exact figures)."""
    client = sync_client(settings.redis_url, decode_responses=True)
    customers, memory = [0] * settings.topic_partitions, [0] * settings.topic_partitions
    try:
        for p in range(settings.topic_partitions):
            tag = f"{settings.key_prefix}:{namespace}:{{{settings.events_topic}:{p}}}:"
            for key in client.scan_iter(match=tag.replace("{", "\\{").replace("}", "\\}") + "*", count=1000):
                customers[p] += key.startswith(tag + "c:")
                memory[p] += int(client.memory_usage(key, samples=0) or 0)
    finally:
        client.close()
    return customers, memory


def check_report(settings: Settings, report: dict[str, Any], namespace: str, exact_memory: bool) -> None:
    customers, memory = truth(settings, namespace)
    assert sum(customers) == CUSTOMERS
    parts = report["partitions"]
    assert [x["partition"] for x in parts] == list(range(settings.topic_partitions))
    for p, row in enumerate(parts):
        assert row["slot"] == key_slot(f"{settings.events_topic}:{p}".encode())  # the hash tag's slot
        assert row["customers"] == customers[p]
        if exact_memory:
            assert row["memory_bytes"] == memory[p]
        else:  # the sampled estimate: within 5 % of the exact sum
            assert abs(row["memory_bytes"] - memory[p]) <= 0.05 * memory[p], (row, memory[p])
    for node in report["nodes"]:
        mine = [x for x in parts if x["node"] == node["node"]]
        assert node["partitions"] == len(mine)
        assert node["customers"] == sum(x["customers"] for x in mine)
        assert node["customer_share"] == pytest.approx(node["customers"] / CUSTOMERS)


@pytest.mark.cluster
def test_doctor_reports_exact_figures_and_on_a_single_server_one_node(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """Exact figures on either Redis; on a single server one node, no skew (on a cluster: the test below)."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=4, namespace="main")
    replayed(settings, tmp_path)
    cluster = wants_cluster()
    for flags, exact in (((), False), (("--exact",), True)):
        done = doctor(settings, "--json", *flags)
        report = json.loads(done.stdout)
        assert (report["cluster"], report["memory"]) == (cluster, "exact" if exact else "estimate")
        check_report(settings, report, "main", exact)
        if not cluster:
            assert done.returncode == 0 and done.stderr == ""
            assert [n["node"] for n in report["nodes"]] == ["single server"]
            assert report["nodes"][0]["customers"] == CUSTOMERS and report["nodes"][0]["partitions"] == 4
            assert report["customer_skew"] == 0 and report["warnings"] == []
    if not cluster:
        table = doctor(settings, "--strict")
        assert table.returncode == 0, table.stderr
        assert "single server                  4         300   100%" in table.stdout
    unknown = doctor(settings, "--namespace", "nope")
    assert unknown.returncode == 3 and "unknown namespace 'nope'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    bad = doctor(settings, "--max-skew", "lots")
    assert bad.returncode == 2 and "not a percentage" in bad.stderr


# -- Redis Cluster ------------------------------------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.skipif(not wants_cluster(), reason="about the cluster layout: SEGSTREAM_TEST_REDIS=cluster")
def test_doctor_on_a_cluster_names_each_partitions_node_and_warns_on_a_skewed_layout(
    services: Services, redis_prefix: str, unique: str, tmp_path: Path
) -> None:
    cluster, cluster_prefix = services.redis_url, redis_prefix.rstrip(":")
    host, port = cluster.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    nodes = primaries(host, int(port))
    assert len(nodes) >= 3
    settings = Settings(
        kafka_bootstrap=services.kafka_bootstrap,
        redis_url=cluster,
        key_prefix=cluster_prefix,
        events_topic=f"t{unique}",
        topic_partitions=6,
        namespace="main",
    )
    slots = [key_slot(f"{settings.events_topic}:{p}".encode()) for p in range(6)]
    before = {slot: owner(nodes, slot) for slot in slots}
    replayed(settings, tmp_path)
    done = doctor(settings, "--json", "--exact")
    assert done.returncode == 0, done.stderr
    check_cluster_report(settings, json.loads(done.stdout), nodes, before)
    # skewed on purpose: every partition's slot moved to the first primary (keys migrated with it)
    try:
        for slot in slots:
            move_slot(nodes, slot, nodes[0])
        done = doctor(settings, "--json", "--exact", "--strict")
        assert done.returncode == 3, done.stderr
        report = json.loads(done.stdout)
        check_cluster_report(settings, report, nodes, dict.fromkeys(slots, nodes[0]))
        top = report["nodes"][0]
        assert (top["node"], top["partitions"], top["customers"]) == (nodes[0].name, 6, CUSTOMERS)
        assert top["customer_share"] == 1.0 and report["customer_skew"] == pytest.approx(len(nodes) - 1.0)
        assert f"customers skewed: node {nodes[0].name} holds 100% (+200% over the mean" in done.stderr
        assert "redis-cli --cluster reshard" in done.stderr
        relaxed = doctor(settings, "--strict", "--max-skew", "250")
        assert relaxed.returncode == 0 and relaxed.stderr == ""
    finally:
        for slot, node in before.items():  # the cluster's layout as found
            move_slot(nodes, slot, node)


def check_cluster_report(
    settings: Settings, report: dict[str, Any], nodes: list[Primary], where: dict[int, Primary]
) -> None:
    assert report["cluster"] is True and report["memory"] == "exact"
    check_report(settings, report, "main", exact_memory=True)
    assert sorted(n["node"] for n in report["nodes"]) == sorted(n.name for n in nodes)  # empty ones too
    for row in report["partitions"]:
        assert row["node"] == where[row["slot"]].name
        host, port = row["node"].rsplit(":", 1)
        direct = redis.Redis(host=host, port=int(port))  # the node named holds the keys: no MOVED
        try:
            meta = f"{settings.key_prefix}:main:{{{settings.events_topic}:{row['partition']}}}:meta"
            assert direct.exists(meta) == 1
        finally:
            direct.close()
