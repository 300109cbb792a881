"""The dev stack draws every product picture itself and serves it the way the shop's frontend does."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from devstack import PRODUCTS, draw_product_picture, start_devstack
from devstack.servers import DevStack

ROOT = Path(__file__).resolve().parent.parent
PICTURES = [p.picture for p in PRODUCTS]


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    with start_devstack() as running:
        yield running


def fetch(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    """Status, content type and body of an HTTP request."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


@pytest.mark.parametrize("picture", PICTURES)
def test_every_product_picture_is_served_as_a_700px_jpeg(stack: DevStack, picture: str) -> None:
    status, content_type, body = fetch(stack.picture_base_url + picture)
    assert (status, content_type) == (200, "image/jpeg")
    image = Image.open(io.BytesIO(body))
    assert (image.format, image.size) == ("JPEG", (700, 700))
    image.load()
    # A drawing, not a blank backdrop: the pixels vary well beyond JPEG noise.
    assert ImageStat.Stat(image.convert("L")).stddev[0] > 15


def test_each_product_has_its_own_picture() -> None:
    assert len({hashlib.sha256(draw_product_picture(p)).hexdigest() for p in PICTURES}) == len(PICTURES)


@pytest.mark.parametrize("path", [
    "/static/img/products/submarine.jpg",
    "/static/img/products/mug.png",
    "/static/img/products/../products/mug.jpg",
    "/static/img/mug.jpg",
    "/",
])
def test_unknown_picture_is_not_found(stack: DevStack, path: str) -> None:
    status, _, _ = fetch(stack.picture_base_url + path)
    assert status == 404


def test_head_reports_the_picture_without_a_body(stack: DevStack) -> None:
    status, content_type, body = fetch(stack.picture_base_url + "/static/img/products/watch.jpg", method="HEAD")
    assert (status, content_type, body) == (200, "image/jpeg", b"")


def test_picture_can_be_named_by_path_file_name_or_slug() -> None:
    by_path = draw_product_picture("/static/img/products/loafers.jpg")
    assert draw_product_picture("loafers.jpg") == by_path
    assert draw_product_picture("loafers") == by_path


def test_unknown_picture_name_raises_key_error() -> None:
    with pytest.raises(KeyError):
        draw_product_picture("/static/img/products/submarine.jpg")


def test_picture_is_drawn_at_the_requested_size() -> None:
    image = Image.open(io.BytesIO(draw_product_picture("mug", size=256)))
    assert (image.format, image.size) == ("JPEG", (256, 256))


def test_pictures_are_identical_from_one_process_to_the_next() -> None:
    here = hashlib.sha256(draw_product_picture("hairdryer")).hexdigest()
    there = subprocess.run(
        [sys.executable, "-c",
         "import hashlib; from devstack import draw_product_picture as d; "
         "print(hashlib.sha256(d('hairdryer')).hexdigest())"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    assert there == here
