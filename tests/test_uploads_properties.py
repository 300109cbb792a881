"""Properties of the upload decoder: whatever arrives, a usable Background or InvalidArgument, in bounded memory.

Memory bound. tracemalloc sees what Python allocates: the copies of the base64 text (ASCII, translated,
padded), the decoded bytes, Pillow's reads of the file, metadata parsing and the encoded output. It
cannot see Pillow's pixel buffers, which are allocated in C: benchmarks/bench_uploads.py measures
those with the peak RSS of a fresh process. What tracemalloc sees must be linear in what comes in
and what goes out, never in the pixel count a header claims. At most three copies of the text are
alive at once (about 3 x len(image_data)), the output is held twice while it is encoded, and the
first call builds some tables (the sRGB profile, EXIF tags); measured: at most 2 x len(image_data)
+ 150 KiB on these examples, 3.3 MB for a 1.7 MB upload at the default limits. The bound allows
4 x len(image_data) + 2 x len(output) + 512 KiB.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import re
import tracemalloc
import warnings

from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from imagegen.errors import InvalidArgument
from imagegen.uploads import Background, UploadLimits, decode_background
from tests.test_uploads import encode, jpeg_claiming, png_from_rows, webp_claiming

# Small limits keep every example fast while exercising each limit.
LIMITS = UploadLimits(max_bytes=128 * 1024, max_pixels=200_000, max_side=32)
PROPERTIES = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Every mode each accepted format can carry, as Pillow writes it.
MODES = {
    "PNG": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"],
    "JPEG": ["L", "RGB", "CMYK"],
    "WEBP": ["RGB", "RGBA"],
}


def memory_bound(image_data: str, output: bytes) -> int:
    return 4 * len(image_data) + 2 * len(output) + 512 * 1024


def record(outcome: str) -> None:
    """Counts outcomes for --hypothesis-show-statistics: how many examples got how far."""
    if currently_in_test_context():
        event(re.sub(r"\b[0-9][0-9,x]*\b", "N", outcome)[:70])


def check(image_data: str, limits: UploadLimits = LIMITS) -> Background | None:
    """Decodes; asserts the outcome is a usable Background within limits or InvalidArgument, in bounded memory."""
    tracemalloc.start()
    try:
        with warnings.catch_warnings(record=True) as escaped:
            warnings.simplefilter("always")
            try:
                background = decode_background(image_data, limits)
            except InvalidArgument as error:
                assert error.field == "image_data"
                assert error.problem and len(error.problem) < 200
                background = None
                record(f"refused: {error.problem}")
            else:
                record("decoded")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [str(warning.message) for warning in escaped] == []
    assert peak <= memory_bound(image_data, background.picture.data if background else b""), peak
    if background is not None:
        image = Image.open(io.BytesIO(background.picture.data))
        image.load()
        assert image.format == {"image/jpeg": "JPEG", "image/png": "PNG"}[background.picture.mime_type]
        assert image.mode == ("RGBA" if image.format == "PNG" else "RGB")
        assert image.size == (background.width, background.height)
        assert 1 <= max(image.size) <= limits.max_side
        assert image.width * image.height <= limits.max_pixels
    return background


# Damage starts after the first 12 bytes (the longest signature, WebP's): damaged signatures are
# refused before Pillow sees them, which the arbitrary-bytes properties already cover.
SIGNATURE = 12


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclasses.dataclass(frozen=True)
class Upload:
    """How to make one valid upload; drawn by Hypothesis, built in the test body (cheap draws, clean shrinking)."""

    fmt: str
    mode: str
    size: tuple[int, int]
    colour: tuple[int, int, int, int]
    params: tuple[tuple[str, object], ...]
    orientation: int | None

    def data(self) -> bytes:
        image = Image.linear_gradient("L").resize(self.size).convert("RGBA")
        image.paste(self.colour, (0, 0, max(1, self.size[0] // 2), max(1, self.size[1] // 3)))
        if self.mode == "I;16":
            image = image.convert("I").point(lambda value: value * 257).convert("I;16")
        else:
            image = image.convert(self.mode)
        params = dict(self.params)
        if self.orientation is not None:
            exif = Image.Exif()
            exif[0x0112] = self.orientation
            params["exif"] = exif.tobytes()
        return encode(image, self.fmt, **params)


@st.composite
def uploads(draw: st.DrawFn) -> Upload:
    """A valid PNG, JPEG or WebP of any mode, size and common encoder option, sometimes with EXIF."""
    fmt = draw(st.sampled_from(sorted(MODES)))
    mode = draw(st.sampled_from(MODES[fmt]))
    size = (draw(st.integers(1, 200)), draw(st.integers(1, 200)))
    colour = draw(st.tuples(*[st.integers(0, 255)] * 4))
    params: dict[str, object] = {}
    if fmt == "JPEG":
        params = {"quality": draw(st.integers(1, 100)), "progressive": draw(st.booleans())}
    elif fmt == "WEBP":
        params = {"lossless": draw(st.booleans()), "quality": draw(st.integers(0, 100))}
    elif mode == "P" and draw(st.booleans()):
        params = {"transparency": 0}
    orientation = draw(st.none() | st.integers(0, 9))
    return Upload(fmt, mode, size, colour, tuple(params.items()), orientation)


@PROPERTIES
@given(uploads())
def test_every_valid_upload_decodes(upload):
    assert check(b64(upload.data())) is not None


@PROPERTIES
@given(uploads(), st.floats(0, 1, exclude_max=True))
def test_truncated_uploads_decode_or_are_refused(upload, fraction):
    data = upload.data()
    check(b64(data[: SIGNATURE + int((len(data) - SIGNATURE) * fraction)]))


@PROPERTIES
@given(uploads(), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8))
def test_uploads_with_flipped_bytes_decode_or_are_refused(upload, flips):
    damaged = bytearray(upload.data())
    for where, value in flips:
        damaged[SIGNATURE + int(where * (len(damaged) - SIGNATURE))] = value
    check(b64(bytes(damaged)))


@PROPERTIES
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused_or_decoded(data):
    check(b64(data))


MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x00\x10\x00\x00WEBP", b"RIFF\x00\x10\x00\x00WEBPVP8X"]


@PROPERTIES
@given(st.sampled_from(MAGICS), st.binary(max_size=2048))
def test_arbitrary_bytes_behind_an_accepted_signature_are_refused_or_decoded(magic, data):
    check(b64(magic + data))


@PROPERTIES
@given(
    st.one_of(
        st.text(max_size=300),
        st.builds(lambda mime, payload: f"data:{mime};base64,{payload}", st.text(max_size=30), st.text(max_size=200)),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_= \n\r\t", max_size=300),
    )
)
def test_arbitrary_text_is_refused_or_decoded(text):
    check(text)


@PROPERTIES
@given(
    st.sampled_from(["png", "jpeg", "webp"]),
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**31 - 1),
    st.sampled_from([(1, 0), (8, 0), (16, 0), (8, 2), (16, 2), (8, 3), (8, 4), (8, 6), (16, 6), (7, 5)]),
)
def test_any_declared_dimensions_are_refused_or_decoded_within_limits(kind, width, height, depth_and_colour):
    if kind == "png":
        data = png_from_rows(width, height, *depth_and_colour, b"\x00" * 64)
    elif kind == "jpeg":
        width, height = width % 65536, height % 65536
        data = jpeg_claiming(width, height)
    else:
        width, height = width % 2**24 + 1, height % 2**24 + 1
        data = webp_claiming(width, height)
    background = check(b64(data))
    if width * height > LIMITS.max_pixels:
        assert background is None


@settings(PROPERTIES, max_examples=20)
@given(uploads())
def test_same_upload_always_gets_the_same_name(upload):
    data = upload.data()
    first = check(b64(data))
    second = check("data:image/webp;base64," + base64.urlsafe_b64encode(data).decode("ascii").rstrip("="))
    assert first is not None and second is not None
    assert first.name == second.name
    assert first.picture == second.picture


def test_memory_bound_holds_for_a_large_upload_at_default_limits():
    # One realistic case at the service's real limits, so the bound is not only shown for toy sizes.
    image = Image.merge("RGB", [Image.effect_noise((1500, 1000), 50) for _ in range(3)])
    assert check(b64(encode(image, "JPEG", quality=92)), UploadLimits()) is not None
