#!/usr/bin/env python
"""Benchmark (not a test): the hot path beside references measured in the same run, on the same machine.

- GetImageGenerationStatus calls/s from 1, 8 and 32 client threads against the real service (in-process
  state, then REDIS_ADDR with a real redis-server), beside a bare grpc.server answering a health Check,
  with the same client code (one channel, blocking calls, each server in a process of its own).
- GenerateCartImage answer latency p50/p99 with 16 clients (cart by user, answered from the results cache
  after the first call), beside the same clients reading the cart and the products from the dev stack.

Goals: status >= 0.8x bare at 8 and 32 threads in-process, >= 0.6x with Redis; Generate <= 1.5x the reference.
Run: .venv/bin/python benchmarks/bench_hot_path.py [--seconds 2] [--calls 100] [--service-dir DIR]
"""

from __future__ import annotations

import argparse
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


def status_rates(target: str, request_for: Callable[[grpc.Channel], Callable[[], object]], seconds: float) -> list[float]:
    """calls/s at each of THREADS against target, after a short warm-up."""
    with grpc.insecure_channel(target) as channel:
        call = request_for(channel)
        calls_per_second(call, 4, 0.3)
        return [calls_per_second(call, threads, seconds) for threads in THREADS]


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


def ratios(figures: list[float], reference: list[float]) -> str:
    return "/".join(f"{a / b:.2f}" for a, b in zip(figures, reference))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring window per thread count")
    parser.add_argument("--calls", type=int, default=60, help="GenerateCartImage calls per client")
    parser.add_argument("--service-dir", type=Path, default=ROOT, help="checkout whose imagegenservice.py runs")
    parser.add_argument("--states", default="in-process,redis", help="which services to measure status against")
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
            with grpc.insecure_channel(f"127.0.0.1:{bare_port}") as channel:
                wait_for(lambda: _answers(channel), 30, what="bare server")
            results: dict[str, list[float]] = {}
            generate: dict[str, list[float]] = {}
            states = {"in-process": base, "redis": {**base, **shared}}
            for name in args.states.split(","):
                env = states[name]
                service = ServiceProcess(env, Path(tmp) / name, cwd=args.service_dir)
                try:
                    service.wait_serving(timeout=60)
                    print(f"{name} service: pid {service.process.pid}", file=sys.stderr, flush=True)  # for a profiler
                    generation_id = finished_generation(service)
                    results[f"bare ({name} run)"] = status_rates(f"127.0.0.1:{bare_port}", health_call, args.seconds)
                    results[name] = status_rates(f"127.0.0.1:{service.port}", status_call(generation_id), args.seconds)
                    if name == "in-process":
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
    threads = "/".join(str(t) for t in THREADS)
    print(f"GetImageGenerationStatus calls/s from {threads} client threads ({args.seconds:g} s each)")
    for name in args.states.split(","):
        reference = results[f"bare ({name} run)"]
        print(f"  {name:<12} {'/'.join(f'{r:.0f}' for r in results[name]):<18} "
              f"bare {'/'.join(f'{r:.0f}' for r in reference):<18} ratio {ratios(results[name], reference)}x")
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
