"""Background uploads: what is accepted, what is refused and why, and what comes out."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import tracemalloc
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageChops, ImageCms

from imagegen import uploads
from imagegen.errors import InvalidArgument
from imagegen.uploads import Background, UploadLimits, decode_background

pytestmark = pytest.mark.fast  # in memory: no servers, no processes

LIMITS = UploadLimits()
NAME = re.compile(r"^backgrounds/[0-9a-f]{64}\.(jpg|png)$")


# --- building uploads -------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """The image saved in a format, as a browser would upload the file."""
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode(data: bytes, limits: UploadLimits = LIMITS) -> Background:
    return decode_background(b64(data), limits)


def reopen(background: Background) -> Image.Image:
    """The stored background as the generator (or a browser) will read it."""
    image = Image.open(io.BytesIO(background.picture.data))
    image.load()
    return image


def refusal(image_data: str, limits: UploadLimits = LIMITS) -> str:
    """The problem decode_background reports for an upload it must refuse."""
    with pytest.raises(InvalidArgument) as caught:
        decode_background(image_data, limits)
    assert caught.value.field == "image_data"
    return caught.value.problem


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_from_rows(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written by hand, for what Pillow cannot write (16-bit RGB, lying headers)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height RGB pixels, with one row of real data."""
    return png_from_rows(width, height, 8, 2, b"\x00" + b"\x00" * 3 * min(width, 64))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to claim width x height."""
    data = bytearray(encode(Image.new("RGB", (16, 16), "gray"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """A WebP whose extended header (VP8X) claims a width x height canvas."""
    frame = encode(Image.new("RGB", (16, 16), "gray"), "WEBP", lossless=True)[12:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body


def photo(size: tuple[int, int] = (120, 80)) -> Image.Image:
    """An opaque RGB picture with structure, so JPEG and resampling have something to work on."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste((200, 30, 40), (0, 0, size[0] // 4, size[1] // 4))
    return image


# --- what comes out ---------------------------------------------------------------------------------


def test_opaque_png_comes_back_as_jpeg_named_after_its_bytes():
    background = decode(encode(photo((120, 80)), "PNG"))

    assert background.picture.mime_type == "image/jpeg"
    assert NAME.match(background.name)
    assert background.name == f"backgrounds/{hashlib.sha256(background.picture.data).hexdigest()}.jpg"
    image = reopen(background)
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    assert image.size == (background.width, background.height) == (120, 80)


def test_transparent_png_stays_png_with_its_alpha():
    image = Image.new("RGBA", (40, 30), (10, 200, 30, 255))
    image.paste((0, 0, 0, 0), (0, 0, 20, 30))

    background = decode(encode(image, "PNG"))

    assert background.picture.mime_type == "image/png"
    assert background.name.endswith(".png")
    out = reopen(background)
    assert out.format == "PNG" and out.mode == "RGBA"
    assert out.getpixel((5, 5))[3] == 0
    assert out.getpixel((35, 5)) == (10, 200, 30, 255)


def test_alpha_channel_that_is_fully_opaque_becomes_jpeg():
    background = decode(encode(Image.new("RGBA", (20, 20), (1, 2, 3, 255)), "PNG"))

    assert background.picture.mime_type == "image/jpeg"


def test_jpeg_is_accepted():
    background = decode(encode(photo(), "JPEG", quality=90))

    assert reopen(background).size == (120, 80)


def test_lossy_and_lossless_webp_are_accepted():
    lossy = decode(encode(photo(), "WEBP", quality=80))
    lossless = decode(encode(Image.new("RGBA", (30, 20), (0, 0, 255, 100)), "WEBP", lossless=True))

    assert lossy.picture.mime_type == "image/jpeg"
    assert lossless.picture.mime_type == "image/png"
    assert reopen(lossless).getpixel((1, 1)) == (0, 0, 255, 100)


def test_same_image_twice_gets_the_same_name():
    data = encode(photo(), "PNG")

    first = decode(data)
    second = decode_background("data:image/png;base64," + b64(data), LIMITS)

    assert first.name == second.name
    assert first.picture.data == second.picture.data


def test_different_images_get_different_names():
    assert decode(encode(photo(), "PNG")).name != decode(encode(photo().rotate(180), "PNG")).name


def test_small_image_is_not_enlarged():
    assert reopen(decode(encode(photo((9, 7)), "PNG"))).size == (9, 7)


@pytest.mark.parametrize(
    ("size", "fmt"),
    [((1000, 200), "PNG"), ((200, 1000), "WEBP"), ((1000, 700), "JPEG"), ((3000, 10), "JPEG")],
)
def test_large_image_is_scaled_down_to_max_side_keeping_its_shape(size, fmt):
    limits = UploadLimits(max_side=256)

    background = decode(encode(photo(size), fmt), limits)

    width, height = reopen(background).size
    assert max(width, height) <= 256
    # JPEG may be decoded at 1/2, 1/4 or 1/8 scale, which lands at 3/4 of max_side or more.
    assert max(width, height) >= 256 * uploads.DRAFT_MIN_FRACTION
    assert abs(height - width * size[1] / size[0]) <= 1  # the shape, to the pixel


@pytest.mark.parametrize(
    ("size", "expected"), [((1000, 700), (250, 175)), ((2000, 1000), (250, 125)), ((300, 200), (256, 171))]
)
def test_large_jpeg_is_decoded_at_a_reduced_scale_when_that_fits(size, expected):
    # 1/2, 1/4 or 1/8 scale costs nothing in the JPEG decoder, and is kept when it lands within
    # [3/4, 1] of max_side; otherwise (300 -> 256) the picture is resampled to max_side exactly.
    background = decode(encode(photo(size), "JPEG"), UploadLimits(max_side=256))

    assert (background.width, background.height) == expected


def test_large_transparent_image_is_downscaled_as_well_as_a_plain_lanczos_resize():
    # Big images are box-averaged band by band before Lanczos; no seam or halo may show.
    image = Image.linear_gradient("L").resize((2400, 1000)).convert("RGB")
    image.paste((250, 40, 10), (300, 200, 1500, 700))
    image.putalpha(Image.linear_gradient("L").rotate(90).resize((2400, 1000)))
    limits = UploadLimits(max_side=256)

    out = reopen(decode(encode(image, "PNG", compress_level=1), limits))

    reference = image.resize(out.size, Image.Resampling.LANCZOS).convert("RGBa")
    difference = ImageChops.difference(out.convert("RGBa"), reference)
    assert out.size == (256, 107)
    assert max(high for _, high in difference.getextrema()) <= 6  # Pillow's own reducing_gap=1.5: 4


def test_large_jpeg_keeps_its_colours_after_reduced_decoding():
    background = decode(encode(Image.new("RGB", (1600, 1200), (200, 30, 40)), "JPEG"), UploadLimits(max_side=256))

    image = reopen(background)
    assert max(image.size) <= 256
    assert image.getpixel((50, 50)) == pytest.approx((200, 30, 40), abs=4)


def test_concurrent_uploads_each_get_their_own_picture_and_leave_warning_filters_alone():
    shades = list(range(0, 240, 30))
    uploads_by_shade = {shade: encode(Image.new("RGB", (300, 200), (shade, 100, 50)), "PNG") for shade in shades}
    filters_before = list(warnings.filters)

    with ThreadPoolExecutor(max_workers=len(shades)) as pool:
        backgrounds = dict(zip(shades, pool.map(decode, uploads_by_shade.values())))

    for shade, background in backgrounds.items():
        assert reopen(background).getpixel((10, 10)) == pytest.approx((shade, 100, 50), abs=4)
    assert len({background.name for background in backgrounds.values()}) == len(shades)
    assert warnings.filters == filters_before


# --- input encodings --------------------------------------------------------------------------------


def test_data_url_from_a_browser_is_accepted():
    data = encode(photo(), "PNG")

    background = decode_background("data:image/png;base64," + b64(data), LIMITS)

    assert reopen(background).size == (120, 80)


@pytest.mark.parametrize("declared", ["image/gif", "image/svg+xml", "application/octet-stream", "text/plain"])
def test_data_url_is_judged_by_its_content_not_its_declared_type(declared):
    background = decode_background(f"data:{declared};base64," + b64(encode(photo(), "JPEG")), LIMITS)

    assert reopen(background).size == (120, 80)


def test_data_url_with_parameters_and_upper_case_is_accepted():
    image_data = "DATA:image/png;name=shop.png;BASE64," + b64(encode(photo(), "PNG"))

    assert decode_background(image_data, LIMITS).width == 120


def test_url_safe_base64_without_padding_is_accepted():
    data = encode(photo(), "PNG") + b"\xfb\xff"  # trailing bytes make sure '-', '_' and no padding occur
    image_data = base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
    assert "-" in image_data or "_" in image_data

    assert decode_background(image_data, LIMITS).width == 120


def test_base64_with_line_breaks_and_spaces_is_accepted():
    wrapped = base64.encodebytes(encode(photo(), "PNG")).decode("ascii").replace("\n", "\r\n  ")

    assert decode_background("\n" + wrapped + "\n", LIMITS).width == 120


# --- refusals: the envelope -------------------------------------------------------------------------


@pytest.mark.parametrize("image_data", ["", "   \n\t ", "data:image/png;base64,", "===="])
def test_empty_upload_is_refused(image_data):
    assert "empty" in refusal(image_data)


@pytest.mark.parametrize("image_data", ["not*base64!", "iVBORw0KGgo=AAAA", "aGVsbG8=\u00e9", "abcde"])
def test_text_that_is_not_base64_is_refused(image_data):
    assert "base64" in refusal(image_data)


def test_data_url_that_is_not_base64_is_refused():
    assert "base64" in refusal("data:image/png,%89PNG%0D%0A")


def test_data_url_without_data_is_refused():
    assert "data: URL" in refusal("data:image/png;base64")


def test_upload_over_the_size_limit_is_refused():
    limits = UploadLimits(max_bytes=4096)
    data = encode(photo(), "PNG")
    padded = data + b"\0" * (4096 - len(data))  # bytes after IEND are ignored by PNG readers

    assert decode(padded, limits).width == 120
    assert "4 KB" in refusal(b64(padded + b"\0"), limits)


def test_huge_string_is_refused_without_being_decoded():
    huge = "A" * (64 * 1024 * 1024)

    tracemalloc.start()
    try:
        problem = refusal(huge)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert "10 MB" in problem
    assert peak < 1024 * 1024  # no copy of the 64 MB string, no decoded bytes


# --- refusals: what the bytes are -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (encode(Image.new("RGB", (8, 8)), "GIF"), "GIF"),
        (encode(Image.new("RGB", (8, 8)), "BMP"), "BMP"),
        (encode(Image.new("RGB", (8, 8)), "TIFF"), "TIFF"),
        (encode(Image.new("RGB", (8, 8)), "ICO"), "ICO"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
        (b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>", "HTML"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (b"PK\x03\x04" + b"\x00" * 40, "ZIP"),
    ],
    ids=["gif", "bmp", "tiff", "ico", "svg", "html", "pdf", "heic", "zip"],
)
def test_other_formats_are_refused_by_name(data, named):
    problem = refusal(b64(data))

    assert named in problem
    assert "PNG, JPEG or WebP" in problem


def test_animated_gif_is_refused():
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "green")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)

    assert "GIF" in refusal(b64(data))


def test_random_bytes_are_refused():
    assert refusal(b64(bytes(range(256)) * 4)) == "is not a PNG, JPEG or WebP image"


def test_declared_name_or_type_cannot_smuggle_a_gif():
    gif = encode(Image.new("RGB", (8, 8)), "GIF")

    assert "GIF" in refusal("data:image/png;base64," + b64(gif))


# --- refusals: dimensions ---------------------------------------------------------------------------


@pytest.mark.parametrize("claiming", [png_claiming, jpeg_claiming, webp_claiming], ids=["png", "jpeg", "webp"])
def test_header_claiming_huge_dimensions_is_refused_before_decoding(claiming):
    # 60000 x 60000 x 4 bytes is 14 GB: decoding first would fail slowly or exhaust memory, with another message.
    side = 16000 if claiming is webp_claiming else 60000  # the largest each format can state
    data = claiming(side, side)
    assert len(data) < 2000

    assert "pixels" in refusal(b64(data))


def test_png_claiming_100000_by_100000_is_refused():
    assert "pixels" in refusal(b64(png_claiming(100_000, 100_000)))


def test_image_just_over_the_pixel_limit_is_refused_with_its_size():
    limits = UploadLimits(max_pixels=10_000)

    assert decode(encode(photo((100, 100)), "PNG"), limits).width == 100
    assert refusal(b64(encode(photo((101, 100)), "PNG")), limits) == "is 101x100 pixels, more than the limit of 10,000"


def test_pillow_decompression_bomb_warning_is_a_refusal_and_changes_nothing_global():
    # Above Pillow's MAX_IMAGE_PIXELS Pillow only warns; a limit set higher must not let that through.
    assert Image.MAX_IMAGE_PIXELS is not None
    side = int((Image.MAX_IMAGE_PIXELS * 1.5) ** 0.5)
    limits = UploadLimits(max_pixels=4 * Image.MAX_IMAGE_PIXELS)
    limit_before = Image.MAX_IMAGE_PIXELS

    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")  # as in production, a warning alone would not stop anything
        filters_before = list(warnings.filters)
        problem = refusal(b64(png_claiming(side, side)), limits)
        filters_after = list(warnings.filters)

    assert problem == f"is more than {Image.MAX_IMAGE_PIXELS:,} pixels"
    assert escaped == []
    assert filters_after == filters_before
    assert Image.MAX_IMAGE_PIXELS == limit_before


@pytest.mark.parametrize("claiming", [png_claiming, jpeg_claiming], ids=["png", "jpeg"])
@pytest.mark.parametrize("size", [(0, 10), (10, 0)])
def test_image_without_pixels_is_refused(claiming, size):
    problem = refusal(b64(claiming(*size)))

    assert problem in ("has no pixels", uploads.UNDECODABLE)


# --- refusals: broken data --------------------------------------------------------------------------


def noisy(size: tuple[int, int] = (64, 48)) -> Image.Image:
    return Image.merge("RGB", [Image.effect_noise(size, 60) for _ in range(3)])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_image_is_refused(fmt):
    data = encode(noisy(), fmt)

    problem = refusal(b64(data[: len(data) // 2]))

    assert problem == uploads.UNDECODABLE


def test_png_with_corrupt_compressed_data_is_refused():
    rows = b"".join(b"\x00" + bytes(range(30)) for _ in range(10))
    good = png_from_rows(10, 10, 8, 2, rows)
    idat = good.index(b"IDAT")
    body = bytearray(zlib.compress(rows))
    body[5:15] = b"\xff" * 10
    bad = good[: idat - 4] + png_chunk(b"IDAT", bytes(body)) + png_chunk(b"IEND", b"")

    assert "could not be decoded" in refusal(b64(bad))


def test_jpeg_stuffed_with_scans_is_refused():
    # Each scan of a progressive JPEG is a pass over the whole image: thousands of them cost minutes.
    data = encode(noisy(), "JPEG", progressive=True)
    stuffed = data[:-2] + (b"\xff\xda\x00\x08\x01\x01\x00\x00\x00\x00" * 500) + data[-2:]

    assert "scans" in refusal(b64(stuffed))


def test_refusal_never_quotes_the_upload_or_chains_pillow_errors():
    # Pillow's own message for this file quotes four of its bytes: "broken PNG file (chunk b'S#C!')".
    raw = b"".join(b"\x00" + bytes(range(i, i + 30)) for i in range(100))
    compressed = zlib.compress(raw)
    header = png_from_rows(10, 100, 8, 2, raw)[:33]
    bad = header + png_chunk(b"IDAT", compressed[: len(compressed) // 2]) + struct.pack(">I", 8) + b"S#C!" + b"x" * 12
    with pytest.raises(SyntaxError, match="S#C!"):
        Image.open(io.BytesIO(bad)).load()

    with pytest.raises(InvalidArgument) as caught:
        decode_background(b64(bad), LIMITS)

    assert str(caught.value) == f"image_data: {uploads.UNDECODABLE}"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# --- polyglots --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"evil.jar" * 20 + b"PK\x05\x06" + b"\x00" * 18,
        b"<html><script>alert('polyglot')</script></html>",
    ],
    ids=["zip", "html"],
)
def test_polyglot_keeps_only_the_picture(tail):
    background = decode(encode(photo(), "PNG") + tail)

    assert reopen(background).size == (120, 80)
    assert b"PK\x03\x04" not in background.picture.data
    assert b"<script" not in background.picture.data


def test_png_hidden_behind_a_gif_header_is_refused():
    assert "GIF" in refusal(b64(b"GIF89a" + encode(photo(), "PNG")))


def test_png_inside_an_html_page_is_refused():
    page = b"<html><body>" + encode(photo(), "PNG") + b"</body></html>"

    assert "HTML" in refusal(b64(page))


# --- animation: the first frame ---------------------------------------------------------------------


def test_animated_webp_gives_its_first_frame():
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=80, lossless=True)

    image = reopen(decode(data))

    assert image.getpixel((20, 15)) == pytest.approx((250, 0, 0), abs=4)


def test_animated_png_gives_its_first_frame():
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((250, 0, 0), (0, 250, 0))]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=80)

    assert reopen(decode(data)).getpixel((20, 15)) == pytest.approx((250, 0, 0), abs=4)


# --- modes ------------------------------------------------------------------------------------------


def test_palette_with_transparency_keeps_its_transparent_pixels():
    image = Image.new("P", (20, 20), 1)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.paste(0, (0, 0, 10, 20))

    out = reopen(decode(encode(image, "PNG", transparency=0)))

    assert out.mode == "RGBA"
    assert out.getpixel((2, 2))[3] == 0
    assert out.getpixel((15, 2)) == (255, 0, 0, 255)


def test_palette_without_transparency_becomes_jpeg():
    image = Image.new("P", (20, 20), 1)
    image.putpalette([0, 0, 0, 0, 0, 255])

    background = decode(encode(image, "PNG"))

    assert background.picture.mime_type == "image/jpeg"
    assert reopen(background).getpixel((5, 5)) == pytest.approx((0, 0, 255), abs=4)


def test_rgb_png_with_a_transparent_colour_key_keeps_it():
    image = Image.new("RGB", (20, 20), (9, 9, 9))
    image.paste((255, 255, 0), (10, 0, 20, 20))

    out = reopen(decode(encode(image, "PNG", transparency=(9, 9, 9))))

    assert out.getpixel((2, 2))[3] == 0
    assert out.getpixel((15, 2)) == (255, 255, 0, 255)


def test_cmyk_jpeg_comes_back_as_rgb_with_the_right_colour():
    image = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # full magenta and yellow: red

    out = reopen(decode(encode(image, "JPEG", quality=95)))

    assert out.mode == "RGB"
    red, green, blue = out.getpixel((20, 20))
    assert red > 200 and green < 50 and blue < 50


def test_16_bit_grey_png_is_scaled_not_clipped_to_white():
    image = Image.new("I;16", (20, 20), 32768)  # mid grey in 16 bits

    out = reopen(decode(encode(image, "PNG")))

    assert out.getpixel((5, 5)) == pytest.approx((128, 128, 128), abs=3)


def test_16_bit_rgb_png_keeps_its_colour():
    pixel = struct.pack(">HHH", 65535, 32768, 0)
    rows = b"".join(b"\x00" + pixel * 8 for _ in range(8))

    out = reopen(decode(png_from_rows(8, 8, 16, 2, rows)))

    assert out.getpixel((4, 4)) == pytest.approx((255, 128, 0), abs=4)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("1", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("I;16", "PNG"),
     ("L", "JPEG"), ("RGB", "JPEG"), ("CMYK", "JPEG"), ("YCbCr", "JPEG"), ("RGB", "WEBP"), ("RGBA", "WEBP")],
)
def test_every_mode_an_upload_can_carry_comes_out_rgb_or_rgba(mode, fmt):
    image = photo((30, 20)).convert(mode) if mode not in ("I;16", "LA") else Image.new(mode, (30, 20))

    out = reopen(decode(encode(image, fmt)))

    assert out.mode in ("RGB", "RGBA")
    assert out.size == (30, 20)


@pytest.mark.parametrize("mode", sorted(set(Image.MODES) - {"BGR;15", "BGR;16", "BGR;24"}))
def test_every_pillow_mode_has_a_working_mode(mode):
    # No accepted format decodes to I, F, HSV or LAB, but a Pillow upgrade could: none may fail.
    image = Image.new(mode, (12, 8))

    working = uploads._working_mode(image)

    assert working.mode in ("L", "LA", "RGB", "RGBA", "CMYK")
    assert working.size == (12, 8)
    # Transparency is kept, never invented.
    assert (working.mode in ("LA", "RGBA")) == (mode in ("LA", "La", "PA", "RGBA", "RGBa"))


@pytest.mark.parametrize("mode", ["I", "F"])
def test_wide_grey_images_are_stretched_to_eight_bits(mode):
    image = Image.linear_gradient("L").convert(mode).point(lambda value: value * 1000 + 5)

    working = uploads._working_mode(image)

    assert working.mode == "L"
    assert working.getextrema() == (0, 255)


# --- orientation and metadata -----------------------------------------------------------------------

# The transposition that, undone by the EXIF orientation, gives back the upright picture.
STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright() -> Image.Image:
    """60x30, red top-left quarter, blue bottom-right quarter: every orientation looks different."""
    image = Image.new("RGB", (60, 30), (255, 255, 255))
    image.paste((255, 0, 0), (0, 0, 30, 15))
    image.paste((0, 0, 255), (30, 15, 60, 30))
    return image


@pytest.mark.parametrize("orientation", sorted(STORED_AS))
def test_exif_orientation_is_applied(orientation):
    stored = upright() if STORED_AS[orientation] is None else upright().transpose(STORED_AS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation

    out = reopen(decode(encode(stored, "JPEG", quality=95, exif=exif.tobytes())))

    assert out.size == (60, 30)
    assert out.getpixel((8, 4)) == pytest.approx((255, 0, 0), abs=40)
    assert out.getpixel((52, 26)) == pytest.approx((0, 0, 255), abs=40)
    assert out.getpixel((52, 4)) == pytest.approx((255, 255, 255), abs=40)


def test_exif_orientation_is_applied_after_downscaling_too():
    stored = upright().resize((1200, 600)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6

    out = reopen(decode(encode(stored, "JPEG", exif=exif.tobytes()), UploadLimits(max_side=256)))

    assert out.width > out.height
    assert out.getpixel((10, 10)) == pytest.approx((255, 0, 0), abs=40)


def test_broken_exif_is_ignored_not_fatal_nor_noisy():
    data = encode(photo(), "JPEG", exif=b"Exif\x00\x00MM\x00*\xff\xff\xff\xff")

    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        out = reopen(decode(data))

    assert out.size == (120, 80)
    assert escaped == []


def camera_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 1
    exif[0x010F] = "ShopCam"  # Make
    exif[0x0131] = "SecretEditor 1.0"  # Software
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.0)
    return exif.tobytes()


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>'
    b'<rdf:Description tiff:Orientation="1" photoshop:City="Paris"/></rdf:RDF></x:xmpmeta>'
)


def assert_no_metadata(background: Background) -> None:
    data = background.picture.data
    for leak in (b"Exif", b"ShopCam", b"SecretEditor", b"xmpmeta", b"Paris", b"secret comment", b"acsp"):
        assert leak not in data
    image = reopen(background)
    assert not image.getexif()
    assert "icc_profile" not in image.info and "xmp" not in image.info and "exif" not in image.info
    assert not getattr(image, "text", {})


def test_jpeg_metadata_exif_gps_xmp_icc_and_comment_are_gone():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(photo(), "JPEG", exif=camera_exif(), xmp=XMP, icc_profile=srgb, comment=b"secret comment")
    assert b"ShopCam" in data and b"Paris" in data  # the upload really carries them

    assert_no_metadata(decode(data))


def test_png_metadata_text_exif_and_icc_are_gone_from_a_transparent_result():
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "secret comment")
    text.add_itxt("XML:com.adobe.xmp", XMP.decode())
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.new("RGBA", (20, 20), (0, 128, 0, 120))
    data = encode(image, "PNG", pnginfo=text, exif=camera_exif(), icc_profile=srgb)

    background = decode(data)

    assert background.picture.mime_type == "image/png"
    assert_no_metadata(background)


def test_webp_metadata_is_gone():
    data = encode(photo(), "WEBP", exif=camera_exif(), xmp=XMP)

    assert_no_metadata(decode(data))


# --- colour profiles --------------------------------------------------------------------------------


def s15fixed16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def rgb_icc_profile(description: str, red: tuple, green: tuple, blue: tuple) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile with the given D50 primaries and gamma 2.2."""

    def xyz(values: tuple) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15fixed16(value) for value in values)

    text = description.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * (4 + 4 + 3 + 67)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0233) + b"\0\0"
    tags = [
        (b"desc", desc), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(red)), (b"gXYZ", xyz(green)),
        (b"bXYZ", xyz(blue)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = body = b""
    for signature, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (
        struct.pack(">II", offset + len(body), 0) + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + b"\0" * 12
        + b"acsp" + b"\0" * 28 + s15fixed16(0.9642) + s15fixed16(1.0) + s15fixed16(0.8249) + b"\0" * 48
    )
    return header + struct.pack(">I", len(tags)) + table + body


# sRGB's own D50 primaries, red and green swapped: pure red in this space is sRGB green.
SWAPPED = rgb_icc_profile(
    "Swapped primaries", (0.3851, 0.7169, 0.0971), (0.4361, 0.2225, 0.0139), (0.1431, 0.0606, 0.7141)
)


def test_embedded_colour_profile_is_applied_then_dropped():
    data = encode(Image.new("RGB", (20, 20), (255, 0, 0)), "PNG", icc_profile=SWAPPED)

    out = reopen(decode(data))

    assert out.getpixel((5, 5)) == pytest.approx((0, 255, 0), abs=6)
    assert "icc_profile" not in out.info


def test_embedded_colour_profile_keeps_transparency():
    image = Image.new("RGBA", (20, 20), (255, 0, 0, 100))

    out = reopen(decode(encode(image, "PNG", icc_profile=SWAPPED)))

    assert out.getpixel((5, 5)) == pytest.approx((0, 255, 0, 100), abs=6)


@pytest.mark.parametrize("profile", [b"not a profile" * 20, SWAPPED[:200]], ids=["garbage", "cut"])
def test_unreadable_colour_profile_is_dropped_and_the_picture_kept(profile):
    out = reopen(decode(encode(Image.new("RGB", (20, 20), (255, 0, 0)), "JPEG", icc_profile=profile)))

    assert out.getpixel((5, 5)) == pytest.approx((255, 0, 0), abs=6)
