"""`python -m devstack`: runs the local cart, catalog and picture servers until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from devstack.servers import start_devstack

DEMO_USER = "demo-user"
# A cart that shows off a few different pictures: sunglasses, two mugs, a candle holder, three jars.
DEMO_CART = {"OLJCESPC7Z": 1, "6E92ZMYYFZ": 2, "0PUK6V6EV0": 1, "9SIQT8TOJO": 3}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--cart-port", type=int, default=7070, help="CartService gRPC port (default 7070)")
    parser.add_argument("--catalog-port", type=int, default=3550,
                        help="ProductCatalogService gRPC port (default 3550)")
    parser.add_argument("--http-port", type=int, default=8090, help="product picture HTTP port (default 8090)")
    parser.add_argument("--catalog-latency", type=float, default=0.0,
                        help="seconds of extra latency on every catalog call, like the shop's EXTRA_LATENCY")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Starts the stack, prints its addresses as one JSON line, and runs until signalled."""
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Signals are noted by writing a byte to a pipe (no locks in a handler, so no deadlock with the main
    # thread), and the handlers go in before the servers start, so an early signal is never lost.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: None)
    try:
        stack = start_devstack(
            host=args.host,
            cart_port=args.cart_port,
            catalog_port=args.catalog_port,
            http_port=args.http_port,
            seed_carts={DEMO_USER: dict(DEMO_CART)},
            catalog_latency=args.catalog_latency,
            draw_pictures=True,
        )
    except (OSError, RuntimeError) as err:
        print(f"devstack: cannot start: {err}", file=sys.stderr)
        return 1
    with stack:
        ready = {
            "cart_addr": stack.cart_addr,
            "catalog_addr": stack.catalog_addr,
            "picture_base_url": stack.picture_base_url,
            "demo_user": DEMO_USER,
            "env": {
                "CART_SERVICE_ADDR": stack.cart_addr,
                "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
                "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url,
            },
        }
        print(json.dumps(ready), flush=True)
        logging.getLogger("devstack").info("dev stack ready; press Ctrl-C to stop")
        os.read(wake_read, 1)
    logging.getLogger("devstack").info("dev stack stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
