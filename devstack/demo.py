"""The README's first command: dev stack + service, one cart image with live progress, clean shutdown."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import grpc

from devstack.servers import start_devstack
from genproto import imagegeneration_pb2 as pb
from imagegen.styles import DEFAULT_STYLE, STYLES
from devstack.process import ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CART = {"OLJCESPC7Z": 1, "6E92ZMYYFZ": 2, "0PUK6V6EV0": 1, "1YMWWN1N4O": 1, "9SIQT8TOJO": 3}


def progress_bar(percent: int, status: str, width: int = 30) -> str:
    """One terminal line: [#####.....]  42% processing."""
    filled = width * percent // 100
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {status:<10}"


def generate(service: ServiceProcess, style: str, output: Path) -> Path:
    """Generates one image for the demo user's cart and writes it to output."""
    answer = service.stub.GenerateCartImage(
        pb.GenerateCartImageRequest(user_id="demo-user", style_preference=style), timeout=10
    )
    print(f"generation {answer.generation_id} ({style}): {answer.status}")
    status = None
    shown = None
    interactive = sys.stdout.isatty()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=answer.generation_id), timeout=5)
        if (status.progress, status.status) != shown:
            shown = (status.progress, status.status)
            bar = progress_bar(status.progress, status.status)
            sys.stdout.write(bar if interactive else bar.lstrip("\r") + "\n")
            sys.stdout.flush()
        if status.status != "processing":
            break
        time.sleep(0.1)  # a progress bar refresh rate, not synchronisation
    if interactive:
        print()
    if status is None or status.status != "completed":
        raise SystemExit(f"generation did not complete: {status.status if status else 'no status'} "
                         f"{status.error_message if status else ''}")
    code, _, body = service.http_get(status.image_url)
    if code != 200:
        raise SystemExit(f"fetching {status.image_url} answered HTTP {code}")
    # The stored picture's type (COLLAGE_FORMAT: JPEG by default) names the file, as its URL does.
    output = output.with_suffix("." + status.image_url.rsplit(".", 1)[-1].lower())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(body)
    print(f"image served at {status.image_url}")
    print(f"image written to {output}")
    return output


def main(argv: list[str] | None = None) -> int:
    """Runs the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--style", default=DEFAULT_STYLE, help=f"one of {', '.join(STYLES)}, or 'all'")
    parser.add_argument("--out", default=str(ROOT / "out"), help="folder for the generated images")
    args = parser.parse_args(argv)
    styles = list(STYLES) if args.style == "all" else [args.style]

    with tempfile.TemporaryDirectory(prefix="imagegen-demo-") as tmp, \
            start_devstack(seed_carts={"demo-user": SAMPLE_CART}, draw_pictures=True) as stack:
        print(f"dev stack: cart {stack.cart_addr}, catalog {stack.catalog_addr}, pictures {stack.picture_base_url}")
        service = ServiceProcess(
            {
                "CART_SERVICE_ADDR": stack.cart_addr,
                "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
                "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url,
                "IMAGE_GENERATOR": os.environ.get("IMAGE_GENERATOR", "collage"),
                "GEMINI_API_KEY": os.environ.get("GEMINI_API_KEY", ""),
            },
            Path(tmp),
        )
        try:
            service.wait_serving()
            print(f"service: gRPC 127.0.0.1:{service.port}, HTTP {service.http_base}")
            for style in styles:
                generate(service, style, Path(args.out) / f"cart-{style}")
        except (grpc.RpcError, AssertionError, SystemExit) as error:
            print(f"demo failed: {getattr(error, 'details', lambda: error)()}", file=sys.stderr)
            print(service.logs()[-4000:], file=sys.stderr)
            service.terminate()
            return 1
        code = service.terminate()
        print(f"service stopped (exit {code}); dev stack stopped")
        return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
