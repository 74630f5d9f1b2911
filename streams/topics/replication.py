"""The topics a process creates: how many copies (replication) and how many must hold a write before
`acks=all` answers (`min.insync.replicas`), and a WARNING where a replicated cluster would get less.

Replication: SEGSTREAM_TOPIC_REPLICATION, else the brokers' `default.replication.factor`, read and sent
because aiokafka's CreateTopics version cannot send -1 ("the broker's default"). Kafka's stock default is
1, so a 3-broker cluster left at it gets single-replica topics: a broker's loss then stops the stream and can
lose acknowledged transitions. Hence the WARNING, at creation and (for topics that exist) at every start,
whenever a topic of a cluster of several brokers has fewer replicas than min(3, brokers), naming the fix.

min.insync.replicas: `acks=all` waits for the replicas *in sync*, and with Kafka's stock minimum of 1 that
set may shrink to the leader alone, which then acknowledges alone and loses the write when it dies. A topic
created with replication R >= 3 gets `min.insync.replicas` = min(2, R - 1) = 2 when the brokers' default is
lower (two copies hold each acknowledged write, one broker may be down and writes go on); a higher default
(the operator's choice) is kept. R = 2 gives min(2, 1) = 1, no stricter than any default: nothing is set.
Where the brokers' defaults cannot be read (no DESCRIBE_CONFIGS right), min(3, brokers) replicas and that
minimum are used, and a WARNING says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

log = logging.getLogger("segstream")

FACTOR: Final = "default.replication.factor"
MIN_ISR: Final = "min.insync.replicas"
SETTING: Final = "SEGSTREAM_TOPIC_REPLICATION"


@dataclass(frozen=True)
class Replication:
    """What a new topic gets: `factor` copies and these topic configs (min.insync.replicas when raised)."""

    factor: int
    configs: dict[str, str] = field(default_factory=dict)


class TopicsRefused(Exception):
    """The broker refused to create a topic as configured (exit code 2: a setting to fix)."""

    exit_code = 2


def usual(brokers: int) -> int:
    """The replication a production cluster usually gives a topic: 3, or every broker when fewer."""
    return min(3, brokers)


def min_insync(factor: int) -> int:
    """One replica may be down while writes go on; never more than 2 must hold a write."""
    return max(1, min(2, factor - 1))


Warn = Callable[..., None]


def decide(
    configured: int | None,
    brokers: int,
    defaults: Mapping[str, int],
    unreadable: str | None = None,
    warn: Warn = log.warning,
) -> Replication:
    """The replication of new topics from the setting and the brokers' `defaults` (FACTOR, MIN_ISR; empty
    when `unreadable` says why), with a WARNING (`warn`) for a fallback and for fewer copies than `usual`."""
    if configured is not None:
        factor, source = configured, f"{SETTING}={configured}"
    elif FACTOR in defaults:
        factor, source = defaults[FACTOR], f"the brokers' {FACTOR}"
    else:
        factor, source = usual(brokers), f"min(3, {brokers} brokers)"
    wanted, known = min_insync(factor), defaults.get(MIN_ISR)
    raise_isr = wanted >= 2 and (known is None or known < wanted)
    configs = {MIN_ISR: str(wanted)} if raise_isr else {}
    if unreadable is not None:
        warn(
            "could not read the brokers' %s and %s (%s): new topics get %d replicas (%s)%s",
            FACTOR,
            MIN_ISR,
            unreadable,
            factor,
            source,
            f" and {MIN_ISR}={wanted}" if raise_isr else f" and the brokers' {MIN_ISR}",
        )
    if brokers > 1 and factor < usual(brokers):
        fix = f"set {SETTING}={usual(brokers)} or the brokers' {FACTOR} to {usual(brokers)}"
        _too_few("new topics get", factor, brokers, source, fix, warn)
    return Replication(factor, configs)


def _too_few(what: str, factor: int, brokers: int, source: str, fix: str, warn: Warn = log.warning) -> None:
    warn(
        "%s %d replica%s on a cluster of %d brokers (%s): the loss of a broker holding one stops the stream"
        " and can lose acknowledged transitions; %s",
        what,
        factor,
        "" if factor == 1 else "s",
        brokers,
        source,
        fix,
    )


async def broker_defaults(admin: AIOKafkaAdminClient, node_id: int) -> dict[str, int]:
    """FACTOR and MIN_ISR as one broker says them; KafkaError when it refuses (no DESCRIBE_CONFIGS right:
    the broker answers with an error code in the resource, which aiokafka does not raise)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    response = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.BROKER, str(node_id), {FACTOR: None, MIN_ISR: None})]
    )
    return defaults_in(response[0].to_object())


def defaults_in(answer: Mapping[str, Any]) -> dict[str, int]:
    """The integer configs of a DescribeConfigs answer; the error a resource carries, raised."""
    found: dict[str, int] = {}
    for resource in answer["resources"]:
        if resource["error_code"]:
            error = for_code(resource["error_code"])
            raise error(resource["error_message"] or error.description)
        for entry in resource["config_entries"]:
            found[entry["config_names"]] = int(entry["config_value"])
    return found


async def replication(
    admin: AIOKafkaAdminClient, brokers: Sequence[Any], configured: int | None, warn: Warn = log.warning
) -> Replication:
    """`decide` with the defaults of the first broker (a cluster's brokers share them in practice)."""
    try:
        defaults = await broker_defaults(admin, brokers[0]["node_id"])
    except (KafkaError, LookupError, ValueError) as exc:
        return decide(configured, len(brokers), {}, f"{type(exc).__name__}: {exc}", warn)
    lacking = [key for key in (FACTOR, MIN_ISR) if key not in defaults]
    unreadable = f"the broker's answer lacks {', '.join(lacking)}" if lacking else None
    return decide(configured, len(brokers), defaults, unreadable, warn)


async def create_missing(
    admin: AIOKafkaAdminClient, wanted: Sequence[str], partitions: int, configured: int | None
) -> list[str]:
    """Create those of `wanted` that do not exist (`partitions` each, `replication` with `configured` the
    value of SEGSTREAM_TOPIC_REPLICATION) and return those this call created; log each topic's partitions
    and replicas, with a WARNING for an existing topic with fewer copies than usual.

    The topic list comes from one broker's metadata, which on a cluster of several brokers may not yet hold
    a topic created a moment ago (by another worker, or by this process's previous start): such a topic is
    refused as existing by the controller, and is then reported as existing, not as created, and the
    warnings about new topics' replication are not given for it."""
    brokers = (await admin.describe_cluster())["brokers"]
    existing = set(await admin.list_topics())
    missing = [t for t in wanted if t not in existing]
    created: list[str] = []
    if missing:
        held: list[tuple[Any, ...]] = []  # said only if a topic is really created
        chosen = await replication(admin, brokers, configured, lambda *args: held.append(args))
        new = [NewTopic(t, partitions, chosen.factor, topic_configs=chosen.configs) for t in missing]
        try:
            response = await admin.create_topics(new)
        except TopicAlreadyExistsError:  # raised rather than answered: which ones is unknown, describe all
            existing.update(missing)
        else:
            _refused(response)
            existed = {t for t, code, _ in getattr(response, "topic_errors", []) if code}
            existing.update(existed)
            created = [t for t in missing if t not in existed]
        if created:
            for args in held:
                log.warning(*args)
            extra = "".join(f", {k}={v}" for k, v in chosen.configs.items())
            log.info(
                "created topics %s: %d partitions, %d replicas%s",
                ", ".join(created),
                partitions,
                chosen.factor,
                extra,
            )
    present = [t for t in wanted if t in existing]
    if present:
        report(await _described(admin, present), len(brokers))
    return created


async def _described(
    admin: AIOKafkaAdminClient, topics: Sequence[str], attempts: int = 10
) -> list[Mapping[str, Any]]:
    """The topics' metadata; a topic a broker does not know yet (created a moment ago) is asked again, up
    to `attempts` times 0.2 s, and reported with no partitions if it never shows."""
    described: list[Mapping[str, Any]] = list(await admin.describe_topics(list(topics)))
    for _ in range(attempts - 1):
        unknown = [d["topic"] for d in described if not d.get("partitions")]
        if not unknown:
            break
        await asyncio.sleep(0.2)
        again = {d["topic"]: d for d in await admin.describe_topics(unknown)}
        described = [again.get(d["topic"], d) for d in described]
    return described


def report(topics: Sequence[Mapping[str, Any]], brokers: int) -> None:
    """One INFO line of the existing topics' partitions and replicas; a WARNING per under-replicated one."""
    shapes = []
    for topic in topics:
        partitions = topic["partitions"]
        copies = min((len(p["replicas"]) for p in partitions), default=0)
        shapes.append(f"{topic['topic']} ({len(partitions)} partitions, {copies} replicas)")
        if partitions and brokers > 1 and copies < usual(brokers):
            fix = f"add replicas with kafka-reassign-partitions.sh ({SETTING} applies to new topics only)"
            _too_few(f"topic {topic['topic']} has", copies, brokers, "set when it was created", fix)
    log.info("topics on %d broker%s: %s", brokers, "" if brokers == 1 else "s", ", ".join(shapes))


def _refused(response: Any) -> None:
    """aiokafka returns per-topic errors instead of raising: a refused topic would be auto-created later
    with the broker's defaults (partitions, replication) and the worker would run on it unawares."""
    for topic, code, message in getattr(response, "topic_errors", []):
        if code not in (0, TopicAlreadyExistsError.errno):
            raise TopicsRefused(
                f"the broker refused to create topic {topic!r}: {message or f'error {code}'}; check"
                f" SEGSTREAM_TOPIC_PARTITIONS / {SETTING} or create it yourself"
            )
