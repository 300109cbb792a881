"""A small command-line client of ImageGenerationService (an alternative to grpcurl).

    python -m imagegen.client generate --user demo-user --style vintage
    python -m imagegen.client generate --item OLJCESPC7Z:2 --item 6E92ZMYYFZ:1 --no-wait
    python -m imagegen.client status GENERATION_ID
    python -m imagegen.client upload beach.jpg
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict

from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc

WAIT_SECONDS = 300  # the longest `generate` waits for the picture


def _print(message: object) -> None:
    """One answer as JSON, with every field shown (also empty ones)."""
    print(json.dumps(MessageToDict(message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True), indent=2))


def _item(value: str) -> pb.CartItem:
    """PRODUCT_ID[:QUANTITY] -> CartItem."""
    product_id, _, quantity = value.partition(":")
    try:
        return pb.CartItem(product_id=product_id, quantity=int(quantity or 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PRODUCT_ID[:QUANTITY], got {value!r}") from None


def generate(stub: pb_grpc.ImageGenerationServiceStub, args: argparse.Namespace) -> int:
    """Starts a generation and (unless --no-wait) follows its progress to the end."""
    answer = stub.GenerateCartImage(pb.GenerateCartImageRequest(
        user_id=args.user, style_preference=args.style, background_image_url=args.background, cart_items=args.item,
    ), timeout=args.timeout)
    if args.no_wait or answer.status != "processing":
        _print(answer)
        return 0 if answer.status != "failed" else 1
    print(f"generation {answer.generation_id}: processing", file=sys.stderr)
    deadline = time.monotonic() + WAIT_SECONDS
    shown = -1
    while True:
        status = stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=answer.generation_id),
                                               timeout=args.timeout)
        if status.status == "processing" and status.progress != shown:
            shown = status.progress
            print(f"  {status.progress:3d}%", file=sys.stderr)
        if status.status != "processing" or time.monotonic() > deadline:
            break
        time.sleep(0.25)  # a polling interval, as a browser's would be
    _print(status)
    return 0 if status.status == "completed" else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the command line, makes the call, prints the answer; exit code 1 on any error."""
    parser = argparse.ArgumentParser(prog="python -m imagegen.client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default="localhost:8080", help="the service's gRPC address (default localhost:8080)")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline of each call, in seconds")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="start a picture of a cart and wait for it")
    gen.add_argument("--user", default="", help="whose cart CartService holds (e.g. demo-user)")
    gen.add_argument("--style", default="", help="modern (default), vintage, minimalist, playful, luxury, rustic, festive")
    gen.add_argument("--background", default="", help="a background URL returned by `upload`")
    gen.add_argument("--item", type=_item, action="append", default=[], metavar="PRODUCT_ID[:QTY]",
                     help="a cart item instead of the user's cart; repeat for more")
    gen.add_argument("--no-wait", action="store_true", help="print the first answer and return")
    stat = commands.add_parser("status", help="the status of a generation")
    stat.add_argument("generation_id")
    up = commands.add_parser("upload", help="upload a background picture (PNG, JPEG or WebP)")
    up.add_argument("file", type=Path)
    args = parser.parse_args(argv)

    with grpc.insecure_channel(args.addr) as channel:
        stub = pb_grpc.ImageGenerationServiceStub(channel)
        try:
            if args.command == "generate":
                return generate(stub, args)
            if args.command == "status":
                _print(stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=args.generation_id),
                                                     timeout=args.timeout))
                return 0
            data = base64.b64encode(args.file.read_bytes()).decode()
            _print(stub.UploadBackground(pb.UploadBackgroundRequest(image_data=data), timeout=args.timeout))
            return 0
        except grpc.RpcError as error:
            print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
