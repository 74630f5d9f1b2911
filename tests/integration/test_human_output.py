"""What a person reads (issue 17, item 3), on state written by a real replay into the real Redis:
`segstream customer` prints a card (segments with since and why, RFM, money in major units, last purchase)
and `--json` the raw hash; the HTTP API gives exact money with its currency; `calibrate` prints tables
within 100 columns and no Python repr; replay's files land in `--output-dir` (default `replays/`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams import cli
from streams.read import SegmentReader
from streams.read.api import make_app
from streams.read.auth import Authenticator
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.keys import KeySpace
from streams.store.partitioning import partition_for
from tests.integration.worker_harness import decoded, make_settings
from tests.services import Services

KNOWN = "known-1"


def known_customer_log(path: Path) -> None:
    """Two purchases of 50.00 and 50.01 EUR (net 100.01, average 50.005: half-to-even gives 50.00), an
    email open, one malformed line (a reject), and a second customer with no purchase."""

    def event(n: int, kind: str, at: str, customer: str = KNOWN, **extra: Any) -> bytes:
        base = {"type": kind, "event_id": f"{customer}-{n}", "customer_id": customer}
        return orjson.dumps({**base, "occurred_at": at, "schema_version": 1, **extra})

    def purchase(n: int, at: str, amount: str) -> bytes:
        items = [{"sku": "sku-1", "quantity": 1, "unit_price": amount}]
        order: dict[str, Any] = {"order_id": f"o{n}", "amount": amount, "currency": "EUR"}
        return event(n, "purchase", at, channel="web", items=items, **order)

    lines = [
        purchase(1, "2026-03-01T10:00:00Z", "50.00"),
        event(2, "email_sent", "2026-03-02T09:00:00Z", campaign_id="c1"),
        purchase(3, "2026-03-05T18:30:00Z", "50.01"),
        event(1, "web_visit", "2026-03-06T12:00:00Z", customer="other-1", page="/"),
        b'{"type": "purchase", "broken',
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")


def use(settings: Settings, monkeypatch: pytest.MonkeyPatch, namespace: str | None = None) -> None:
    """The CLI reads its settings from the environment, as a user's shell gives them."""
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    if namespace is not None:
        monkeypatch.setenv("SEGSTREAM_NAMESPACE", namespace)


def test_replay_files_in_output_dir_then_card_and_json_of_the_customer(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    use(settings, monkeypatch)
    log = tmp_path / "events.jsonl"
    known_customer_log(log)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)

    # --output-dir: both files there, nothing in the current directory
    out = tmp_path / "chosen"
    assert cli.main(["replay", str(log), "--namespace", "h1", "--output-dir", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["replay-h1.rejects.jsonl", "replay-h1.summary.json"]
    assert orjson.loads((out / "replay-h1.summary.json").read_bytes())["dead_letters"] == 1
    assert list(work.iterdir()) == []
    # a refused replay makes no folder; the default is a folder of its own, not the current directory;
    # the old flag name still works
    assert cli.main(["replay", str(tmp_path / "missing.jsonl"), "--namespace", "hx", "--no-progress"]) == 2
    assert list(work.iterdir()) == []
    assert cli.main(["replay", str(log), "--namespace", "h2", "--no-progress"]) == 0
    assert sorted(p.name for p in work.iterdir()) == ["replays"]
    assert (work / "replays" / "replay-h2.summary.json").is_file()
    assert cli.main(["replay", str(log), "--namespace", "h3", "--out-dir", str(out), "--no-progress"]) == 0
    assert (out / "replay-h3.summary.json").is_file()
    capsys.readouterr()

    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "h1")
    assert cli.main(["customer", KNOWN]) == 0
    card = capsys.readouterr().out
    keys = KeySpace(settings.key_prefix, "h1", settings.events_topic)
    client = sync_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    try:
        row = client.hgetall(keys.customer(partition_for(KNOWN, 2), KNOWN))
        stored: dict[str, str] = decoded({str(k): str(v) for k, v in row.items()})
    finally:
        client.close()
    # every grid the hash carries (an empty `clv`: no clv definitions section, no grid; docs/clv.md)
    grids = [
        k.removeprefix("segment:")
        for k, v in stored.items()
        if k.startswith("segment:") and (v or k != "segment:clv")
    ]
    assert len(grids) >= 8
    lines = card.splitlines()
    for grid in grids:  # each grid with the stored segment and since when, then why
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [grid])
        assert lines[at].split()[1] == (stored[f"segment:{grid}"] or "-")
        assert " since 20" in lines[at]
        assert lines[at + 1].lstrip().startswith("why: ")
    assert "since 2026-03-01 10:00:00 UTC" in card  # the first purchase made it `new`
    assert "moved by event known-1-1" in card
    assert "net 100.01 EUR  (gross 100.01 EUR, refunded 0.00 EUR)" in card
    assert "2 orders, 0 refunds" in card
    assert "last purchase  2026-03-05 18:30:00 UTC  (first 2026-03-01 10:00:00 UTC)" in card
    scores = f"R {stored['rfm:r']}  F {stored['rfm:f']}  M {stored['rfm:m']}"
    assert f"RFM            {scores}  ->  {stored['segment:rfm']}" in card
    assert "recent_event_ids" not in card and "Traceback" not in card
    assert max(len(line) for line in lines) <= 100

    assert cli.main(["customer", KNOWN, "--json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw == {"customer_id": KNOWN, "partition": partition_for(KNOWN, 2), **stored}

    assert cli.main(["customer", "nobody"]) == 1
    assert capsys.readouterr().err == "customer 'nobody' not found\n"

    # the HTTP API on the same state: money exact, in major units with the currency, minor units kept
    profile, kpis = asyncio.run(api_answers(settings.model_copy(update={"namespace": "h1"})))
    assert profile["metrics"]["net"] == {"amount": "100.01", "currency": "EUR"}
    assert profile["metrics"]["gross"] == {"amount": "100.01", "currency": "EUR"}
    assert profile["metrics"]["refunded"] == {"amount": "0.00", "currency": "EUR"}
    assert profile["rfm"]["net"] == {"amount": "100.01", "currency": "EUR"}
    assert profile["metrics"]["gross_minor"] == 10001 and profile["rfm"]["monetary_minor"] == 10001
    segment = kpis["segments"][stored["segment:value"]]
    assert segment["revenue"] == {"amount": "100.01", "currency": "EUR"}
    assert segment["average_basket"] == {"amount": "50.00", "currency": "EUR"}  # 50.005, half-to-even
    assert segment["revenue_minor"] == 10001 and segment["average_basket_minor"] == 5000.5
    empty = [k for s, k in kpis["segments"].items() if k["orders"] == 0]
    assert empty and all(k["average_basket"] is None for k in empty)


async def api_answers(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """GET /customers/known-1 and /grids/value/segments from the real app on the real Redis."""
    reader = await SegmentReader.connect(settings)
    app = make_app(reader, Authenticator.disabled(), close_reader=True)
    async with TestClient(TestServer(app)) as http:
        answers = []
        for path in (f"/customers/{KNOWN}", "/grids/value/segments"):
            response: aiohttp.ClientResponse = await http.get(path)
            assert response.status == 200, await response.text()
            answers.append(await response.json())
    return answers[0], answers[1]


def test_calibrate_prints_tables_within_100_columns_and_json(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    use(settings, monkeypatch)
    log = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=200, days=365, seed=7), log)
    assert cli.main(["replay", str(log), "--namespace", "cal", "--output-dir", str(tmp_path)]) == 0
    capsys.readouterr()

    assert cli.main(["calibrate", "--namespace", "cal"]) == 0
    text = capsys.readouterr().out
    assert "Decimal(" not in text and "[" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "monetary (EUR)       50.00, 150.00, 400.00, 1000.00" in text
    assert "rfm: " in text and "would move" in text and "now \\ new" in text

    assert cli.main(["calibrate", "--namespace", "cal", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["namespace"] == "cal" and document["currency"] == "EUR"
    assert document["breakpoints"]["recency_days"]["current"] == [30, 90, 180, 365]
    assert document["breakpoints"]["monetary"]["current"] == ["50.00", "150.00", "400.00", "1000.00"]
    assert len(document["breakpoints"]["monetary"]["proposed"]) == 4
    assert document["diff"]["customers"] == document["customers"]
