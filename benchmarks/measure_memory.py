#!/usr/bin/env python
"""Peak memory of the service under load: the numbers behind the Deployment's memory request and limit.

Starts the dev stack (cart, catalog, product pictures on loopback) and the real service as a subprocess,
optionally uploads worst-case backgrounds (a PNG just under MAX_IMAGE_PIXELS), then runs N concurrent
generations over 20-item carts and samples the service's resident set size from /proc/PID/status.
Prints idle RSS, sampled peak RSS and the kernel's high-water mark (VmHWM).

    .venv/bin/python benchmarks/measure_memory.py                     # 4 generations, 2 workers
    .venv/bin/python benchmarks/measure_memory.py --concurrency 8 --uploads 4
"""

from __future__ import annotations

import argparse
import base64
import io
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent import futures
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from devstack.catalog import PRODUCTS  # noqa: E402
from devstack.process import ServiceProcess  # noqa: E402
from devstack.servers import start_devstack  # noqa: E402
from genproto import imagegeneration_pb2 as pb  # noqa: E402
from imagegen.settings import Settings  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid: int, field: str) -> int:
    """A kB field of /proc/PID/status (VmRSS, VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every few milliseconds and keeps the largest value."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self.samples = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
                self.samples += 1
            except (OSError, KeyError):
                return
            self._done.wait(self.interval)

    def stop(self) -> None:
        """Ends sampling."""
        self._done.set()
        self.join()


def cart_of(items: int) -> dict[str, int]:
    """A cart of `items` units spread over the catalog's products."""
    return dict(Counter(PRODUCTS[i % len(PRODUCTS)].id for i in range(items)))


def worst_case_background(max_pixels: int) -> str:
    """A data: URL of a PNG just under the pixel limit; PNG because JPEG uploads decode at reduced size."""
    side = int(math.sqrt(max_pixels * 0.98))
    gradient = Image.linear_gradient("L").resize((side, side))
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_90), gradient))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def main(argv: list[str] | None = None) -> int:
    """Runs the measurement and prints the numbers."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=4, help="generations started at once (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="CPU_CONCURRENCY (default 2, the manifests')")
    parser.add_argument("--items", type=int, default=20, help="units in each cart (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="times the burst of generations is repeated")
    parser.add_argument("--uploads", type=int, default=2, help="worst-case background uploads at once (default 2)")
    parser.add_argument("--generator", default=os.environ.get("IMAGE_GENERATOR", "collage"))
    args = parser.parse_args(argv)

    defaults = Settings.from_env({})
    users = {f"bench-{i}": cart_of(args.items) for i in range(args.concurrency)}
    background = worst_case_background(defaults.max_image_pixels) if args.uploads else ""
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as tmp:
        stack = start_devstack(seed_carts=users)
        service = None
        try:
            service = ServiceProcess(
                {
                    "CART_SERVICE_ADDR": stack.cart_addr,
                    "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
                    "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url,
                    "IMAGE_GENERATOR": args.generator,
                    "GEMINI_API_KEY": os.environ.get("GEMINI_API_KEY", ""),
                    "CPU_CONCURRENCY": str(args.workers),
                    "GENERATION_QUEUE_LIMIT": str(max(defaults.generation_queue_limit, args.concurrency)),
                    "LOG_LEVEL": "WARNING",
                },
                Path(tmp),
            )
            service.wait_serving(timeout=60)
            pid = service.process.pid
            idle_kib = proc_status_kib(pid, "VmRSS")
            cpu_before = cpu_seconds(pid)
            sampler = RssSampler(pid)
            sampler.start()
            started = time.monotonic()

            background_url = ""
            if args.uploads:
                def upload(_: int) -> str:
                    try:
                        answer = service.stub.UploadBackground(
                            pb.UploadBackgroundRequest(image_data=background), timeout=120)
                    except grpc.RpcError as error:  # beyond UPLOAD_CONCURRENCY: refused, by design
                        return error.code().name
                    return answer.image_url

                with futures.ThreadPoolExecutor(args.uploads) as pool:
                    answers = list(pool.map(upload, range(args.uploads)))
                urls = [a for a in answers if a.startswith("http")]
                print(f"uploads: {len(urls)} stored, refused: {Counter(a for a in answers if a not in urls)}")
                if not urls:
                    return 1
                background_url = urls[0]
            after_uploads_kib = sampler.peak_kib

            def generate(user: str) -> str:
                answer = service.stub.GenerateCartImage(
                    pb.GenerateCartImageRequest(
                        user_id=user, style_preference="modern", background_image_url=background_url
                    ),
                    timeout=30,
                )
                if not answer.generation_id:
                    return f"refused: {answer.status} {answer.error_message}"
                status, _ = service.wait_finished(answer.generation_id, timeout=600)
                return status.status if status.status == "completed" else f"{status.status}: {status.error_message}"

            cpu_uploads = cpu_seconds(pid) - cpu_before
            outcomes: Counter[str] = Counter()
            for _ in range(args.rounds):
                with futures.ThreadPoolExecutor(args.concurrency) as pool:
                    outcomes.update(pool.map(generate, users))
            elapsed = time.monotonic() - started
            cpu_generations = cpu_seconds(pid) - cpu_before - cpu_uploads
            hwm_kib = proc_status_kib(pid, "VmHWM")
            sampler.stop()
        finally:
            if service is not None:
                service.terminate()
            stack.stop()

    peak_mib = max(hwm_kib, sampler.peak_kib) / 1024
    print(f"generator={args.generator} workers={args.workers} concurrency={args.concurrency} "
          f"items={args.items} rounds={args.rounds} uploads={args.uploads}")
    print(f"outcomes: {dict(outcomes)} in {elapsed:.1f}s")
    generations = sum(outcomes.values())
    print(f"CPU: {cpu_generations / max(generations, 1):.2f} s per generation"
          + (f", {cpu_uploads / args.uploads:.2f} s per upload" if args.uploads else ""))
    print(f"idle RSS:                 {idle_kib / 1024:7.1f} MiB")
    if args.uploads:
        print(f"peak RSS after uploads:   {after_uploads_kib / 1024:7.1f} MiB (sampled)")
    print(f"peak RSS (sampled):       {sampler.peak_kib / 1024:7.1f} MiB over {sampler.samples} samples")
    print(f"peak RSS (VmHWM):         {hwm_kib / 1024:7.1f} MiB")
    # Request ~ idle plus one generation's working set; limit = peak with 50% headroom, in 64 MiB steps.
    print(f"suggested: requests.memory {64 * math.ceil(idle_kib / 1024 * 1.5 / 64)}Mi, "
          f"limits.memory {64 * math.ceil(peak_mib * 1.5 / 64)}Mi")
    return 0 if set(outcomes) == {"completed"} else 1


if __name__ == "__main__":
    sys.exit(main())
