"""`segstream doctor` must not call a broken setup balanced: a namespace keyed for another partition count
than SEGSTREAM_TOPIC_PARTITIONS."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.integration.test_doctor import doctor, replayed
from tests.integration.worker_harness import make_settings
from tests.services import Services


def test_doctor_refuses_a_namespace_built_for_another_partition_count(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    built = make_settings(services, topic_name, redis_prefix, topic_partitions=8, namespace="main")
    replayed(built, tmp_path)
    fine = doctor(built, "--json", "--strict")
    assert fine.returncode == 0, fine.stderr
    assert len(json.loads(fine.stdout)["partitions"]) == 8
    wrong = built.model_copy(update={"topic_partitions": 4})
    done = doctor(wrong, "--strict")
    assert done.returncode == 3, (done.returncode, done.stdout)
    assert "built for 8 partitions" in done.stderr and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1


def test_doctor_refuses_a_skew_limit_that_is_not_a_finite_percentage(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """`nan` compares false with every skew, `inf` is above all: either would make `--strict` pass any layout
    (the report said `limit nan%`). Refused like a negative or empty value: one line, exit 2."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2, namespace="main")
    replayed(settings, tmp_path)
    for value in ("nan", "NaN%", "inf", "-inf", "", "-1", "1e400"):
        done = doctor(settings, "--strict", "--max-skew", value)
        assert done.returncode == 2, (value, done.returncode, done.stdout[-200:])
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert doctor(settings, "--strict", "--max-skew", "40%").returncode == 0


def test_doctor_warns_when_the_namespace_holds_nothing_for_the_topic(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """A doctor run with another SEGSTREAM_EVENTS_TOPIC or SEGSTREAM_KEY_PREFIX than the workers' (the keys
    are named by both) measured an empty namespace and called it balanced: 0 customers, skew +0%, exit 0
    under --strict. It says it found nothing (a warning; exit 3 with --strict)."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2, namespace="main")
    replayed(settings, tmp_path)
    assert doctor(settings, "--strict").returncode == 0
    for wrong in (
        settings.model_copy(update={"events_topic": topic_name("other-events")}),
        settings.model_copy(update={"key_prefix": settings.key_prefix + "-typo", "namespace": None}),
    ):
        done = doctor(wrong, "--strict")
        assert done.returncode == 3, (done.returncode, done.stdout, done.stderr)
        assert "holds nothing for topic" in done.stderr, done.stderr
        report = doctor(wrong, "--json")
        assert report.returncode == 0 and "holds nothing for topic" in report.stdout


def test_doctor_refuses_an_empty_namespace_name(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """`--namespace ""` (an unset shell variable: `--namespace "$NS"`) measured the active namespace instead
    and said nothing: the report was about another namespace than the one asked for."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2, namespace="main")
    replayed(settings, tmp_path)
    done = doctor(settings, "--namespace", "")
    assert done.returncode == 2, (done.returncode, done.stdout[:200])
    assert "invalid namespace name ''" in done.stderr and len(done.stderr.strip().splitlines()) == 1
