"""The chaos stacks' fixed ports stay out of Linux's ephemeral range, where a client may hold them."""

from __future__ import annotations

from pathlib import Path

from tests.chaos import cluster_stack
from tests.chaos.redis_cluster_stack import BUS_OFFSET, RedisClusterStack
from tests.chaos.stack import PrivateStack

EPHEMERAL_FIRST = 32768  # Linux's default net.ipv4.ip_local_port_range starts here


def test_no_chaos_stack_listens_in_the_ephemeral_range(tmp_path: Path) -> None:
    """A Redis Cluster node also listens on its port + 10000: the failover stack's 27100 put its bus on
    37100-37105, and a CI run failed when a client's local port was 37102."""
    failover = RedisClusterStack.create_failover(tmp_path)
    listening = [
        *failover.ports,
        *(port + BUS_OFFSET for port in failover.ports),
        failover.cfg.kafka_port,
        failover.cfg.controller_port,
        failover.cfg.redis_port,
    ]
    private = PrivateStack.create(tmp_path)
    listening += [private.cfg.kafka_port, private.cfg.controller_port, private.cfg.redis_port]
    brokers = cluster_stack.BROKER_PORT, cluster_stack.CONTROLLER_PORT
    listening += [port + n for port in brokers for n in range(3)]
    assert [port for port in listening if port >= EPHEMERAL_FIRST] == []
