"""The local stack on spare ports: up is idempotent, status reports, down leaves nothing of ours running."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from streams import devstack
from streams.devstack import StackConfig
from streams.devstack.__main__ import main as devstack_cli
from streams.devstack.kafka import port_open

REPO = Path(__file__).resolve().parents[2]


def _our_processes(root: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(root) in line and " Z" not in line]


def test_up_is_idempotent_and_down_stops_everything(tmp_path: Path) -> None:
    cfg = StackConfig(root=tmp_path / "stack", kafka_port=19392, controller_port=19393, redis_port=16399)
    try:
        first = devstack.up(cfg)
        assert first.running
        assert port_open(cfg.kafka_port) and port_open(cfg.redis_port)
        again = devstack.up(cfg)
        assert (again.kafka_pid, again.redis_pid) == (first.kafka_pid, first.redis_pid)
        assert (cfg.kafka_dir / "server.log").stat().st_size > 0
        assert any((cfg.redis_dir / "data").rglob("*.aof")), "AOF persistence must be on"
    finally:
        stopped = devstack.down(cfg)
    assert sorted(stopped) == ["kafka", "redis"]
    assert not devstack.status(cfg).running
    assert not port_open(cfg.kafka_port) and not port_open(cfg.redis_port)
    assert _our_processes(cfg.root) == []
    assert devstack.down(cfg) == []  # a second down has nothing left to stop


def test_up_refuses_a_port_taken_by_someone_else(tmp_path: Path, services: object) -> None:
    cfg = StackConfig(root=tmp_path / "other", redis_port=int(devstack.StackConfig.from_env().redis_port))
    if not port_open(cfg.redis_port):
        pytest.skip("the shared Redis is not on the local stack's port")
    with pytest.raises(devstack.StackError, match="taken by a process the local stack did not start"):
        devstack.up(cfg)


def test_compose_file_is_valid() -> None:
    compose = REPO / "docker-compose.yml"
    spec = yaml.safe_load(compose.read_text())
    assert spec["services"]["kafka"]["image"] == f"apache/kafka:{devstack.kafka_version()}"
    assert spec["services"]["redis"]["image"].startswith("redis:7")
    assert {"9092:9092"} == set(spec["services"]["kafka"]["ports"])
    for name in ("kafka", "redis"):
        assert "healthcheck" in spec["services"][name]
    # Kafka's data lives on the mounted volume, not in the image's default /tmp/kraft-combined-logs
    kafka = spec["services"]["kafka"]
    data_dir = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert any(volume.endswith(":" + data_dir) for volume in kafka["volumes"])
    for cli in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cli[0]) is None:
            continue
        probe = subprocess.run([*cli, "version"], capture_output=True, check=False)
        if probe.returncode != 0:
            continue
        result = subprocess.run(
            [*cli, "-f", str(compose), "config", "-q"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr


def test_redis_cluster_up_is_idempotent_survives_a_restart_and_down_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import redis
    from redis.cluster import RedisCluster

    cfg = StackConfig(root=tmp_path / "cluster", cluster_port=17310)
    nodes = [17310, 17311, 17312]
    try:
        first = devstack.cluster_up(cfg)
        assert first.running and first.ports == tuple(nodes)
        assert first.url == "redis+cluster://127.0.0.1:17310"
        assert all(port_open(p) and port_open(p + 10000) for p in nodes)  # client and bus ports
        again = devstack.cluster_up(cfg)
        assert again.pids == first.pids
        monkeypatch.setenv("SEGSTREAM_DEVSTACK_DIR", str(cfg.root))
        monkeypatch.setenv("SEGSTREAM_DEVSTACK_CLUSTER_PORT", "17310")
        assert devstack_cli(["status", "--redis-cluster"]) == 3  # the cluster runs, the rest of the stack not
        shown = capsys.readouterr().out.splitlines()[-1]
        assert shown.startswith("redis-cluster running (pids ") and "redis+cluster://127.0.0.1:17310" in shown
        for port in nodes:
            info = redis.Redis(port=port, decode_responses=True).cluster("INFO")
            assert (info["cluster_state"], info["cluster_size"]) == ("ok", "3")
        client = RedisCluster(host="127.0.0.1", port=17310)
        slots = client.cluster_slots()
        assert sorted(slots) == [(0, 5460), (5461, 10922), (10923, 16383)]
        client.set("{t:0}:kept", "1")
        client.close()
        assert devstack.cluster_down(cfg)
        assert not devstack.cluster_status(cfg).running
        restarted = devstack.cluster_up(cfg)  # the nodes rejoin from nodes.conf: same slots, same data
        assert restarted.running and restarted.pids != first.pids
        client = RedisCluster(host="127.0.0.1", port=17310)
        assert client.get("{t:0}:kept") == b"1"
        client.close()
    finally:
        stopped = devstack.down(cfg)
    assert stopped == ["redis-cluster"]
    assert not any(port_open(p) for p in nodes)
    assert _our_processes(cfg.root) == []
    assert not devstack.cluster_down(cfg)


def test_a_damaged_jar_in_the_stacks_folder_is_copied_again(tmp_path: Path) -> None:
    """A jar cut short after `.complete` was written (a full disk): every `up` failed with "Could not find or
    load main class kafka.Kafka" until someone found the folder to delete."""
    import zipfile

    from streams.devstack import kafka

    cfg = StackConfig(root=tmp_path / "stack")
    libs = kafka.resolve_jars(cfg)
    jar = libs / f"kafka_2.13-{devstack.kafka_version()}.jar"
    whole = jar.stat().st_size
    with open(jar, "r+b") as f:
        f.truncate(whole // 2)
    assert kafka.resolve_jars(cfg) == libs
    assert jar.stat().st_size == whole
    with zipfile.ZipFile(jar) as archive:
        assert "kafka/Kafka.class" in archive.namelist()


def test_a_failed_kafka_start_quotes_its_own_reason_not_an_earlier_starts(tmp_path: Path) -> None:
    """The error quoted the last lines of kafka.out, which keeps every start's output: after a bad heap was
    fixed, a start that failed on its listeners still said "Invalid maximum heap size", and the broker's own
    reason (in server.log) was never shown."""
    from streams.devstack import kafka

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    cfg = StackConfig(root=tmp_path / "stack", kafka_port=port, controller_port=port, kafka_heap="bogus")
    (cfg.kafka_dir / "data").mkdir(parents=True)
    (cfg.kafka_dir / "data" / "meta.properties").write_text("")  # formatted: both starts fail before using it
    with pytest.raises(devstack.StackError, match="Invalid maximum heap size"):
        kafka.wait_ready(cfg, kafka.start(cfg), timeout=60)
    cfg = StackConfig(root=cfg.root, kafka_port=port, controller_port=port, kafka_heap="256m")
    with pytest.raises(devstack.StackError) as failed:
        kafka.wait_ready(cfg, kafka.start(cfg), timeout=60)
    assert "two listeners on the same port" in str(failed.value)
    assert "Invalid maximum heap size" not in str(failed.value)


def test_kafka_without_java_on_path_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The jars already in the stack's folder (a second `up`), but no `java` on PATH: the start ended in a
    FileNotFoundError traceback; the check ran only when the jars were copied."""
    from streams.devstack import kafka

    cfg = StackConfig(root=tmp_path / "stack", kafka_port=_free_port(), controller_port=_free_port())
    kafka.resolve_jars(cfg)
    no_java = tmp_path / "bin"
    no_java.mkdir()
    monkeypatch.setenv("PATH", str(no_java))
    with pytest.raises(devstack.StackError, match=r"^Java is not on PATH: Kafka 4 needs Java 17"):
        kafka.start(cfg)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_redis_that_cannot_load_its_aof_says_why(tmp_path: Path) -> None:
    """A damaged AOF (a disk that filled up): the error said only "redis-server exited during start; see
    redis.log", where Redis names the file and the fix (redis-check-aof --fix)."""
    import redis as redis_client

    from streams.devstack import redis
    from streams.devstack.process import stop

    cfg = StackConfig(root=tmp_path / "stack", redis_port=_free_port())
    redis.wait_ready(cfg, redis.start(cfg))
    redis_client.Redis(port=cfg.redis_port).set("kept", "1")
    assert stop(cfg.redis_dir / "redis.pid")
    (increment,) = (cfg.redis_dir / "data" / "appendonlydir").glob("*.incr.aof")
    increment.write_bytes(b"*2\r\n$3\r\nSET\r\nnot a command\r\n")
    with pytest.raises(devstack.StackError) as failed:
        redis.wait_ready(cfg, redis.start(cfg))
    assert "Bad file format reading the append only file" in str(failed.value)
    assert "redis-check-aof --fix" in str(failed.value)
