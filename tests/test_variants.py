"""Display variants: smaller WebPs and a full-width WebP stored beside the full picture, named by one rule."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imagegen.errors import StoreError
from imagegen.stores.local import LocalImageStore
from imagegen.variants import ImageVariant, make_variants, store_variants, variant_name

pytestmark = pytest.mark.fast  # in memory: no servers, no processes

NAME = "generated/abcdefghijklmnopqrstuv.jpg"


def picture(side: int = 1024, fmt: str = "JPEG") -> bytes:
    """A detailed square picture, encoded as the collage stores its pictures."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:side, 0:side]
    pixels = np.dstack([x * 255 // side, y * 255 // side, (x ^ y) & 255]).astype(np.float32)
    pixels += rng.normal(0, 12, pixels.shape)
    out = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(out, fmt, quality=90)
    return out.getvalue()


@pytest.fixture
def store(tmp_path):
    return LocalImageStore(str(tmp_path / "images"), "http://localhost:8081")


def test_the_variant_sits_beside_the_picture_with_its_width_in_the_name() -> None:
    assert variant_name(NAME, 512) == "generated/abcdefghijklmnopqrstuv-w512.webp"
    assert variant_name("generated/abcdefghijklmnopqrstuv.png", 256) == "generated/abcdefghijklmnopqrstuv-w256.webp"


def test_a_1024_jpeg_gets_512_768_and_1024_px_webps_each_far_smaller_than_itself() -> None:
    full = picture()

    made = make_variants(full)

    assert [width for width, _ in made] == [512, 768, 1024]
    for width, data in made:
        image = Image.open(io.BytesIO(data))
        assert image.format == "WEBP" and image.size == (width, width)
        assert len(data) < len(full) * 0.75
    assert len(made[0][1]) < len(full) / 3


def test_the_variants_keep_the_pictures_shape() -> None:
    out = io.BytesIO()
    Image.new("RGB", (1024, 768), (200, 80, 40)).save(out, "PNG")

    sizes = [Image.open(io.BytesIO(data)).size for _, data in make_variants(out.getvalue())]

    assert sizes == [(512, 384), (768, 576), (1024, 768)]


def test_a_webp_picture_gets_no_copy_of_itself() -> None:
    assert [width for width, _ in make_variants(picture(1024, "WEBP"))] == [512, 768]


def test_a_picture_no_wider_than_the_variant_gets_none() -> None:
    assert make_variants(picture(512)) == []
    assert make_variants(picture(300)) == []


def test_an_unreadable_picture_gets_no_variant() -> None:
    assert make_variants(b"not a picture at all") == []


def test_variants_are_stored_beside_the_picture_and_addressed_by_the_stores_url(store) -> None:
    full = picture()
    store.put(NAME, full, "image/jpeg")

    variants = store_variants(store, NAME, full)

    base = "http://localhost:8081/images/generated/abcdefghijklmnopqrstuv"
    assert variants == [ImageVariant(width, f"{base}-w{width}.webp", "image/webp") for width in (512, 768, 1024)]
    assert Image.open(io.BytesIO(store.get("generated/abcdefghijklmnopqrstuv-w768.webp"))).size == (768, 768)
    assert store.get(NAME) == full  # the full picture is untouched


def test_a_store_that_refuses_the_variant_leaves_it_out(store) -> None:
    class Refusing:
        def put(self, name: str, data: bytes, content_type: str) -> None:
            raise StoreError("the bucket is read-only")

        def url_for(self, name: str) -> str:
            raise AssertionError("no URL for an object that was not stored")

    assert store_variants(Refusing(), NAME, picture()) == []  # type: ignore[arg-type]

