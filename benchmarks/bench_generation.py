"""Benchmark (not a test): GenerateCartImage answer latency and collage generation time, over real gRPC.

Starts the dev stack and the service (collage generator, local store) on loopback and prints:
- how long GenerateCartImage takes to answer (it must answer before the work is done),
- how long a generation takes end to end for carts of 1, 5 and 9 products (20 units),
- the same under N concurrent requests.
Run: .venv/bin/python benchmarks/bench_generation.py [--runs 10] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.catalog import PRODUCTS  # noqa: E402
from devstack.process import ServiceProcess  # noqa: E402
from devstack.servers import start_devstack  # noqa: E402
from genproto import imagegeneration_pb2 as pb  # noqa: E402
from imagegen.styles import STYLES  # noqa: E402


def cart(products: int, units: int, salt: int) -> list[pb.CartItem]:
    """A cart of `products` distinct products and `units` units; salt varies quantities to defeat the cache."""
    chosen = PRODUCTS[:products]
    quantities = [units // products] * products
    quantities[0] += units - sum(quantities) + salt
    return [pb.CartItem(product_id=p.id, quantity=q) for p, q in zip(chosen, quantities)]


def one(service: ServiceProcess, items: list[pb.CartItem], style: str) -> tuple[float, float]:
    """(answer seconds, end-to-end seconds) of one generation."""
    start = time.perf_counter()
    answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(style_preference=style, cart_items=items),
                                            timeout=30)
    answered = time.perf_counter() - start
    final, _ = service.wait_finished(answer.generation_id, timeout=120)
    assert final.status == "completed", final.error_message
    return answered, time.perf_counter() - start


def describe(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{name:<44} median {statistics.median(samples) * 1000:8.1f} ms   p95 {p95 * 1000:8.1f} ms   n={len(samples)}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--size", default="1024")
    args = parser.parse_args()
    styles = list(STYLES)
    with tempfile.TemporaryDirectory() as tmp, start_devstack() as stack:
        service = ServiceProcess({
            "CART_SERVICE_ADDR": stack.cart_addr, "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
            "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url, "IMAGE_GENERATOR": "collage",
            "IMAGE_SIZE": args.size, "GENERATION_QUEUE_SIZE": "256",
            "RATE_LIMIT_PER_USER": "0"}, Path(tmp))  # throughput, not the per-shopper limit
        try:
            service.wait_serving()
            one(service, cart(9, 20, 0), "modern")  # warm the picture cache
            print(f"collage at {args.size}px, {service.env.get('GENERATION_WORKERS', '2')} workers, 2 cores")
            for products, units in ((1, 1), (5, 5), (9, 20)):
                results = [one(service, cart(products, units, run + 1), styles[run % len(styles)])
                           for run in range(args.runs)]
                print(describe(f"{products} products / {units} units: answer", [a for a, _ in results]))
                print(describe(f"{products} products / {units} units: end to end", [e for _, e in results]))
            with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
                start = time.perf_counter()
                futures = [pool.submit(one, service, cart(9, 20, 100 + i), styles[i % len(styles)])
                           for i in range(args.concurrency * 2)]
                results = [f.result() for f in futures]
                wall = time.perf_counter() - start
            print(describe(f"{args.concurrency} concurrent: answer", [a for a, _ in results]))
            print(describe(f"{args.concurrency} concurrent: end to end", [e for _, e in results]))
            print(f"{'throughput':<44} {len(results) / wall:8.2f} generations/s")
        finally:
            service.terminate()


if __name__ == "__main__":
    main()
