"""A real 3-node Redis Cluster (no replicas) on free loopback ports, for tests of cluster-safe keys."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from imagegen.redis_connect import connect



class RedisClusterServers:
    """Three redis-server processes with cluster mode on, joined by `redis-cli --cluster create`."""

    def __init__(self, workdir: Path, nodes: int = 3) -> None:
        self.binary = shutil.which("redis-server")
        self.cli = shutil.which("redis-cli")
        if self.binary is None or self.cli is None:
            raise RuntimeError("redis-server and redis-cli are needed; apt-get install redis-server")
        self.workdir = workdir
        self.ports = _free_node_ports(nodes)
        self.processes: list[subprocess.Popen] = []

    @property
    def addr(self) -> str:
        """One node's host:port, as REDIS_ADDR would name it."""
        return f"127.0.0.1:{self.ports[0]}"

    def client(self) -> RedisCluster:
        """A cluster client, for assertions and clean-up."""
        return RedisCluster(host="127.0.0.1", port=self.ports[0], socket_timeout=5)

    def start(self) -> RedisClusterServers:
        """Starts the nodes, creates the cluster and waits until every node says cluster_state:ok."""
        for port in self.ports:
            node_dir = self.workdir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            self.processes.append(subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node_dir / "nodes.conf"), "--save", "", "--appendonly", "no",
                 "--dir", str(node_dir)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in self.ports:
            self._wait(lambda port=port: redis.Redis(port=port, socket_timeout=1).ping(), "a node to answer PING")
        subprocess.run([self.cli, "--cluster", "create", *[f"127.0.0.1:{port}" for port in self.ports],
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        for port in self.ports:
            self._wait(lambda port=port: redis.Redis(port=port, socket_timeout=1).cluster("info")
                       .get("cluster_state") == "ok", "cluster_state:ok")
        return self

    def flush(self) -> None:
        """Empties every node."""
        for port in self.ports:
            redis.Redis(port=port, socket_timeout=5).flushall()

    def stop(self) -> None:
        """Stops every node (SIGTERM, then SIGKILL)."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.processes = []

    def _wait(self, ready, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if ready():
                    return
            except redis.RedisError:
                pass
            if any(process.poll() is not None for process in self.processes):
                raise RuntimeError("a cluster node exited while starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A real 3-node cluster for the session (import this fixture into a test module to use it)."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster_addr(redis_cluster) -> str:
    """REDIS_ADDR of one cluster node, every node emptied before the test."""
    redis_cluster.flush()
    return redis_cluster.addr


BACKENDS = ["memory", "redis", "cluster"]  # the params of a contract fixture built with replica_views


@contextlib.contextmanager
def replica_views(request, in_memory: Callable[[], object],
                  over_redis: Callable[[object, str], object]) -> Iterator[Callable[[], object]]:
    """A maker of one shared store's views, one per replica: the same in-process object, or a new Redis
    client each (a single redis-server or the cluster, after request.param), closed afterwards."""
    if request.param == "memory":
        shared = in_memory()
        yield lambda: shared
        return
    addr = request.getfixturevalue("redis_addr" if request.param == "redis" else "redis_cluster_addr")
    clients = []

    def make():
        clients.append(connect(addr, timeout_seconds=2))
        return over_redis(clients[-1], addr)

    try:
        yield make
    finally:
        for client in clients:
            client.close()


def _free_node_ports(count: int) -> list[int]:
    """Ports free on loopback together with their cluster bus port (port + 10000, so below 55536)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 45000)
        if port not in ports and all(_free(p) for p in (port, port + 10000)):
            ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
