"""Benchmark (not a test): a shop's burst against a model that takes 2 s, today's design against the new one.

Starts the dev stack and a fake Gemini server whose every answer (a --answer-side noise PNG, about as large
as a real 1K answer at worst) takes --model-seconds, then for each design
runs the real service (Gemini generator, real google-genai SDK, local store) and prints:
- 16 distinct generations at once (under the model concurrency): end to end, and the service's own
  overhead (end to end minus the model time) at p50 and p99,
- 64 distinct generations at once: how many were accepted, how long until all of them finished, and that
  time as a multiple of the model time,
- 10 identical generations at once: how many model calls they made,
- the service's peak RSS (VmHWM) over the whole run.
"Before" is the code of --before (a git revision, default: the commit this work started from) with its
defaults (GENERATION_WORKERS=2, GENERATION_QUEUE_SIZE=16); "after" is this checkout with its defaults.
Run: .venv/bin/python benchmarks/bench_capacity.py [--model-seconds 2] [--before REV]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc  # noqa: E402

from devstack.catalog import PRODUCTS  # noqa: E402
from devstack.process import ROOT, ServiceProcess  # noqa: E402
from devstack.servers import start_devstack  # noqa: E402
from genproto import imagegeneration_pb2 as pb  # noqa: E402
from tests.fakes.fake_gemini import FakeGemini, image, slow  # noqa: E402

BEFORE = "2d50019"  # the last commit before the new admission, de-duplication and shared state
POLL_SECONDS = [0.05]  # set by --poll-seconds


def noise_png(side: int) -> bytes:
    """A PNG of random pixels: as large as a real model's picture of that size, or larger (it barely compresses)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def checkout(revision: str, into: Path) -> Path:
    """The files of a git revision, extracted into a folder."""
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def generate(service: ServiceProcess, cart: list[tuple[str, int]]) -> tuple[str, float, str, str]:
    """(outcome, seconds from asking to the end, image URL, generation id) of one generation."""
    began = time.perf_counter()
    try:
        answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
            style_preference="modern", cart_items=[pb.CartItem(product_id=p, quantity=q) for p, q in cart]), timeout=30)
    except grpc.RpcError as error:
        return error.code().name, time.perf_counter() - began, "", ""
    while True:
        status = service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=answer.generation_id),
                                                       timeout=30)
        if status.status != "processing":
            return status.status, time.perf_counter() - began, status.image_url, answer.generation_id
        time.sleep(POLL_SECONDS[0])


def burst(service: ServiceProcess, carts: list[list[tuple[str, int]]]) -> tuple[list[tuple[str, float, str, str]], float]:
    """Every cart asked for at the same moment; the results and the wall time until the last one ended."""
    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(carts)) as pool:
        results = list(pool.map(lambda cart: generate(service, cart), carts))
    return results, time.perf_counter() - began


def distinct_carts(count: int, salt: int) -> list[list[tuple[str, int]]]:
    return [[(PRODUCTS[n % len(PRODUCTS)].id, 1 + n + salt), (PRODUCTS[(n + 3) % len(PRODUCTS)].id, 1)]
            for n in range(count)]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(name: str, code: Path, stack, fake: FakeGemini, model_seconds: float, tmp: Path) -> dict[str, str]:
    service = ServiceProcess({
        "CART_SERVICE_ADDR": stack.cart_addr, "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
        "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url, "IMAGE_GENERATOR": "gemini",
        "GEMINI_API_KEY": "AIzaFAKE-benchmark", "GEMINI_MODEL": "gemini-bench-model",
        "GOOGLE_GEMINI_BASE_URL": fake.base_url, "LOG_LEVEL": "WARNING",
        # Every cart here is one anonymous shopper's: the per-shopper limit would refuse most of them.
        "RATE_LIMIT_PER_USER": "0",
        # The container's allocator settings (Dockerfile), so peak RSS is the pod's.
        "MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "1048576"}, tmp / name, cwd=code)
    try:
        service.wait_serving(timeout=60)
        generate(service, distinct_carts(1, 900)[0])  # warm the picture cache and the SDK's connections
        under, _ = burst(service, distinct_carts(16, 0))
        overheads = [seconds - model_seconds for outcome, seconds, _, _ in under if outcome == "completed"]
        cpu_before = cpu_seconds(service.process.pid)
        wide, wall = burst(service, distinct_carts(64, 100))
        cpu_used = cpu_seconds(service.process.pid) - cpu_before
        completed = sum(outcome == "completed" for outcome, _, _, _ in wide)
        refused = sum(outcome == "RESOURCE_EXHAUSTED" for outcome, _, _, _ in wide)
        calls_before = len(fake.requests)
        same, _ = burst(service, [distinct_carts(1, 500)[0]] * 10)
        calls = len(fake.requests) - calls_before
        return {
            "design": name,
            "16 at once: completed": f"{len(overheads)}/16",
            "16 at once: overhead p50": f"{statistics.median(overheads) * 1000:.0f} ms" if overheads else "-",
            "16 at once: overhead p99": f"{percentile(overheads, 0.99) * 1000:.0f} ms" if overheads else "-",
            "64 at once: accepted": f"{64 - refused}/64",
            "64 at once: completed": f"{completed}/64",
            "64 at once: all ended after": f"{wall:.1f} s ({wall / model_seconds:.1f}x the model time)",
            "64 at once: service CPU per generation": f"{cpu_used / max(1, completed) * 1000:.0f} ms",
            "10 identical: model calls": str(calls),
            "10 identical: distinct images": str(len({url for _, _, url, _ in same if url})),
            "peak RSS": f"{peak_rss_mib(service.process.pid):.0f} MiB",
        }
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-seconds", type=float, default=2.0)
    parser.add_argument("--before", default=BEFORE, help="git revision of today's design")
    parser.add_argument("--answer-side", type=int, default=1024,
                        help="side of the noise PNG the fake model returns (1024: ~3 MiB, like a 1K answer at worst)")
    parser.add_argument("--poll-seconds", type=float, default=POLL_SECONDS[0],
                        help="how often each shopper asks for its status (the frontend kit: every 1 s)")
    args = parser.parse_args()
    POLL_SECONDS[0] = args.poll_seconds
    answer = slow(args.model_seconds, image(noise_png(args.answer_side)))
    with tempfile.TemporaryDirectory() as tmp, start_devstack() as stack, FakeGemini(default=answer) as fake:
        old = checkout(args.before, Path(tmp) / "before")
        rows = [measure(f"before ({args.before})", old, stack, fake, args.model_seconds, Path(tmp)),
                measure("after", ROOT, stack, fake, args.model_seconds, Path(tmp))]
    print(f"fake model answering a {args.answer_side}px noise PNG in {args.model_seconds:g} s; status polled every {POLL_SECONDS[0] * 1000:.0f} ms; "
          f"{len(os.sched_getaffinity(0))} cores")
    print_table(rows)


def print_table(rows: list[dict[str, str]]) -> None:
    """Prints measured rows (one per design, same keys) as a Markdown table, a column per design."""
    print("| measure | " + " | ".join(row["design"] for row in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for key in rows[0]:
        if key != "design":
            print(f"| {key} | " + " | ".join(row[key] for row in rows) + " |")


if __name__ == "__main__":
    main()
