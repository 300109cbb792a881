#!/usr/bin/env python
"""Benchmark (not a test): the hot path beside references measured in the same run, on the same machine.

- GetImageGenerationStatus calls/s from 1, 8 and 32 client threads against the real service (in-process
  state, then REDIS_ADDR with a real redis-server), beside a bare grpc.server answering a health Check,
  with the same client code (one channel, blocking calls, each server in a process of its own). The two
  are measured in alternating windows, several rounds (the order swapped each round), so that load from
  other work on the machine falls on both alike: each figure is the median of its rounds, the ratio the
  median of the rounds' ratios, with their range. Also printed: server CPU per call, and with Redis the
  Redis round trips (read events) and commands per status call.
- GenerateCartImage answer latency p50/p99 with 16 clients (cart by user, answered from the results cache
  after the first call), beside the same clients reading the cart and the products from the dev stack.

Goals: status >= 0.8x bare at 8 and 32 threads in-process, >= 0.6x with Redis; Generate <= 1.5x the reference.
Run: .venv/bin/python benchmarks/bench_hot_path.py [--seconds 1] [--rounds 9] [--calls 60] [--service-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.process import ServiceProcess, free_port, wait_for  # noqa: E402
from devstack.servers import start_devstack  # noqa: E402
from genproto import imagegeneration_pb2 as pb  # noqa: E402
from genproto import imagegeneration_pb2_grpc as pb_grpc  # noqa: E402

THREADS = (1, 8, 32)
CLIENTS = 16
CART = {"OLJCESPC7Z": 1, "6E92ZMYYFZ": 2, "0PUK6V6EV0": 1}
USERS = [f"bench-shopper-{n}" for n in range(CLIENTS)]


def calls_per_second(call: Callable[[], object], threads: int, seconds: float) -> float:
    """Calls completed per second by `threads` threads calling `call` in a loop for `seconds`."""
    stop = threading.Event()
    counts = [0] * threads

    def loop(slot: int) -> None:
        while not stop.is_set():
            call()
            counts[slot] += 1

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    started = time.perf_counter()
    time.sleep(seconds)  # the measuring window
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def latencies(call: Callable[[str], object], clients: int, calls: int) -> list[float]:
    """Seconds each call took, `clients` threads (one user each) making `calls` calls each."""

    def client(user: str) -> list[float]:
        taken = []
        for _ in range(calls):
            start = time.perf_counter()
            call(user)
            taken.append(time.perf_counter() - start)
        return taken

    with futures.ThreadPoolExecutor(clients) as pool:
        return sorted(t for ts in pool.map(client, USERS[:clients]) for t in ts)


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def serve_bare(port: int) -> None:
    """A bare grpc.server with the health service only (the reference), until killed."""
    server = grpc.server(futures.ThreadPoolExecutor(16))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


@dataclasses.dataclass
class Paired:
    """One thread count's alternating windows: calls/s and server CPU seconds per call, service and bare."""

    service: list[float] = dataclasses.field(default_factory=list)
    bare: list[float] = dataclasses.field(default_factory=list)
    service_cpu: list[float] = dataclasses.field(default_factory=list)
    bare_cpu: list[float] = dataclasses.field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [s / b for s, b in zip(self.service, self.bare)]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(call: Callable[[], object], pid: int, threads: int, seconds: float) -> tuple[float, float]:
    """calls/s of call from `threads` threads, and the CPU seconds process pid spent per call meanwhile."""
    before = cpu_seconds(pid)
    started = time.perf_counter()
    rate = calls_per_second(call, threads, seconds)
    calls = rate * (time.perf_counter() - started)
    return rate, (cpu_seconds(pid) - before) / max(calls, 1)


def paired_rates(service: tuple[Callable[[], object], int], bare: tuple[Callable[[], object], int],
                 seconds: float, rounds: int) -> list[Paired]:
    """Service and bare (call, pid) at each of THREADS, in alternating windows, rounds times, after a warm-up."""
    for call, _ in (service, bare):
        calls_per_second(call, 4, 0.3)
    figures = [Paired() for _ in THREADS]
    for round_ in range(rounds):
        for threads, paired in zip(THREADS, figures):
            order = [(service, paired.service, paired.service_cpu), (bare, paired.bare, paired.bare_cpu)]
            for (call, pid), rates, cpu in order if round_ % 2 == 0 else reversed(order):
                rate, per_call = measured(call, pid, threads, seconds)
                rates.append(rate)
                cpu.append(per_call)
    return figures


def health_call(channel: grpc.Channel) -> Callable[[], object]:
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service="")
    return lambda: stub.Check(request, timeout=5)


def status_call(generation_id: str) -> Callable[[grpc.Channel], Callable[[], object]]:
    def make(channel: grpc.Channel) -> Callable[[], object]:
        stub = pb_grpc.ImageGenerationServiceStub(channel)
        request = pb.GetStatusRequest(generation_id=generation_id)
        return lambda: stub.GetImageGenerationStatus(request, timeout=5)

    return make


def finished_generation(service: ServiceProcess) -> str:
    """The id of a completed generation of USERS[0]'s cart (its image then sits in the results cache)."""
    answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(user_id=USERS[0]), timeout=30)
    final, _ = service.wait_finished(answer.generation_id, timeout=120)
    assert final.status == "completed", final.error_message
    return answer.generation_id


def spread(values: list[float], digits: int = 0) -> str:
    """Median, and the range, of values."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def redis_counts(client) -> tuple[int, int]:  # noqa: ANN001 (redis.Redis)
    """Read events (one per round trip a client makes, a pipeline's being one) and commands Redis has served."""
    stats = client.info("stats")
    return stats["total_reads_processed"], stats["total_commands_processed"]


def redis_per_call(client, call: Callable[[], object], calls: int = 2000,  # noqa: ANN001 (redis.Redis)
                   idle_seconds: float = 3.0) -> tuple[float, float]:
    """Redis round trips and commands per call, over calls sequential calls, less what the service sends
    Redis when not called (idle workers, the lease heartbeat) at the rate measured over idle_seconds."""
    reads, commands = redis_counts(client)
    time.sleep(idle_seconds)
    idle_reads, idle_commands = redis_counts(client)
    started = time.perf_counter()
    for _ in range(calls):
        call()
    taken = time.perf_counter() - started
    called_reads, called_commands = redis_counts(client)
    share = taken / idle_seconds  # of the idle window's traffic that fell in the calls' time
    # Each INFO is a read and a command of its own.
    trips = (called_reads - idle_reads - 1) - share * (idle_reads - reads - 1)
    sent = (called_commands - idle_commands - 1) - share * (idle_commands - commands - 1)
    return trips / calls, sent / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring window per thread count and round")
    parser.add_argument("--rounds", type=int, default=9, help="alternating service/bare windows per thread count")
    parser.add_argument("--calls", type=int, default=60, help="GenerateCartImage calls per client")
    parser.add_argument("--service-dir", type=Path, default=ROOT, help="checkout whose imagegenservice.py runs")
    parser.add_argument("--states", default="in-process,redis", help="which services to measure status against")
    parser.add_argument("--no-generate", action="store_true", help="skip the GenerateCartImage latency figure")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra service setting")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)  # serve the bare reference on this port
    args = parser.parse_args()
    if args.bare:
        serve_bare(args.bare)
        return
    from tests.fakes.gcs_emulator import GcsEmulator
    from tests.redis_server import RedisServer

    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, __file__, "--bare", str(bare_port)])
    with tempfile.TemporaryDirectory() as tmp, start_devstack(seed_carts={u: CART for u in USERS}) as stack:
        redis = RedisServer(Path(tmp) / "redis").start()
        emulator = GcsEmulator(bucket="bench-images")
        base = {"CART_SERVICE_ADDR": stack.cart_addr, "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
                "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url, "IMAGE_GENERATOR": "collage", "IMAGE_SIZE": "512",
                "RATE_LIMIT_PER_USER": "0", **dict(e.split("=", 1) for e in args.env)}
        shared = {**emulator.env(), "PROJECT_ID": "bench", "REDIS_ADDR": redis.addr}
        try:
            results: dict[str, list[Paired]] = {}
            redis_figures: dict[str, tuple[float, float]] = {}
            generate: dict[str, list[float]] = {}
            states = {"in-process": base, "redis": {**base, **shared}}
            with grpc.insecure_channel(f"127.0.0.1:{bare_port}") as bare_channel:
                wait_for(lambda: _answers(bare_channel), 30, what="bare server")
                for name in args.states.split(","):
                    service = ServiceProcess(states[name], Path(tmp) / name, cwd=args.service_dir)
                    try:
                        service.wait_serving(timeout=60)
                        print(f"{name} service: pid {service.process.pid}", file=sys.stderr, flush=True)  # for a profiler
                        generation_id = finished_generation(service)
                        with grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                            for kind, asked in (("ended", generation_id), ("unknown id", "no-such-generation")):
                                status = status_call(asked)(channel)
                                results[f"{name}, {kind}"] = paired_rates(
                                    (status, service.process.pid), (health_call(bare_channel), bare.pid),
                                    args.seconds, args.rounds)
                                if name == "redis":
                                    redis_figures[kind] = redis_per_call(redis.client(), status)
                        if name == "in-process" and not args.no_generate:
                            generate["service"] = latencies(
                                lambda user: service.stub.GenerateCartImage(
                                    pb.GenerateCartImageRequest(user_id=user), timeout=30), CLIENTS, args.calls)
                            generate["reference"] = reference_latencies(stack, args.calls)
                    finally:
                        service.terminate()
        finally:
            emulator.stop()
            redis.stop()
            bare.kill()
            bare.wait()
    print(f"GetImageGenerationStatus calls/s (an ended generation, the goal's figure; an unknown id, read from the "
          f"store every time), {args.rounds} rounds of {args.seconds:g} s windows alternating with the bare "
          f"reference: median (min-max)")
    for name, figures in results.items():
        for threads, paired in zip(THREADS, figures):
            print(f"  {name:<22} {threads:>2} threads  {spread(paired.service):<18} bare {spread(paired.bare):<18} "
                  f"ratio {spread(paired.ratios, 2)}x   server CPU/call "
                  f"{statistics.median(paired.service_cpu) * 1e6:.0f} us (bare {statistics.median(paired.bare_cpu) * 1e6:.0f})")
    for kind, (trips, commands) in redis_figures.items():
        print(f"  redis per status call ({kind}): {trips:.2f} round trips, {commands:.2f} commands")
    if not generate:
        return
    service, reference = generate["service"], generate["reference"]
    p = [(percentile(service, q), percentile(reference, q)) for q in (0.5, 0.99)]
    print(f"GenerateCartImage answer, {CLIENTS} clients x {args.calls} calls (cart by user, cached image)")
    print(f"  service p50/p99 {p[0][0] * 1000:.1f}/{p[1][0] * 1000:.1f} ms   cart+products reference "
          f"{p[0][1] * 1000:.1f}/{p[1][1] * 1000:.1f} ms   ratio {p[0][0] / p[0][1]:.2f}/{p[1][0] / p[1][1]:.2f}x")


def reference_latencies(stack, calls: int) -> list[float]:  # noqa: ANN001 (devstack.servers.DevStack)
    """The same clients reading the cart and then its products (at once) from the dev stack."""
    with grpc.insecure_channel(stack.cart_addr) as cart_channel, grpc.insecure_channel(stack.catalog_addr) as catalog_channel:
        cart = pb_grpc.CartServiceStub(cart_channel)
        catalog = pb_grpc.ProductCatalogServiceStub(catalog_channel)

        def read(user: str) -> None:
            items = cart.GetCart(pb.GetCartRequest(user_id=user), timeout=5).items
            lookups = [catalog.GetProduct.future(pb.GetProductRequest(id=item.product_id), timeout=5) for item in items]
            for lookup in lookups:
                lookup.result()

        return latencies(read, CLIENTS, calls)


def _answers(channel: grpc.Channel) -> bool:
    try:
        health_call(channel)()
        return True
    except grpc.RpcError:
        return False


if __name__ == "__main__":
    main()
