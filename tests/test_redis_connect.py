"""REDIS_ADDR names one Redis or any node of a cluster: the client is chosen from what the server says."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from devstack.process import wait_for
from imagegen.redis_connect import HotScript, connect, is_cluster
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


ECHO_KEY = "return {KEYS[1], ARGV[1], redis.call('GET', KEYS[1])}"


def _names(client: redis.Redis) -> list[str]:
    return [entry.get("name", "") for entry in client.client_list()]


def test_a_hot_script_answers_as_redis_py_does_and_keeps_its_connection(redis_addr):
    client = connect(redis_addr)
    client.set("k", "v")
    script = HotScript(client, ECHO_KEY)
    before = len(client.client_list())
    assert [script(keys=["k"], args=[n]) for n in (1, 2, 3)] == [[b"k", str(n).encode(), b"v"] for n in (1, 2, 3)]
    assert script(keys=["k"], args=["x"]) == client.register_script(ECHO_KEY)(keys=["k"], args=["x"])
    assert len(client.client_list()) == before + 1  # one connection, kept between calls
    script.close()
    wait_for(lambda: len(client.client_list()) == before, what="the kept connection closed")


def test_a_hot_script_survives_a_redis_that_forgot_its_scripts_and_a_killed_connection(redis_addr):
    client = connect(redis_addr)
    client.set("k", "v")
    script = HotScript(client, ECHO_KEY)
    assert script(keys=["k"], args=[1])[2] == b"v"
    client.script_flush()  # as after a restart: EVALSHA answers NOSCRIPT
    assert script(keys=["k"], args=[2])[2] == b"v"
    client.client_kill_filter(_type="normal", skipme=True)  # the kept connection is closed under it
    assert script(keys=["k"], args=[3])[2] == b"v"
    script.close()


def test_a_hot_script_on_a_stopped_redis_fails_with_a_connection_error_and_recovers(redis_server, redis_addr):
    client = connect(redis_addr)
    script = HotScript(client, ECHO_KEY)
    assert script(keys=["k"], args=[1])[0] == b"k"
    redis_server.stop()
    try:
        with pytest.raises(redis.ConnectionError):
            script(keys=["k"], args=[2])
    finally:
        redis_server.start()
    assert script(keys=["k"], args=[3])[0] == b"k"  # the script is sent again to the empty Redis
    script.close()


def test_a_hot_script_on_a_cluster_reaches_the_key_s_node(redis_cluster, redis_cluster_addr):
    client = connect(redis_cluster_addr)
    script = HotScript(client, ECHO_KEY)
    for number in range(10):
        client.set(f"key-{number}", number)
    assert [int(script(keys=[f"key-{n}"], args=[0])[2]) for n in range(10)] == list(range(10))
