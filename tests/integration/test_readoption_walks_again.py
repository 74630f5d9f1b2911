"""A second lazy adoption of a version whose walk was recorded done once before walks the partitions again
(found in review: the done marker named only the version, so a stale one read as done).

Before, `realigned:<p>` recorded the *version* a partition was walked to, not which adoption walked it. Once a
namespace adopted `earlier` (every partition walked, `realigned:<p>` = earlier), went back to the default
definitions (`definitions apply`, a roll-back) and then adopts `earlier` again (workers restarted with that
file and SEGSTREAM_ADOPT_DEFINITIONS=true), `realigning` read the stale marker as "done": no walk, and every
customer without an event stays on the default definitions, moved only at the due times those set (late, or
never), which is exactly what the walk was added to prevent (docs/reliability.md, review of 6 December)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from segmentation import Definitions
from streams.admin import definitions_change as change
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.stored_state import stored_state
from tests.integration.replay_helpers import dump_namespace, replay_file
from tests.integration.test_adoption_realign import EARLIER, PARTITIONS, sweep_with
from tests.integration.worker_harness import make_settings, stored_customers
from tests.services import Services
from tests.unit.seg_helpers import definitions_with


def versions(settings: Settings) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in stored_customers(settings).values():
        version = stored_state(row, "test").definitions_version or "(none)"
        out[version] = out.get(version, 0) + 1
    return out


def test_adopting_a_version_again_after_a_roll_back_walks_the_partitions_again(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    spec = sample.SampleSpec(customers=120, days=300, seed=23)
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(spec, path)
    base = make_settings(services, topic_name, redis_prefix, topic_partitions=PARTITIONS)
    settings = base.model_copy(update={"namespace": "ns"})
    old, new = Definitions.default(), definitions_with(lifecycle=EARLIER, version="earlier")
    asyncio.run(replay_file(base, path, "ns", tmp_path))

    async def apply(definitions: Definitions) -> None:
        client = async_client(settings.redis_url)
        try:
            keys = KeySpace(settings.key_prefix, "ns", settings.events_topic)
            await change.apply(client, keys, PARTITIONS, definitions, None, definitions_yaml="(yaml)")
        finally:
            await client.aclose()

    asyncio.run(sweep_with(settings, new, adopt=True))  # the first adoption: every partition walked
    first = versions(settings)
    assert first == {"earlier": sum(first.values())}, "the first adoption moved every customer"
    asyncio.run(apply(old))  # roll back: every customer on the default definitions again
    rolled_back = versions(settings)
    assert rolled_back == {old.version: sum(first.values())}
    asyncio.run(sweep_with(settings, new, adopt=True))  # adopt `earlier` again

    record = dump_namespace(settings, "ns")["definitions"]
    assert record["version"] == "earlier" and record["realign"].startswith("earlier ")
    again = versions(settings)
    # expected: the second adoption walks every partition, as the first did; observed: no walk (the
    # `realigned:<p>` markers of the first adoption), customers the old due index did not name stay behind
    assert again == {"earlier": sum(first.values())}, f"customers left on the old definitions: {again}"
