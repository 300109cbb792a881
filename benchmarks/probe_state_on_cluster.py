"""Probe (not a test): which operations of today's imagegen/state/redis.py and limits.py work on a Redis Cluster.

Starts a real 3-node cluster on loopback, builds redis_state() with a cluster client and runs each operation,
printing ok or the error. Run: .venv/bin/python benchmarks/probe_state_on_cluster.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imagegen.limits import RedisSpendLedger, RedisWindowCounter  # noqa: E402
from imagegen.redis_connect import connect  # noqa: E402
from imagegen.state.redis import redis_state  # noqa: E402
from tests.redis_cluster import RedisClusterServers  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        cluster = RedisClusterServers(Path(workdir)).start()
        try:
            client = connect(cluster.addr)
            state = redis_state(cluster.addr, status_max_entries=50, status_ttl_seconds=600, lease_seconds=5,
                                client=client)
            record = None

            def create():
                nonlocal record
                record = state.statuses.create("modern")

            probes = [
                ("statuses.create (gen:<id>, lease:<id>, gens)", create),
                ("statuses.get (gen:<id>, lease:<id>)", lambda: state.statuses.get(record.id if record else "x")),
                ("statuses.progress (gen:<id>)", lambda: state.statuses.progress(record.id if record else "x", 10)),
                ("statuses.complete (gen:<id>, lease:<id>)",
                 lambda: state.statuses.complete(record.id if record else "x", "u")),
                ("statuses.discard (DEL gen:<id> lease:<id>)", lambda: state.statuses.discard("x")),
                ("results.put (result:<key>, results)", lambda: state.results.put("key", "name")),
                ("results.get (result:<key>)", lambda: state.results.get("key")),
                ("in_flight.claim (inflight:<key>)", lambda: state.in_flight.claim("key", "g1")),
                ("in_flight.replace (inflight:<key>)", lambda: state.in_flight.replace("key", "g1", "g2")),
                ("in_flight.release (inflight:<key>)", lambda: state.in_flight.release("key", "g2")),
                ("heartbeat (pipeline of SET lease:<id>)", state.statuses.heartbeat),
                ("limits: rate limit hit (ratelimit:<hash>)", lambda: RedisWindowCounter(client).hit("k", 60)),
                ("limits: spend add (MULTI INCRBYFLOAT+EXPIRE spend:<day>)",
                 lambda: RedisSpendLedger(client).add("2026-12-02", 0.04)),
                ("limits: spend total (spend:<day>)", lambda: RedisSpendLedger(client).total("2026-12-02")),
            ]
            for name, probe in probes:
                try:
                    probe()
                    print(f"ok    {name}")
                except Exception as error:  # noqa: BLE001 (a probe reports every failure)
                    print(f"FAIL  {name}: {type(error).__name__}: {error}")
            state.close()
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
