"""Benchmark (not a test): what tracing and the Redis-shared rate limit add to a GenerateCartImage answer.

Starts the dev stack, a loopback OTLP receiver and a redis-server, then the service four times (plain,
ENABLE_TRACING=1, REDIS_ADDR, both) and times how long GenerateCartImage takes to answer for the same
cart (answered from the results cache after the first call, so the time is the call path itself: rate
limit, cart/catalog calls, spans), sequentially.
Run: .venv/bin/python benchmarks/bench_operations.py [--calls 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.process import ServiceProcess  # noqa: E402
from devstack.servers import start_devstack  # noqa: E402
from genproto import imagegeneration_pb2 as pb  # noqa: E402
from tests.fakes.otlp_receiver import OtlpReceiver  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


def answer_times(service: ServiceProcess, calls: int) -> list[float]:
    request = pb.GenerateCartImageRequest(user_id="bench-user", style_preference="modern")
    first = service.stub.GenerateCartImage(request, timeout=30)
    service.wait_finished(first.generation_id, timeout=120)  # later answers come from the results cache
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        service.stub.GenerateCartImage(request, timeout=30)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_devstack(seed_carts={"bench-user": {"OLJCESPC7Z": 1,
                                                                                         "6E92ZMYYFZ": 2}}) as stack, \
            OtlpReceiver() as receiver:
        redis = RedisServer(Path(tmp) / "redis").start()
        base = {"CART_SERVICE_ADDR": stack.cart_addr, "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
                "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url, "IMAGE_GENERATOR": "collage", "IMAGE_SIZE": "512",
                "RATE_LIMIT_PER_USER": str(10 * args.calls)}
        tracing = {"ENABLE_TRACING": "1", "COLLECTOR_SERVICE_ADDR": receiver.addr}
        shared = {"REDIS_ADDR": redis.addr}
        try:
            print(f"GenerateCartImage answer (cart of 2 products, cached image), {args.calls} sequential calls")
            for name, extra in (("plain", {}), ("tracing", tracing), ("redis rate limit", shared),
                                ("tracing + redis", {**tracing, **shared})):
                service = ServiceProcess({**base, **extra}, Path(tmp) / name.replace(" ", ""))
                try:
                    service.wait_serving()
                    times = sorted(answer_times(service, args.calls))
                    p95 = times[int(len(times) * 0.95)]
                    print(f"  {name:<18} median {statistics.median(times) * 1000:6.2f} ms   p95 {p95 * 1000:6.2f} ms")
                finally:
                    service.close()
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
