"""Every expected failure of a `segstream` command ends in one line on stderr, a documented exit code (2 bad
input, 3 refused by a guard, 4 a service unreachable), no traceback, and nothing written (issue 17: these
ended in 25-77 line tracebacks, and a failed CSV replay left a half-made namespace that refused the retry)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from redis.crc import key_slot

from streams.store.keys import KeySpace
from streams.store.namespaces import pointer_key
from tests.integration.slot_migration import owner, primaries
from tests.services import Services, wants_cluster

ROOT = Path(__file__).resolve().parents[2]
ORDERS = ROOT / "examples" / "orders.csv"
GOOD_MAP = "customer_id=cust,occurred_at=date,amount=total,order_id=id"


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def segstream(
    args: list[str], env: dict[str, str], cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**env, **extra},
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def failed(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """Assert the exit code, one line on stderr naming `words`, no traceback; return that line."""
    err = result.stderr
    assert result.returncode == code, (result.returncode, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert all(word in err for word in words), err
    return err


def keys(client: redis.Redis, env: dict[str, str], namespace: str = "") -> list[str]:
    pattern = f"{env['SEGSTREAM_KEY_PREFIX']}:{namespace}*"
    return list(client.scan_iter(match=pattern, count=1000))


def topics(services: Services) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def our_topics(services: Services, env: dict[str, str]) -> set[str]:
    ours = {env["SEGSTREAM_EVENTS_TOPIC"], env["SEGSTREAM_TRANSITIONS_TOPIC"], env["SEGSTREAM_DLQ_TOPIC"]}
    return topics(services) & ours


def with_namespace(client: redis.Redis, env: dict[str, str], name: str) -> None:
    """A namespace that exists: it holds a key (its definitions record)."""
    keyspace = KeySpace(env["SEGSTREAM_KEY_PREFIX"], name, env["SEGSTREAM_EVENTS_TOPIC"])
    client.hset(keyspace.definitions(), "version", "test")


# --- services unreachable (4), bad input (2) -----------------------------------------------------------


def test_worker_without_kafka_waits_then_exits_4(
    env: dict[str, str], client: redis.Redis, services: Services
) -> None:
    result = segstream(["worker"], env, SEGSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{closed_port()}")
    failed(result, 4, "Kafka", "SEGSTREAM_KAFKA_BOOTSTRAP", "SEGSTREAM_CONNECT_TIMEOUT_S")
    assert "waiting for Kafka" in result.stdout
    assert keys(client, env) == []


def test_worker_without_redis_waits_then_exits_4(
    env: dict[str, str], client: redis.Redis, services: Services
) -> None:
    url = f"redis://:s3cret@127.0.0.1:{closed_port()}/0"
    result = segstream(["worker"], env, SEGSTREAM_REDIS_URL=url)
    line = failed(result, 4, "Redis", "SEGSTREAM_REDIS_URL")
    assert "s3cret" not in line + result.stdout and "waiting for Redis" in result.stdout
    assert our_topics(services, env) == set(), "nothing created before the services answered"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs a redis-server binary")
def test_worker_waits_for_redis_and_starts_once_it_answers(env: dict[str, str], tmp_path: Path) -> None:
    """The positive side of the wait: Redis started after the worker (a reboot, a deploy) is waited for."""
    port = closed_port()
    out = tmp_path / "worker.out"
    late = {"SEGSTREAM_REDIS_URL": f"redis://127.0.0.1:{port}/0", "SEGSTREAM_CONNECT_TIMEOUT_S": "30"}
    with out.open("wb") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env={**env, **late},
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    redis_server = None
    try:
        until(lambda: "waiting for Redis" in out.read_text(), worker)
        redis_server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
        )
        late_redis = redis.Redis(port=port)

        def started() -> bool:  # its poll loop runs: it reported into the namespace's metrics hash
            try:
                return bool(list(late_redis.scan_iter(match="*:metrics")))
            except redis.ConnectionError:  # the late server is not listening yet
                return False

        try:
            until(started, worker)
        finally:
            late_redis.close()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, out.read_text()
    finally:
        for proc in (worker, redis_server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "Traceback" not in out.read_text()


def until(condition: Callable[[], bool], proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, f"exited {proc.returncode}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_worker_with_a_bad_definitions_file_exits_2(
    env: dict[str, str], client: redis.Redis, services: Services, tmp_path: Path
) -> None:
    bad = tmp_path / "defs.yaml"
    bad.write_text("version: v2\nrfm: {recency_days: [1, 2]}\n", encoding="utf-8")
    result = segstream(["worker"], env, SEGSTREAM_DEFINITIONS_FILE=str(bad))
    failed(result, 2, "defs.yaml", "recency_days")
    assert keys(client, env) == [] and our_topics(services, env) == set()


def test_worker_whose_topics_the_broker_refuses_exits_2(
    env: dict[str, str], client: redis.Redis, services: Services
) -> None:
    """aiokafka reports a refused topic in its response, not by raising: the worker used to go on, and the
    broker then auto-created the topic with its own defaults."""
    result = segstream(["worker"], env, SEGSTREAM_TOPIC_REPLICATION="100")
    failed(result, 2, "refused to create topic", "SEGSTREAM_TOPIC_REPLICATION")
    assert keys(client, env) == [] and our_topics(services, env) == set()


def test_worker_on_an_events_topic_of_another_partition_count_exits_3(
    env: dict[str, str], client: redis.Redis, services: Services
) -> None:
    """Customers map to partitions by SEGSTREAM_TOPIC_PARTITIONS: a topic with partitions added (or created
    otherwise) would split a customer's events over two partitions and two states. Refused before anything
    is written."""
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(env["SEGSTREAM_EVENTS_TOPIC"], 3, 1)])
    finally:
        admin.close()
    result = segstream(["worker"], env, SEGSTREAM_TOPIC_PARTITIONS="4")
    last = result.stderr.splitlines()[-1]
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    assert "has 3 partitions but SEGSTREAM_TOPIC_PARTITIONS is 4" in last and last.endswith("promote`"), last
    assert keys(client, env) == []


def test_sample_to_another_topic_ignores_the_events_topics_partition_count(
    env: dict[str, str], services: Services
) -> None:
    """`sample --topic X` writes X: the configured events topic's partition count is not its concern."""
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(env["SEGSTREAM_EVENTS_TOPIC"], 3, 1)])
    finally:
        admin.close()
    other = env["SEGSTREAM_EVENTS_TOPIC"] + "-sample"
    result = segstream(["sample", "--customers", "5", "--days", "3", "--topic", other], env)
    assert result.returncode == 0 and result.stdout.strip().endswith(f"events to {other}"), result.stderr
    assert other in topics(services)


def test_a_dlq_topic_too_small_for_a_dead_letter_refuses_the_worker_not_sample(
    env: dict[str, str], client: redis.Redis, services: Services
) -> None:
    """Below 8 KiB no cut makes a dead letter fit, and the first bad record would stop the worker at every
    restart: the worker exits 2 at start, naming the topic and its limit; `sample`, which never writes the
    DLQ topic, is not refused (final review, 7 December 2026)."""
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    dlq = env["SEGSTREAM_DLQ_TOPIC"]
    try:
        admin.create_topics([NewTopic(dlq, 1, 1, topic_configs={"max.message.bytes": "4096"})])
    finally:
        admin.close()
    result = segstream(["worker"], env)
    last = result.stderr.splitlines()[-1]  # after the lines saying which topics it created
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert dlq in last and "max.message.bytes=4096" in last and "8192" in last, last
    assert keys(client, env) == []
    done = segstream(["sample", "--customers", "5", "--days", "3"], env)
    assert done.returncode == 0, done.stderr


def test_worker_whose_session_timeout_the_brokers_refuse_exits_2(env: dict[str, str]) -> None:
    """Below the brokers' group.min.session.timeout.ms (6 s by default) the group refuses the member: the
    setting reached the broker, and the operator reads which one to change."""
    short = {"SEGSTREAM_KAFKA_SESSION_TIMEOUT_MS": "3000", "SEGSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "1000"}
    result = segstream(["worker"], {**env, **short})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("segstream worker: Kafka at "), last
    assert "refused SEGSTREAM_KAFKA_SESSION_TIMEOUT_MS=3000" in last, last


def test_api_on_a_port_in_use_exits_2(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = segstream(["api", "--no-auth", "--port", str(port)], env)
    failed(result, 2, "address already in use", "--port")


def test_api_without_redis_exits_4(env: dict[str, str]) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    result = segstream(["api", "--no-auth", "--port", str(closed_port())], env, SEGSTREAM_REDIS_URL=url)
    failed(result, 4, "Redis", "SEGSTREAM_REDIS_URL")
    assert "waiting for Redis" in result.stdout


def test_api_with_a_bad_setting_exits_2(env: dict[str, str]) -> None:
    failed(segstream(["api", "--no-auth"], env, SEGSTREAM_API_PORT="http"), 2, "SEGSTREAM_API_PORT")


def test_customer_without_redis_exits_4(env: dict[str, str]) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    failed(segstream(["customer", "c-1"], env, SEGSTREAM_REDIS_URL=url), 4, "Redis")


@pytest.mark.parametrize("args", [["customer", "c-1"], ["namespaces"], ["doctor"], ["drop", "old"]])
def test_commands_without_a_redis_cluster_exit_4(env: dict[str, str], args: list[str]) -> None:
    """redis-py's cluster client says "no node reachable" with a RedisClusterException, not a connection
    error: these exited 1 "unexpected RedisClusterException" with a traceback."""
    nodes = f"127.0.0.1:{closed_port()},127.0.0.1:{closed_port()}"
    result = segstream(args, env, SEGSTREAM_REDIS_URL=f"redis+cluster://{nodes}/0")
    failed(result, 4, "cannot reach Redis", "SEGSTREAM_REDIS_URL")


@pytest.mark.cluster
@pytest.mark.skipif(not wants_cluster(), reason="a Redis Cluster node: SEGSTREAM_TEST_REDIS=cluster")
@pytest.mark.parametrize("args", [["namespaces"], ["worker"]])
def test_a_cluster_node_named_by_a_plain_url_is_a_configuration_error(
    env: dict[str, str], services: Services, args: list[str]
) -> None:
    """A plain `redis://` URL of a cluster node without SEGSTREAM_REDIS_CLUSTER: the first key of a slot on
    another node is answered MOVED. This exited 1 "unexpected MovedError" with a traceback."""
    host, port = services.redis_url.split("://", 1)[1].split("/", 1)[0].split(",")[0].rsplit(":", 1)
    nodes = primaries(host, int(port))
    pointer = key_slot(pointer_key(env["SEGSTREAM_KEY_PREFIX"]).encode())  # read first by both commands
    other = next(node for node in nodes if node != owner(nodes, pointer))
    result = segstream(args, env, SEGSTREAM_REDIS_URL=f"redis://{other.name}/0")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.splitlines()[-1]  # the worker logs its topics first
    assert all(w in last for w in ("Redis Cluster", "redis+cluster://", "SEGSTREAM_REDIS_CLUSTER=true")), last


def test_replay_with_a_column_missing_from_the_csv_writes_nothing_and_the_retry_works(
    env: dict[str, str], client: redis.Redis, tmp_path: Path
) -> None:
    shutil.copy(ORDERS, tmp_path / "orders.csv")
    replay = ["replay", "orders.csv", "--namespace", "csv1", "--no-progress", "--currency", "EUR", "--map"]
    result = segstream([*replay, GOOD_MAP.replace("=total", "=totl")], env, cwd=tmp_path)
    failed(result, 2, "totl", "header")
    assert keys(client, env) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv"]
    no_currency = [r for r in replay if r not in ("--currency", "EUR")]
    failed(segstream([*no_currency, GOOD_MAP], env, cwd=tmp_path), 2, "--currency", "never assumed")
    assert keys(client, env) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv"]
    retry = segstream([*replay, GOOD_MAP], env, cwd=tmp_path)
    assert retry.returncode == 0, retry.stderr
    assert keys(client, env, "csv1:")
    failed(segstream([*replay, GOOD_MAP], env, cwd=tmp_path), 3, "'csv1' is not empty", "--force")


def test_replay_of_a_missing_topic_exits_2_and_creates_nothing(
    env: dict[str, str], client: redis.Redis, services: Services, topic_name: Callable[[str], str]
) -> None:
    missing = topic_name("no-such-topic")
    result = segstream(["replay", f"kafka:{missing}", "--namespace", "k1", "--no-progress"], env)
    failed(result, 2, missing)
    assert keys(client, env) == [] and missing not in topics(services)


def test_replay_of_a_topic_without_kafka_exits_4(env: dict[str, str], client: redis.Redis) -> None:
    bootstrap = f"127.0.0.1:{closed_port()}"
    result = segstream(["replay", "kafka:t", "--namespace", "k1"], env, SEGSTREAM_KAFKA_BOOTSTRAP=bootstrap)
    failed(result, 4, "Kafka", "SEGSTREAM_KAFKA_BOOTSTRAP")
    assert keys(client, env) == []


@pytest.mark.parametrize(
    "command",
    [
        ["replay", str(ORDERS), "--namespace", "e1", "--map", GOOD_MAP, "--currency", "EUR", "--emit", "t"],
        ["definitions", "apply", str(ROOT / "segmentation" / "definitions.yaml"), "--namespace", "main"],
    ],
    ids=["replay-emit", "apply"],
)
def test_commands_publishing_without_kafka_exit_4_and_write_nothing(
    env: dict[str, str], client: redis.Redis, command: list[str], tmp_path: Path
) -> None:
    bootstrap = f"127.0.0.1:{closed_port()}"
    failed(segstream(command, env, cwd=tmp_path, SEGSTREAM_KAFKA_BOOTSTRAP=bootstrap), 4, "Kafka")
    assert keys(client, env) == [] and list(tmp_path.iterdir()) == []


def test_usage_errors_are_one_line(env: dict[str, str]) -> None:
    failed(segstream(["drop"], env), 2, "name", "--help")
    failed(segstream(["replay", "x.jsonl"], env), 2, "--namespace")


def test_bad_values_are_one_line_and_write_nothing(
    env: dict[str, str], client: redis.Redis, tmp_path: Path
) -> None:
    out = tmp_path / "s.jsonl"
    failed(segstream(["sample", "--start", "soon", "--output", str(out)], env), 2, "'soon'")
    failed(segstream(["sample", "--malformed", "2", "--output", str(out)], env), 2, "malformed")
    failed(segstream(["replay", "kafka:t", "--since", "yesterday", "--namespace", "k1"], env), 2, "--since")
    assert not out.exists() and keys(client, env) == []


def test_replay_options_of_another_source_are_refused_not_ignored(
    env: dict[str, str], client: redis.Redis, tmp_path: Path
) -> None:
    """`--since` on a file, or `--currency` on a JSONL file, was ignored: the whole file was replayed, or
    no currency given to anything, and the command said it succeeded (exit 0)."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_id": "e1"}\n')
    replay = ["replay", str(events), "--no-progress", "--output-dir", str(tmp_path)]
    since = [*replay, "--namespace", "f1", "--since", "2026-06-01T00:00:00Z"]
    failed(segstream(since, env), 2, "--since", "kafka:")
    failed(segstream([*replay, "--namespace", "f2", "--currency", "EUR"], env), 2, "--currency", "CSV")
    assert keys(client, env) == []


# --- guards (3) ----------------------------------------------------------------------------------------


def test_drop_of_an_unknown_namespace_is_refused_listing_the_known_ones(
    env: dict[str, str], client: redis.Redis
) -> None:
    with_namespace(client, env, "spring")
    before = keys(client, env)
    failed(segstream(["drop", "sprnig"], env), 3, "unknown namespace 'sprnig'", "spring", "main (active)")
    assert keys(client, env) == before
    failed(segstream(["drop", "main"], env), 3, "active")
    done = segstream(["drop", "spring"], env)
    assert done.returncode == 0 and keys(client, env) == [], done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["definitions", "apply", "segmentation/definitions.yaml", "--no-emit", "--namespace", "sprnig"],
        ["definitions", "diff", "segmentation/definitions.yaml", "--namespace", "sprnig"],
        ["calibrate", "--namespace", "sprnig"],
        ["promote", "sprnig"],
    ],
    ids=["apply", "diff", "calibrate", "promote"],
)
def test_commands_naming_an_unknown_namespace_are_refused(
    env: dict[str, str], client: redis.Redis, command: list[str]
) -> None:
    with_namespace(client, env, "spring")
    before = keys(client, env)
    failed(segstream(command, env), 3, "namespace 'sprnig'", "known: main (active), spring")
    assert keys(client, env) == before
    assert client.get(f"{env['SEGSTREAM_KEY_PREFIX']}:namespace:active") is None


def test_customer_in_an_unknown_pinned_namespace_is_refused(env: dict[str, str], client: redis.Redis) -> None:
    """SEGSTREAM_NAMESPACE with a typo: refused with the known ones, not "customer not found"."""
    with_namespace(client, env, "spring")
    for extra in ([], ["--json"]):
        result = segstream(["customer", "c1", *extra], env, SEGSTREAM_NAMESPACE="sprnig")
        failed(result, 3, "unknown namespace 'sprnig'", "spring")
    found = segstream(["customer", "c1"], env, SEGSTREAM_NAMESPACE="spring")
    assert found.returncode == 1 and "not found" in found.stderr, found.stderr  # known, no such customer


def test_apply_creates_an_unknown_namespace_only_when_told(env: dict[str, str], client: redis.Redis) -> None:
    apply = ["definitions", "apply", "segmentation/definitions.yaml", "--no-emit", "--namespace", "fresh"]
    failed(segstream(apply, env), 3, "--create")
    assert keys(client, env) == []
    created = segstream([*apply, "--create"], env)
    assert created.returncode == 0 and keys(client, env, "fresh:"), created.stderr


def test_debug_shows_the_traceback(env: dict[str, str]) -> None:
    result = segstream(["--debug", "drop", "sprnig"], env)
    assert result.returncode != 0 and "Traceback" in result.stderr and "NamespaceRefused" in result.stderr
