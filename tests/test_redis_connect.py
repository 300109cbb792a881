"""REDIS_ADDR names one Redis or any node of a cluster: the client is chosen from what the server says."""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster

from imagegen.redis_connect import connect, is_cluster
from tests.redis_cluster import redis_cluster, redis_cluster_addr  # noqa: F401 (fixtures)


def test_a_single_redis_gets_a_plain_client(redis_addr):
    client = connect(redis_addr)
    assert not is_cluster(redis_addr) and type(client) is redis.Redis
    client.set("k", "v")
    assert client.get("k") == b"v"


def test_any_cluster_node_gets_a_cluster_client_that_reaches_every_slot(redis_cluster, redis_cluster_addr):
    for port in redis_cluster.ports:
        assert is_cluster(f"127.0.0.1:{port}")
    client = connect(f"127.0.0.1:{redis_cluster.ports[-1]}")
    assert isinstance(client, RedisCluster)
    for number in range(30):  # keys spread over the three nodes' slots
        client.set(f"key-{number}", number)
    assert [int(client.get(f"key-{n}")) for n in range(30)] == list(range(30))
    assert len({client.keyslot(f"key-{n}") // 5462 for n in range(30)}) == 3
