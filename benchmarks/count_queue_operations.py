"""Benchmark (not a test): Redis operations per generation for the queue, the quota and the estimate.

Starts a redis-server, runs N generations through the Redis implementations the way a worker would
(enqueue; take; quota acquire + release around one model call; `renews` lease renewals; ack; one estimate
record), then polls positions, and prints, per generation, the client round trips (what the network and
Redis's event loop see) and the commands run inside the scripts (Redis's CPU), from INFO commandstats.
Run: .venv/bin/python benchmarks/count_queue_operations.py [--generations 500 --lanes 50 --renews 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imagegen.estimate import RedisRunLog  # noqa: E402
from imagegen.queue import Job  # noqa: E402
from imagegen.queue.redis import RedisQueue  # noqa: E402
from imagegen.quota import GeminiQuota, QuotaPolicy  # noqa: E402
from imagegen.quota.redis import RedisQuotaStore  # noqa: E402
from imagegen.redis_connect import connect  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


def commands(client) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before.get(name, 0) for name in after if after[name] - before.get(name, 0)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generations", type=int, default=500)
    parser.add_argument("--lanes", type=int, default=50)
    parser.add_argument("--renews", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        server = RedisServer(Path(workdir)).start()
        try:
            client = connect(server.addr)
            queue = RedisQueue(client, lease_seconds=30, addr=server.addr)
            quota = GeminiQuota(RedisQuotaStore(client), QuotaPolicy(max_concurrent=100, per_minute=100_000))
            runs = RedisRunLog(client)
            queue.enqueue(Job("warm-up", "", b"x"))  # loads the scripts, so SCRIPT LOAD is not counted
            queue.ack(queue.take("w").job.generation_id)
            with quota.call("m", timeout=1):
                pass
            runs.record(1.0)
            n = args.generations
            before = commands(client)
            for number in range(n):
                queue.enqueue(Job(f"g{number}", f"lane-{number % args.lanes}", b"p" * 100))
            for _ in range(n):
                claimed = queue.take("worker")
                with quota.call("m", timeout=1):
                    pass
                for _ in range(args.renews):
                    queue.renew("worker", claimed.job.generation_id)
                queue.ack(claimed.job.generation_id)
                runs.record(2.0)
            lifecycle = delta(before, commands(client))
            for number in range(n):
                queue.enqueue(Job(f"p{number}", f"lane-{number % args.lanes}", b"p" * 100))
            before = commands(client)
            for number in range(n):
                queue.position(f"p{number}")
            polls = delta(before, commands(client))
        finally:
            server.stop()
    lifecycle.pop("info", None)
    polls.pop("info", None)
    trips = sum(lifecycle.get(name, 0) for name in _CLIENT)
    inner = sum(lifecycle.values()) - trips
    print(f"{n} generations over {args.lanes} lanes, {args.renews} lease renewals each (redis-server, one node)")
    print(f"  client round trips per generation: {trips / n:.2f}  (evalsha {lifecycle.get('evalsha', 0) / n:.2f})")
    print(f"  commands inside scripts per generation: {inner / n:.2f}")
    print(f"  by command: " + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(lifecycle.items())))
    print(f"  one position poll: {sum(polls.values()) / n:.2f} commands in {polls.get('evalsha', 0) / n:.2f} round trip")


# What the client sends itself; every other command runs inside a script.
_CLIENT = ("evalsha", "eval", "xread")

if __name__ == "__main__":
    main()
