#!/usr/bin/env python
"""Peak memory (VmHWM) and health of the service under floods of large, slow and malformed requests, one fresh process per flood.

    .venv/bin/python benchmarks/measure_floods.py                       # every flood
    .venv/bin/python benchmarks/measure_floods.py --only uploads connections
    .venv/bin/python benchmarks/measure_floods.py --service-dir /tmp/old  # another checkout (before/after)

Floods:
  uploads      60 concurrent UploadBackground calls of ~13 MB each, two of them the costliest pictures
               the budget admits (8000x5000 16-bit RGBA and palette PNGs)
  bombs        crafted PNGs: 16-bit 1 x 40M, RGB 1 x 40M, truncated 1 x 40M, 16-bit 8000x5000 (in turn)
  connections  5000 silent and 200 slowloris connections on the HTTP side port, 500 silent on gRPC
  generate     200 shoppers press Generate at once while the catalog holds every answer for 5 s
  fields       128 concurrent GenerateCartImage calls with a 13 MB style_preference
For each: the outcomes, the slowest of the health checks made during the flood (gRPC Check and
GET /healthz, 1 s timeout each) and the peak RSS.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import resource
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from devstack.process import ServiceProcess  # noqa: E402
from devstack.servers import start_devstack  # noqa: E402
from genproto import imagegeneration_pb2 as pb  # noqa: E402
from tests.fakes.crafted import png  # noqa: E402
from tests.fakes.held_catalog import HeldCatalog  # noqa: E402


class HealthWatch(threading.Thread):
    """Checks gRPC health and GET /healthz every 100 ms; keeps the slowest answer and the failures."""

    def __init__(self, service: ServiceProcess) -> None:
        super().__init__(daemon=True)
        self.service = service
        # A connection of its own, as the kubelet has: not queued behind the flood's streams.
        self._channel = grpc.insecure_channel(f"127.0.0.1:{service.port}", options=[("grpc.use_local_subchannel_pool", 1)])
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self.slowest = 0.0
        self.checks = 0
        self.failures: Counter[str] = Counter()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            for check in (self._grpc, self._http):
                started = time.monotonic()
                try:
                    check()
                except Exception:  # noqa: BLE001 (a failed check is what we count)
                    self.failures[check.__name__.strip("_")] += 1
                self.checks += 1
                self.slowest = max(self.slowest, time.monotonic() - started)

    def _grpc(self) -> None:
        answer = self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING

    def _http(self) -> None:
        assert self.service.http_get(self.service.http_base + "/healthz", timeout=1)[0] == 200

    def stop(self) -> str:
        self._done.set()
        self.join()
        self._channel.close()
        failed = sum(self.failures.values())
        return (f"{self.checks - failed}/{self.checks} health checks answered, slowest {self.slowest:.2f} s"
                + (f", failed: {dict(self.failures)}" if failed else ""))


def code_of(call: Callable[[], object]) -> str:
    try:
        call()
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


def flood_uploads(service: ServiceProcess, _: dict) -> str:
    costly = [base64.b64encode(png(8000, 5000, 16, 6)).decode(), base64.b64encode(png(8000, 5000, 8, 3)).decode()]
    body = "A" * (13 * 1024 * 1024)

    def upload(data: str) -> str:
        return code_of(lambda: service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=data), timeout=120))

    with futures.ThreadPoolExecutor(60) as pool:
        first = [pool.submit(upload, data) for data in costly]
        rest = [pool.submit(upload, body) for _ in range(58)]
        outcomes = Counter(f.result() for f in first + rest)
    return f"60 uploads: {dict(outcomes)}"


def flood_bombs(service: ServiceProcess, _: dict) -> str:
    outcomes = Counter()
    for shape in [(1, 40_000_000, 16, 0), (1, 40_000_000, 8, 2), (8000, 5000, 16, 0)]:
        data = base64.b64encode(png(*shape)).decode()
        outcomes[code_of(lambda: service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=data),
                                                               timeout=120))] += 1
    data = base64.b64encode(png(1, 40_000_000, 8, 2, truncated=True)).decode()
    outcomes[code_of(lambda: service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=data), timeout=120))] += 1
    return f"4 crafted PNGs: {dict(outcomes)}"


def flood_connections(service: ServiceProcess, _: dict) -> str:
    held: list[socket.socket] = []
    try:
        for _ in range(SILENT):
            held.append(socket.create_connection(("127.0.0.1", service.http_port), timeout=10))
        slow = [socket.create_connection(("127.0.0.1", service.http_port), timeout=10) for _ in range(200)]
        held += slow
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in range(500):
            held.append(socket.create_connection(("127.0.0.1", service.port), timeout=10))
        for _ in range(8):  # trickle for 8 s: one header byte a second on every slow connection
            time.sleep(1)
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"a")
        open_now = sum(1 for sock in held if _still_open(sock))
    finally:
        for sock in held:
            sock.close()
    return f"{SILENT + 700} connections held 8 s ({open_now} still open at the end)"


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def flood_generate(service: ServiceProcess, extra: dict) -> str:
    catalog: HeldCatalog = extra["catalog"]
    request = pb.GenerateCartImageRequest(cart_items=[pb.CartItem(product_id="6E92ZMYYFZ", quantity=1)])

    def generate(_: int) -> str:
        return code_of(lambda: service.stub.GenerateCartImage(request, timeout=60))

    threading.Timer(5.0, catalog.release.set).start()
    with futures.ThreadPoolExecutor(200) as pool:
        outcomes = Counter(pool.map(generate, range(200)))
    return f"200 generations, catalog held 5 s: {dict(outcomes)}"


def flood_fields(service: ServiceProcess, _: dict) -> str:
    request = pb.GenerateCartImageRequest(user_id="u", style_preference="s" * 13 * 1024 * 1024)

    def generate(_: int) -> str:
        return code_of(lambda: service.stub.GenerateCartImage(request, timeout=120))

    with futures.ThreadPoolExecutor(128) as pool:
        outcomes = Counter(pool.map(generate, range(128)))
    return f"128 requests with a 13 MB field: {dict(outcomes)}"


SILENT = int(os.environ.get("FLOOD_SILENT", "5000"))
FLOODS = {"uploads": flood_uploads, "bombs": flood_bombs, "connections": flood_connections,
          "generate": flood_generate, "fields": flood_fields}


def run(name: str, service_dir: Path, stack, overrides: dict[str, str]) -> None:
    extra: dict = {}
    env = {"CART_SERVICE_ADDR": stack.cart_addr, "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
           "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url, "IMAGE_GENERATOR": "collage", "LOG_LEVEL": "WARNING",
           "GENERATION_QUEUE_SIZE": "256"}
    env.update(overrides)
    if name == "generate":
        extra["catalog"] = HeldCatalog(hold_seconds=30)
        env.update(PRODUCT_CATALOG_SERVICE_ADDR=extra["catalog"].addr, PEER_TIMEOUT_SECONDS="30")
    with tempfile.TemporaryDirectory(prefix="imagegen-flood-") as tmp:
        service = ServiceProcess(env, Path(tmp), cwd=service_dir)
        try:
            service.wait_serving(timeout=60)
            idle = service.memory_mib("VmHWM")
            watch = HealthWatch(service)
            watch.start()
            outcome = FLOODS[name](service, extra)
            health = watch.stop()
            peak = service.memory_mib("VmHWM")
        finally:
            service.terminate()
            if "catalog" in extra:
                extra["catalog"].close()
    print(f"{name:12} idle {idle:5.0f} MiB  peak {peak:6.0f} MiB  {health}\n{'':>12} {outcome}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(FLOODS), default=list(FLOODS))
    parser.add_argument("--service-dir", type=Path, default=ROOT, help="checkout whose imagegenservice.py runs")
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE", help="more environment for the service")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))  # the flood's own sockets
    with start_devstack() as stack:
        for name in args.only:
            run(name, args.service_dir, stack, dict(pair.split("=", 1) for pair in args.env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
