"""`make shop`: the demo shop's cart page with "Generate image", on the dev stack and the real service.

Starts the dev stack, the service (`python imagegenservice.py`, local store, PUBLIC_BASE_URL=/cart/image
as the manifests set it), and the Go demo shop built from frontend-kit/ (the kit's handlers, partial and
scripts), then prints the cart page's URL and runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from devstack.process import ServiceProcess, wait_for
from devstack.servers import DevStack, start_devstack

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "frontend-kit"
# Where the kit's image route lives; the service's local store URLs start with it.
IMAGE_ROUTE = "/cart/image"
_LISTENING = re.compile(r"demoshop listening on (http://\S+)")


def go_binary() -> str:
    """The go command: on PATH, or where the official installer puts it."""
    found = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if found is None:
        raise RuntimeError("the demo shop needs Go (https://go.dev/dl/); `go` is not on PATH")
    return found


def build_demoshop(output: Path) -> Path:
    """Builds frontend-kit/cmd/demoshop into output (Go fetches its modules from the module proxy once)."""
    subprocess.run([go_binary(), "build", "-o", str(output), "./cmd/demoshop"], cwd=KIT, check=True)
    return output


class ShopProcess:
    """The demo shop binary, serving on a free loopback port; .url is its cart page."""

    def __init__(self, binary: Path, stack: DevStack, service_addr: str, images_url: str, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [str(binary), "-listen", "127.0.0.1:0", "-service", service_addr, "-images", images_url,
             "-cart", stack.cart_addr, "-catalog", stack.catalog_addr, "-pictures", stack.picture_base_url],
            stdout=subprocess.PIPE, stderr=self._log,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="demoshop-stdout", daemon=True)
        self._reader.start()
        found = wait_for(self._listening, timeout=30, what="the demo shop to listen")
        self.url: str = found  # the cart page, http://127.0.0.1:PORT/cart
        self.base_url = self.url.rsplit("/cart", 1)[0]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self._lines.append(raw.decode(errors="replace"))

    def _listening(self) -> str | None:
        if self.process.poll() is not None and not self._lines:
            raise RuntimeError(f"the demo shop exited with {self.process.returncode}:\n{self.logs()}")
        for line in self._lines:
            match = _LISTENING.search(line)
            if match:
                return match.group(1)
        return None

    def logs(self) -> str:
        """What the shop wrote to stderr so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then wait (kill after 10 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(5)
        self._log.close()


class DemoShop:
    """Dev stack + service + demo shop; a with block stops all three."""

    def __init__(self, workdir: Path, service_env: Mapping[str, str] | None = None,
                 seed_carts: dict[str, dict[str, int]] | None = None, binary: Path | None = None,
                 service_addr: str | None = None, picture_latency: float = 0.0) -> None:
        """service_addr, when given, points the shop at that address instead of starting a service;
        picture_latency slows the dev stack's product pictures (so progress can be watched)."""
        self.workdir = workdir
        self.stack = start_devstack(seed_carts=seed_carts, draw_pictures=True, picture_latency=picture_latency)
        self.service: ServiceProcess | None = None
        self.shop: ShopProcess | None = None
        try:
            binary = binary or build_demoshop(workdir / "demoshop")
            if service_addr is None:
                env = {
                    "CART_SERVICE_ADDR": self.stack.cart_addr,
                    "PRODUCT_CATALOG_SERVICE_ADDR": self.stack.catalog_addr,
                    "PRODUCT_IMAGE_BASE_URL": self.stack.picture_base_url,
                    "IMAGE_GENERATOR": "collage",
                    "PUBLIC_BASE_URL": IMAGE_ROUTE,
                }
                env.update(service_env or {})
                self.service = ServiceProcess(env, workdir / "service")
                self.service.wait_serving()
                service_addr = f"127.0.0.1:{self.service.port}"
                images_url = self.service.http_base
            else:
                images_url = "http://127.0.0.1:9"  # nothing listens there
            self.shop = ShopProcess(binary, self.stack, service_addr, images_url, workdir / "demoshop.log")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """The cart page."""
        assert self.shop is not None
        return self.shop.url

    def stop(self) -> None:
        """Stops the shop, the service and the dev stack."""
        if self.shop is not None:
            self.shop.stop()
        if self.service is not None:
            self.service.terminate()
        self.stack.stop()

    def __enter__(self) -> DemoShop:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM stops the shop the way Ctrl-C does."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Runs the demo shop until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m devstack.shop", description=__doc__)
    parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="imagegen-shop-") as tmp:
        print("building the demo shop (frontend-kit/cmd/demoshop) and starting the dev stack and the service...",
              flush=True)
        try:
            shop = DemoShop(Path(tmp), service_env={"IMAGE_GENERATOR": os.environ.get("IMAGE_GENERATOR", "collage"),
                                                    "GEMINI_API_KEY": os.environ.get("GEMINI_API_KEY", "")})
        except (RuntimeError, OSError, subprocess.CalledProcessError, AssertionError) as error:
            print(f"shop: cannot start: {error}", file=sys.stderr)
            return 1
        with shop:
            print(f"\n  Demo shop: {shop.url}\n  Open it in a browser and press \"Generate image\". Ctrl-C stops it.\n",
                  flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                # Stopping takes a few seconds (bounded); a second signal must not cut it short.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                print("stopping...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
