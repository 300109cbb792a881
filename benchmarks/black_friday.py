"""Benchmark (not a test): Black Friday for a fleet, the shop-wide queue against today's design, in one run.

For each design: --replicas service processes sharing one redis-server and the Cloud Storage emulator, a
fake Gemini whose answers take --model-seconds and which answers 429 with RetryInfo beyond --quota calls
in any minute, and --generations distinct generations from --shoppers shoppers of mixed appetite (most
ask for one or two pictures, a fifth for many), asked within --arrival-seconds. A third of the way through
the asking one replica is SIGKILLed; halfway another is rolled (SIGTERM, then a fresh one). Shoppers poll
their status every --poll-seconds on any replica alive. Printed: accepted, completed, failed by reason,
lost (accepted, never ended: must be 0), 429s as a share of model calls, images per minute as a share of
the quota, time from asking to the picture p50/p95 for light and heavy shoppers, the first estimate's
error p50, and Redis commands per completed generation (status polling included).
"Before" is --before (default: the commit before the shop-wide queue: an admission pool per replica, no
shared queue, no shared quota) with the same settings; "after" is this checkout, told 95% of the quota
(GEMINI_MAX_CALLS_PER_MINUTE).
Run: .venv/bin/python benchmarks/black_friday.py [--generations 1000] [--shoppers 300] [--quota 300]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc  # noqa: E402

from benchmarks.bench_capacity import checkout, percentile, print_table  # noqa: E402
from devstack.catalog import PRODUCTS  # noqa: E402
from devstack.process import ROOT, ServiceProcess  # noqa: E402
from devstack.servers import start_devstack  # noqa: E402
from genproto import imagegeneration_pb2 as pb  # noqa: E402
from tests.fakes.fake_gemini import FakeGemini, slow  # noqa: E402
from tests.fakes.gcs_emulator import GcsEmulator  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

BEFORE = "ea9a62c"  # main before the shop-wide queue was wired in


class Generation:
    """One shopper's generation as the shopper sees it."""

    def __init__(self, shopper: str, heavy: bool, cart: tuple[str, int]) -> None:
        self.shopper, self.heavy, self.cart = shopper, heavy, cart
        self.id = ""
        self.asked = 0.0
        self.ended = 0.0
        self.outcome = ""  # refused code, completed or failed: message
        self.first_estimate = -1
        self.polls = 0


class Fleet:
    """The replicas of one design; calls go to a live one, round robin."""

    def __init__(self, env: dict[str, str], code: Path, tmp: Path, count: int) -> None:
        self._env, self._code, self._tmp = env, code, tmp
        self._lock = threading.Lock()
        self._turn = 0
        self.replicas = [self._start(n) for n in range(count)]
        for replica in self.replicas:
            replica.wait_serving(timeout=90)

    def _start(self, number: int) -> ServiceProcess:
        return ServiceProcess(self._env, self._tmp / f"replica{number}-{time.monotonic_ns()}", cwd=self._code)

    def call(self, method: str, request):
        """The RPC on the next live replica; another one when a replica is gone."""
        error: grpc.RpcError | None = None
        for _ in range(len(self.replicas) * 2):
            with self._lock:
                self._turn += 1
                replica = self.replicas[self._turn % len(self.replicas)]
            if replica.process.poll() is not None:
                continue
            try:
                return getattr(replica.stub, method)(request, timeout=30)
            except grpc.RpcError as failure:
                if failure.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                    raise
                error = failure
        raise error or RuntimeError("no replica alive")

    def kill(self, index: int) -> None:
        self.replicas[index].process.kill()

    def roll(self, index: int) -> None:
        """SIGTERM and wait for the exit (as Kubernetes does), then a fresh replica in its place."""
        old = self.replicas[index]
        fresh = self._start(100 + index)
        fresh.wait_serving(timeout=90)
        with self._lock:
            self.replicas[index] = fresh
        old.process.terminate()
        old.process.wait(60)

    def close(self) -> None:
        for replica in self.replicas:
            replica.close()


def shoppers(generations: int, count: int, rng: random.Random) -> list[Generation]:
    """count shoppers, a fifth of them heavy, asking for `generations` distinct carts in all."""
    heavy = max(1, count // 5)
    light_total = sum(rng.choice((1, 1, 2)) for _ in range(count - heavy))
    per_heavy = max(1, (generations - light_total) // heavy)
    work: list[Generation] = []
    for number in range(count):
        is_heavy = number < heavy
        for _ in range(per_heavy if is_heavy else rng.choice((1, 1, 2))):
            product = PRODUCTS[len(work) % len(PRODUCTS)].id
            work.append(Generation(f"shopper-{number}", is_heavy, (product, 1 + len(work) // len(PRODUCTS))))
    return work[:generations]


def run(name: str, code: Path, stack, tmp: Path, args: argparse.Namespace, extra: dict[str, str]) -> dict[str, str]:
    redis_server = RedisServer(tmp / f"redis-{name}").start()
    emulator = GcsEmulator(bucket=f"bf-{abs(hash(name)) % 10000}")
    fake = FakeGemini(default=slow(args.model_seconds))
    fake.enforce_quota(args.quota, 60.0)
    env = {"CART_SERVICE_ADDR": stack.cart_addr, "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
           "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url, "IMAGE_GENERATOR": "gemini",
           "GEMINI_API_KEY": "AIzaFAKE-black-friday", "GEMINI_MODEL": "gemini-bf-model",
           "GOOGLE_GEMINI_BASE_URL": fake.base_url, "LOG_LEVEL": "WARNING", "RATE_LIMIT_PER_USER": "0",
           "GEMINI_DAILY_BUDGET_USD": "0",  # no cap: past it the collage would stand in for the model
           "REDIS_ADDR": redis_server.addr, **emulator.env(), "PROJECT_ID": "bf",
           "MODEL_CONCURRENCY": str(args.model_concurrency), "GENERATION_QUEUE_LIMIT": "5000",
           "GENERATION_MAX_WAIT_SECONDS": "900", "GEMINI_TOTAL_TIMEOUT_SECONDS": "900",
           "SHUTDOWN_GRACE_SECONDS": "5", "SHUTDOWN_STATUS_SECONDS": "1", "GENERATION_LEASE_SECONDS": "10",
           "MALLOC_ARENA_MAX": "2", **extra}
    fleet = Fleet(env, code, tmp / name, args.replicas)
    work = shoppers(args.generations, args.shoppers, random.Random(7))
    client = redis_server.client()
    idle_from = int(client.info("stats")["total_commands_processed"])
    time.sleep(5)  # the fleet idle: what its waiting workers cost Redis
    commands_before = int(client.info("stats")["total_commands_processed"])
    stats_before = command_calls(client)
    idle_per_second = (commands_before - idle_from) / 5
    began = time.monotonic()
    try:
        asking = sorted(work, key=lambda _: random.random())
        ask_times = sorted(random.Random(8).uniform(0, args.arrival_seconds) for _ in asking)

        def ask(item: tuple[Generation, float]) -> None:
            generation, at = item
            time.sleep(max(0.0, began + at - time.monotonic()))
            generation.asked = time.monotonic()
            product, quantity = generation.cart
            try:
                answer = fleet.call("GenerateCartImage", pb.GenerateCartImageRequest(
                    user_id=generation.shopper, cart_items=[pb.CartItem(product_id=product, quantity=quantity)]))
                generation.id = answer.generation_id
            except grpc.RpcError as error:
                generation.outcome = f"refused: {error.code().name}"
                generation.ended = time.monotonic()

        def disrupt() -> None:
            time.sleep(args.arrival_seconds / 3)
            fleet.kill(0)
            time.sleep(args.arrival_seconds / 6)
            fleet.roll(1)

        disruption = threading.Thread(target=disrupt, daemon=True)
        disruption.start()
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            list(pool.map(ask, zip(asking, ask_times)))
        disruption.join()
        deadline = time.monotonic() + args.generations / (args.quota / 60) * 2 + 120
        open_ones = [g for g in work if g.id and not g.outcome]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            while open_ones and time.monotonic() < deadline:
                list(pool.map(lambda g: poll(fleet, g), open_ones))
                open_ones = [g for g in open_ones if not g.outcome]
                time.sleep(args.poll_seconds)
        commands = int(client.info("stats")["total_commands_processed"]) - commands_before
        by_command = collections.Counter(command_calls(client))
        by_command.subtract(stats_before)
    finally:
        fleet.close()
        fake.stop()
        emulator.stop()
        redis_server.stop()
    row = summary(name, work, fake, commands, args)
    row["Redis commands per second, fleet idle (inside scripts too)"] = f"{idle_per_second:.0f}"
    done = max(1, int(row["completed"]))
    row["most called per completed generation (INFO commandstats)"] = ", ".join(
        f"{name} {calls / done:.0f}" for name, calls in by_command.most_common(5))
    return row


def command_calls(client) -> dict[str, int]:
    """Calls so far of each Redis command (INFO commandstats; commands run by scripts count too)."""
    return {name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in client.info("commandstats").items()}


def poll(fleet: Fleet, generation: Generation) -> None:
    generation.polls += 1
    try:
        status = fleet.call("GetImageGenerationStatus", pb.GetStatusRequest(generation_id=generation.id))
    except (grpc.RpcError, RuntimeError):
        return
    if generation.first_estimate < 0 and status.status == "processing" and status.estimated_seconds > 0:
        generation.first_estimate = status.estimated_seconds + (time.monotonic() - generation.asked)
    if status.status != "processing":
        generation.ended = time.monotonic()
        generation.outcome = "completed" if status.status == "completed" else f"{status.status}: {status.error_message}"


def summary(name: str, work: list[Generation], fake: FakeGemini, commands: int, args) -> dict[str, str]:
    accepted = [g for g in work if g.id]
    completed = [g for g in accepted if g.outcome == "completed"]
    failures = collections.Counter(g.outcome[:110] for g in work if g.outcome and g.outcome != "completed")
    lost = [g for g in accepted if not g.outcome]
    calls, limited = len(fake.requests), fake.rate_limited
    images = calls - limited
    arrivals = fake.arrivals
    # Gemini counts a sliding minute: a run shorter than one may send a whole quota in seconds.
    minutes = max(1.0, (arrivals[-1] - arrivals[0]) / 60) if arrivals else 1.0
    quota_share = images / minutes / args.quota

    def waits(heavy: bool) -> str:
        seconds = [g.ended - g.asked for g in completed if g.heavy == heavy]
        return f"{statistics.median(seconds):.0f} / {percentile(seconds, 0.95):.0f} s" if seconds else "-"

    errors = [abs(g.first_estimate - (g.ended - g.asked)) / max(1.0, g.ended - g.asked)
              for g in completed if g.first_estimate > 0]
    return {
        "design": name,
        "asked": str(len(work)),
        "accepted": str(len(accepted)),
        "completed": str(len(completed)),
        "failed or refused, by reason": "; ".join(f"{count} x {reason}" for reason, count in failures.most_common(4)) or "0",
        "lost (accepted, never ended)": str(len(lost)),
        "429s / model calls": f"{limited}/{calls} ({limited / max(1, calls):.1%})",
        "images per minute / quota": f"{quota_share:.0%} ({images} images in {minutes:.1f} min, quota {args.quota}/min)",
        "ask to picture p50 / p95, light shoppers": waits(False),
        "ask to picture p50 / p95, heavy shoppers": waits(True),
        "first estimate error p50": f"{statistics.median(errors):.0%} ({len(errors)} estimated)" if errors else "- (no estimate)",
        "Redis commands per completed generation (inside scripts too)": f"{commands / max(1, len(completed)):.0f}",
        "status polls per completed generation": f"{sum(g.polls for g in accepted) / max(1, len(completed)):.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generations", type=int, default=1000)
    parser.add_argument("--shoppers", type=int, default=300)
    parser.add_argument("--quota", type=int, default=300, help="the fake Gemini's calls per minute")
    parser.add_argument("--model-seconds", type=float, default=2.0)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--model-concurrency", type=int, default=4, help="MODEL_CONCURRENCY of each replica")
    parser.add_argument("--arrival-seconds", type=float, default=30.0)
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    parser.add_argument("--before", default=BEFORE, help="the commit measured as before")
    parser.add_argument("--also", action="append", default=[], metavar="COMMIT",
                        help="another commit measured between before and after (repeatable)")
    parser.add_argument("--only", choices=("before", "after"), default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, start_devstack() as stack:
        if args.only != "after":
            old = checkout(args.before, Path(tmp) / "before")
            rows.append(run(f"before ({args.before})", old, stack, Path(tmp), args, {}))
        for commit in args.also if args.only != "before" else ():
            also = checkout(commit, Path(tmp) / commit)
            rows.append(run(commit, also, stack, Path(tmp), args,
                            {"GEMINI_MAX_CALLS_PER_MINUTE": str(int(args.quota * 0.95))}))
        if args.only != "before":
            rows.append(run("after", ROOT, stack, Path(tmp), args,
                            # Just under the quota, as the README advises: the two minutes never quite agree.
                            {"GEMINI_MAX_CALLS_PER_MINUTE": str(int(args.quota * 0.95))}))
    print(f"{args.replicas} replicas x MODEL_CONCURRENCY {args.model_concurrency}, one redis-server, fake Gemini "
          f"{args.model_seconds:g} s a call with a quota of {args.quota}/min (429 + RetryInfo beyond); "
          f"{args.generations} generations from {args.shoppers} shoppers asked within {args.arrival_seconds:g} s; "
          f"one replica SIGKILLed, one rolled; {len(os.sched_getaffinity(0))} cores")
    print_table(rows)


if __name__ == "__main__":
    main()
