#!/usr/bin/env python
"""Health through a flood of status calls: RATE GetImageGenerationStatus calls a second for SECONDS, on a
fresh service process, while gRPC Check and GET /healthz are probed every 100 ms with a 1 s deadline.

    .venv/bin/python benchmarks/measure_status_flood.py                          # 1,000/s for 20 s
    .venv/bin/python benchmarks/measure_status_flood.py --service-dir /tmp/old   # another checkout (before/after)

Prints the calls sent (and the rate the client reached), their outcomes by status code, and the health
probes answered. The flood's own calls are on one channel; the probes on another, as the kubelet's are.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure_floods import HealthWatch  # noqa: E402
from devstack.process import ServiceProcess  # noqa: E402
from devstack.servers import start_devstack  # noqa: E402
from genproto import imagegeneration_pb2 as pb  # noqa: E402


def flood(service: ServiceProcess, rate: int, seconds: float) -> tuple[int, float, Counter[str]]:
    """Sends rate calls a second for seconds; returns calls sent, seconds taken, and outcomes."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    pending: list[grpc.Future] = []
    request = pb.GetStatusRequest(generation_id="nope")

    def done(future: grpc.Future) -> None:
        code = future.code().name if future.exception() is not None else "OK"
        with lock:
            outcomes[code] += 1

    started = time.monotonic()
    sent = 0
    tick = 0.01  # calls go out in batches every 10 ms
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) - sent
        for _ in range(max(0, due)):
            future = service.stub.GetImageGenerationStatus.future(request, timeout=5)
            future.add_done_callback(done)
            pending.append(future)
            sent += 1
        time.sleep(tick)  # the flood's pacing
    taken = time.monotonic() - started
    for future in pending:
        future.exception()  # wait for every answer
    return sent, taken, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--service-dir", type=Path, default=ROOT, help="checkout whose imagegenservice.py runs")
    args = parser.parse_args(argv)
    with start_devstack() as stack, tempfile.TemporaryDirectory(prefix="imagegen-status-flood-") as tmp:
        env = {"CART_SERVICE_ADDR": stack.cart_addr, "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
               "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url, "IMAGE_GENERATOR": "collage", "LOG_LEVEL": "WARNING"}
        service = ServiceProcess(env, Path(tmp), cwd=args.service_dir)
        try:
            service.wait_serving(timeout=60)
            watch = HealthWatch(service)
            watch.start()
            sent, taken, outcomes = flood(service, args.rate, args.seconds)
            health = watch.stop()
        finally:
            service.terminate()
    print(f"{args.service_dir}: {sent} status calls in {taken:.1f} s ({sent / taken:.0f}/s): {dict(outcomes)}\n"
          f"  {health}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
