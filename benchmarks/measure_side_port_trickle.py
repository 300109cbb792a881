#!/usr/bin/env python
"""GET /healthz latency on the side port with no other connection (the reference), then through CONNECTIONS
connections trickling one header byte a second, on one fresh service process; also the machine's load.

    .venv/bin/python benchmarks/measure_side_port_trickle.py               # 10,000 connections, 100 probes
    .venv/bin/python benchmarks/measure_side_port_trickle.py --connections 2000

Prints p50/p99/max of each run's probes (1 s deadline, every 0.2 s, as the kubelet's) and how many missed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.process import ServiceProcess  # noqa: E402
from devstack.servers import start_devstack  # noqa: E402


def probe(service: ServiceProcess, count: int) -> tuple[list[float], int]:
    """count GET /healthz with a 1 s deadline, 0.2 s apart; their latencies and how many missed."""
    latencies, missed = [], 0
    for _ in range(count):
        started = time.monotonic()
        try:
            ok = service.http_get(service.http_base + "/healthz", timeout=1)[0] == 200
        except OSError:
            ok = False
        latencies.append(time.monotonic() - started)
        missed += not ok
        time.sleep(0.2)  # the probes' pace
    return latencies, missed


def figures(name: str, latencies: list[float], missed: int) -> str:
    ordered = sorted(latencies)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return (f"{name:>28}: p50 {p(0.5):6.1f} ms  p99 {p(0.99):6.1f} ms  max {ordered[-1] * 1000:6.1f} ms"
            f"  missed {missed}/{len(latencies)}  load {os.getloadavg()[0]:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--probes", type=int, default=100)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 2048), hard))
    with start_devstack() as stack, tempfile.TemporaryDirectory(prefix="imagegen-trickle-") as tmp:
        env = {"CART_SERVICE_ADDR": stack.cart_addr, "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
               "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url, "IMAGE_GENERATOR": "collage", "LOG_LEVEL": "WARNING"}
        service = ServiceProcess(env, Path(tmp))
        trickling: list[socket.socket] = []
        stop = threading.Event()
        try:
            service.wait_serving(timeout=60)
            print(figures("no other connection", *probe(service, args.probes)), flush=True)

            def open_one() -> socket.socket:
                sock = socket.create_connection(("127.0.0.1", service.http_port), timeout=10)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                return sock

            def trickle() -> None:
                while not stop.wait(1.0):  # one header byte a second on each, re-opened when closed
                    for index, sock in enumerate(trickling):
                        try:
                            sock.send(b"a")
                        except OSError:
                            sock.close()
                            with contextlib.suppress(OSError):
                                trickling[index] = open_one()

            for _ in range(args.connections):
                with contextlib.suppress(OSError):
                    trickling.append(open_one())
            threading.Thread(target=trickle, daemon=True).start()
            print(figures(f"{len(trickling):,} trickling", *probe(service, args.probes)), flush=True)
        finally:
            stop.set()
            for sock in trickling:
                sock.close()
            service.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
