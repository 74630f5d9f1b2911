"""A Shopify orders export replayed into the real Kafka and Redis (`--preset shopify`): exact states and
transitions, the same bytes and ids twice; and the definitions log after a replay and `apply --by`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml

from segmentation import Definitions
from streams.admin import calibrate
from streams.replay.pseudonyms import pseudonym
from streams.store.connection import sync_client
from tests.integration.replay_helpers import dump_namespace
from tests.integration.worker_harness import decoded, make_settings, read_topic
from tests.services import Services

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "tests" / "data" / "shopify_orders_export.csv"
ALICE, BOB, CAROL = (pseudonym(e) for e in ("alice@example.com", "bob@example.com", "carol@example.com"))

DEFAULT_VERSION = Definitions.default().version


def segstream(args: list[str], settings: Any, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SEGSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SEGSTREAM_REDIS_URL": settings.redis_url,
        "SEGSTREAM_KEY_PREFIX": settings.key_prefix,
        "SEGSTREAM_EVENTS_TOPIC": settings.events_topic,
        "SEGSTREAM_TRANSITIONS_TOPIC": settings.transitions_topic,
        "SEGSTREAM_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "SEGSTREAM_API_KEYS": "",
    }
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def customer(settings: Any, namespace: str, customer_id: str) -> dict[str, str]:
    rows = [
        v
        for k, v in dump_namespace(settings, namespace).items()
        if isinstance(v, dict) and k.endswith(f":c:{customer_id}")
    ]
    assert len(rows) == 1, (customer_id, len(rows))
    return decoded(rows[0])


def replay(settings: Any, namespace: str, emit: str, cwd: Path) -> dict[str, Any]:
    command = ["replay", str(EXPORT), "--preset", "shopify", "--namespace", namespace, "--emit", emit]
    result = segstream([*command, "--no-progress", "--by", "ci"], settings, cwd)
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = orjson.loads(
        (cwd / "replays" / f"replay-{namespace}.summary.json").read_bytes()
    )
    return summary


def test_shopify_export_replays_to_exact_states_and_transitions_identically_twice(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=3)
    emit_a, emit_b = topic_name("shop-a"), topic_name("shop-b")
    summary = replay(settings, "shop", emit_a, tmp_path)
    extra = summary["extra"]
    assert (extra["csv_rows"], extra["csv_rejected"], extra["csv_purchases"], extra["csv_refunds"]) == (
        11, 4, 4, 2,
    )  # fmt: skip
    assert (summary["events"], summary["dead_letters"], summary["customers"]) == (6, 0, 3)

    alice = customer(settings, "shop", ALICE)  # #1001 (110.00 EUR) and #1003 (168.00 EUR, 40.00 refunded)
    assert {k: alice[k] for k in ("orders", "gross_minor", "refunded_minor", "monetary_minor")} == {
        "orders": "2", "gross_minor": "27800", "refunded_minor": "4000", "monetary_minor": "23800",
    }  # fmt: skip
    assert (alice["channel:web"], alice["channel:app"], alice["segment:channel"]) == ("1", "1", "web")
    assert alice["first_purchase_at"] == "2026-01-10T09:00:00+00:00"
    assert (alice["segment:lifecycle"], alice["segment:value"], alice["segment:rfm"]) == (
        "active", "medium", "potential_loyalist",
    )  # fmt: skip
    bob = customer(settings, "shop", BOB)  # 77.00 USD at the definitions' rate 0.92: 70.84 EUR, at the POS
    assert (bob["orders"], bob["gross_minor"], bob["segment:channel"], bob["segment:value"]) == (
        "1", "7084", "store", "low",
    )  # fmt: skip
    carol = customer(settings, "shop", CAROL)  # 25.00 GBP at 1.17, refunded in full
    money = ("gross_minor", "refunded_minor", "monetary_minor", "segment:value")
    assert [carol[k] for k in money] == ["2925", "2925", "0", "none"]

    records = asyncio.run(read_topic(settings, emit_a))
    moves = [orjson.loads(r.value)["data"] for r in records]
    assert len(moves) == sum(summary["transitions"].values())
    alice_life = [
        (m["from_segment"], m["to_segment"], m["effective_at"])
        for m in moves
        if m["customer_id"] == ALICE and m["grid"] == "lifecycle"
    ]
    assert alice_life == [
        (None, "new", "2026-01-10T09:00:00+00:00"),
        ("new", "active", "2026-02-09T09:00:00+00:00"),  # 30 days after the first purchase, by event time
    ]
    carol_value = [
        (m["from_segment"], m["to_segment"])
        for m in moves
        if m["customer_id"] == CAROL and m["grid"] == "value"
    ]
    assert carol_value == [(None, "low"), ("low", "none")]  # the refund of #1004 takes her back to none

    # the same export again: the same namespace byte for byte, the same transition ids
    replay(settings, "shop2", emit_b, tmp_path)
    assert dump_namespace(settings, "shop2") == dump_namespace(settings, "shop")
    again = asyncio.run(read_topic(settings, emit_b))
    ids = sorted(orjson.loads(r.value)["id"] for r in records)
    assert sorted(orjson.loads(r.value)["id"] for r in again) == ids and len(set(ids)) == len(ids)


def test_definitions_log_lists_the_replay_and_an_apply_by_alice_with_its_moves(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    replay(settings, "shop", topic_name("shop"), tmp_path)
    document = calibrate.base_document(None)
    document["version"] = "test-log-2"
    document["value"]["tiers"][2]["from"] = "300"  # medium from 300: alice (238.00) falls to low
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump(document))
    apply = ["definitions", "apply", str(new), "--namespace", "shop", "--no-emit", "--by", "alice"]
    result = segstream(apply, settings, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "value" in result.stdout and "1 transitions" in result.stdout

    listed = segstream(["definitions", "log", "--namespace", "shop", "--format", "json"], settings, tmp_path)
    assert listed.returncode == 0, listed.stderr
    entries = orjson.loads(listed.stdout)["entries"]
    assert [(e["action"], e["version"], e["by"]) for e in entries] == [
        ("replay", DEFAULT_VERSION, "ci"),
        ("apply", "test-log-2", "alice"),
    ]
    applied = entries[1]
    assert applied["previous_version"] == DEFAULT_VERSION and applied["moved"] == {"value": 1}
    assert (applied["customers"], applied["written"], applied["transitions"]) == (3, 3, 1)
    assert applied["source"] == str(new) and applied["applied_at"].endswith("Z")
    assert entries[0]["customers"] == 3 and entries[0]["events"] == 6

    text = segstream(["definitions", "log", "--namespace", "shop"], settings, tmp_path)
    assert text.returncode == 0, text.stderr
    assert f"{DEFAULT_VERSION} -> test-log-2  by alice" in text.stdout and "moved: value 1" in text.stdout
    client = sync_client(settings.redis_url)
    assert client.llen(f"{settings.key_prefix}:shop:definitions:log") == 2


def test_an_export_in_a_legacy_encoding_is_read_with_encoding(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """docs/replay.md named `--encoding` for exports that are not UTF-8 (Excel writes cp1252), but the flag
    did not exist: the command was a usage error, and without it every row with an accent was rejected."""
    settings = make_settings(services, topic_name, redis_prefix)
    path = tmp_path / "excel.csv"
    rows = [
        "Commande;Client;Date;Montant",
        "E1;Café;2026-03-01 10:00:00;12,50",
        "E2;Zoë;2026-03-02 11:00:00;7",
    ]
    path.write_bytes("\n".join([*rows, ""]).encode("cp1252"))
    command = ["replay", str(path), "--namespace", "excel", "--no-progress", "--delimiter", ";"]
    command += ["--map", "order_id=Commande,customer_id=Client,occurred_at=Date,total=Montant"]
    command += ["--time-format", "%Y-%m-%d %H:%M:%S", "--currency", "EUR", "--decimal-comma"]
    result = segstream([*command, "--encoding", "cp1252"], settings, tmp_path)
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((tmp_path / "replays" / "replay-excel.summary.json").read_bytes())
    assert summary["extra"]["csv_rejected"] == 0 and summary["extra"]["csv_purchases"] == 2
    assert customer(settings, "excel", "Café")["monetary"] == "12.50"
    assert customer(settings, "excel", "Zoë")["orders"] == "1"
