"""Uploaded backgrounds: decode untrusted base64 images safely and normalise them for the generators."""

from __future__ import annotations

import binascii
import dataclasses
import functools
import hashlib
import io
import threading
import warnings
from collections.abc import Callable

from PIL import ExifTags, Image, ImageCms

from imagegen.domain import Picture, sniff_image_type
from imagegen.errors import InvalidArgument
from imagegen.stores import BACKGROUNDS_PREFIX

FIELD = "image_data"
JPEG_QUALITY = 88
PNG_COMPRESS_LEVEL = 6
ACCEPTED = "PNG, JPEG or WebP"
UNDECODABLE = f"could not be decoded as a {ACCEPTED} image; it may be truncated or corrupt"

# A progressive JPEG is decoded once per scan; real encoders write about ten, so thousands of empty
# scans only serve to make a small file cost minutes of CPU.
MAX_JPEG_SCANS = 100
# The largest real profiles (CMYK press ones) are about 2 MB; a bigger one is not worth handing to LittleCMS.
MAX_ICC_BYTES = 4 * 1024 * 1024
# A JPEG may be decoded at 1/2, 1/4 or 1/8 scale (in the DCT, nearly free) when that lands no
# smaller than this fraction of max_side; otherwise it is decoded larger and resampled down.
DRAFT_MIN_FRACTION = 0.75
# Big images are box-averaged to within this factor of max_side before Lanczos: a third of the time of
# Lanczos alone on 40 MP, and within a few levels of it (Pillow's reducing_gap; see the benchmark).
REDUCING_GAP = 1.5
REDUCE_BAND_PIXELS = 1_000_000  # about 4 MB of pixels per band
_ROW_POINTER = 8  # Pillow keeps a pointer to every row of every image
_MODULES = 8 * 1024 * 1024  # codec and colour-management state loaded on first use

_PILLOW_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
# Start of scan. Entropy-coded data stuffs 0xFF as FF 00, so outside metadata segments (which could
# hold it by chance, hence the generous MAX_JPEG_SCANS) these two bytes only ever start a scan.
_JPEG_SOS = b"\xff\xda"
_OTHER_FORMATS = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"\x00\x00\x01\x00", "an ICO image"),
    (b"PK\x03\x04", "a ZIP archive"),
)
_WHITESPACE = b" \t\r\n\f\v"
_URL_SAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_LENIENT_ONLY = "-_ \t\r\n\f\v"  # URL-safe letters and whitespace: only the lenient path takes them

# The table ImageOps.exif_transpose uses; applied here after downscaling so only the small image turns.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Not an admission bound (that is the gate's UPLOAD_CONCURRENCY, capacity.py): one upload decodes at a
# time, so decoding memory stays one image's (UPLOAD_DECODE_MAX_BYTES) and warnings.catch_warnings
# (process-wide state in Python 3.11) never races itself.
_DECODE_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class UploadLimits:
    """How much an upload may weigh and measure."""

    max_bytes: int = 10 * 1024 * 1024  # decoded bytes (MAX_UPLOAD_BYTES)
    max_pixels: int = 40_000_000  # MAX_IMAGE_PIXELS
    max_side: int = 2048  # longest side after normalising (BACKGROUND_MAX_SIDE)
    max_decode_bytes: int = 256 * 1024 * 1024  # memory decoding may need (UPLOAD_DECODE_MAX_BYTES)


@dataclasses.dataclass(frozen=True)
class Background:
    """A normalised background: re-encoded without metadata, named after its own bytes."""

    picture: Picture  # JPEG when opaque, PNG when it has real transparency
    name: str  # "backgrounds/<sha256 of picture.data>.<jpg|png>"
    width: int
    height: int


def decode_background(image_data: str, limits: UploadLimits) -> Background:
    """Decodes base64 or a data: URL into a normalised Background; raises InvalidArgument for any bad input."""
    data = _decode_base64(image_data, limits.max_bytes)
    kind = _sniff(data)
    try:
        with _DECODE_LOCK:
            decoded = _decode(data, kind, limits)
        image = _finish(decoded)
        picture = _encode(image)
    except InvalidArgument:
        raise
    except Exception:  # Pillow and its codecs raise many types on hostile input; all mean the same here
        # "from None": Pillow's messages may quote bytes of the upload, which must not reach logs.
        raise _invalid(UNDECODABLE) from None
    digest = hashlib.sha256(picture.data).hexdigest()
    extension = "png" if picture.mime_type == "image/png" else "jpg"
    width, height = image.size
    return Background(picture=picture, name=f"{BACKGROUNDS_PREFIX}{digest}.{extension}", width=width, height=height)


def _invalid(problem: str) -> InvalidArgument:
    return InvalidArgument(FIELD, problem)


def _decode_base64(image_data: str, max_bytes: int) -> bytes:
    """The upload's bytes, from plain base64 (either alphabet, any padding and line breaks) or a data: URL."""
    if not isinstance(image_data, str) or not image_data.strip():
        raise _invalid(f"is empty; send a {ACCEPTED} image as base64 or a data: URL")
    payload = image_data.strip()
    if payload[:5].lower() == "data:":
        header, comma, payload = payload.partition(",")
        if not comma:
            raise _invalid("is a data: URL without a comma before its data")
        if "base64" not in (part.strip().lower() for part in header[5:].split(";")[1:]):
            raise _invalid("is a data: URL that is not base64-encoded; expected data:image/...;base64,...")
    # Refuse a huge string before copying it; the slack admits line breaks and other whitespace.
    if len(payload) > 2 * _base64_length(max_bytes) + 1024:
        raise _invalid(f"is larger than the {_human_size(max_bytes)} upload limit")
    # What browsers send (padded standard base64, no line breaks) is decoded without the copies the
    # lenient path below makes: they would be 50 MB for an upload at the limit.
    if len(payload) % 4 == 0 and payload.isascii() and not any(c in payload for c in _LENIENT_ONLY):
        if len(payload) // 4 * 3 - payload[-2:].count("=") > max_bytes:
            raise _invalid(f"is larger than the {_human_size(max_bytes)} upload limit")
        try:
            data = binascii.a2b_base64(payload, strict_mode=True)
        except binascii.Error:
            pass  # the lenient path below says what is wrong
        else:
            if data:
                return data
    try:
        text = payload.encode("ascii")
    except UnicodeEncodeError:
        raise _invalid("is not valid base64: it contains characters outside the base64 alphabet") from None
    text = text.translate(_URL_SAFE_TO_STANDARD, _WHITESPACE).rstrip(b"=")
    if len(text) * 3 // 4 > max_bytes:
        raise _invalid(f"is larger than the {_human_size(max_bytes)} upload limit")
    if not text:
        raise _invalid(f"is empty; send a {ACCEPTED} image as base64 or a data: URL")
    if len(text) % 4 == 1:
        raise _invalid("is not valid base64: its length is impossible for base64 (is it cut short?)")
    try:
        return binascii.a2b_base64(text + b"=" * (-len(text) % 4), strict_mode=True)
    except binascii.Error:
        raise _invalid("is not valid base64: it contains characters outside the base64 alphabet") from None


def _base64_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


def _human_size(size: int, exact: bool = True) -> str:
    if size >= 1024 * 1024 and (size % (1024 * 1024) == 0 or not exact):
        return f"{round(size / (1024 * 1024)):,} MB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size} bytes"


def _sniff(data: bytes) -> str:
    """The Pillow format of the upload, judged from its first bytes alone; declared types are ignored."""
    mime = sniff_image_type(data)
    if mime is not None:
        return _PILLOW_FORMATS[mime]
    for magic, description in _OTHER_FORMATS:
        if data.startswith(magic):
            raise _invalid(f"is {description}; only {ACCEPTED} images are accepted")
    head = data[:256].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<"):
        kind = "an SVG image" if b"<svg" in data[:4096].lower() else "an XML or HTML document"
        raise _invalid(f"is {kind}; only {ACCEPTED} images are accepted")
    if data[4:8] == b"ftyp":
        raise _invalid(f"is a HEIC, AVIF or other ISO media file; only {ACCEPTED} images are accepted")
    raise _invalid(f"is not a {ACCEPTED} image")


@dataclasses.dataclass
class _Decoded:
    """The first frame, downscaled, with the metadata still to be applied to it."""

    image: Image.Image
    orientation: int
    icc_profile: bytes | None


def _decode(data: bytes, kind: str, limits: UploadLimits) -> _Decoded:
    """Opens the upload, refuses it by its header's size, then decodes its first frame at reduced size."""
    if kind == "JPEG" and data.count(_JPEG_SOS) > MAX_JPEG_SCANS:
        raise _invalid(f"is a JPEG with more than {MAX_JPEG_SCANS} scans, which no camera or editor writes")
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; for an upload a warning is a refusal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # Pillow's other warnings describe the upload's broken metadata, which is dropped anyway.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        try:
            opened = Image.open(io.BytesIO(data), formats=[kind])  # reads the header, no pixels yet
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            # Pillow's own limit: it can only be the lower one when MAX_IMAGE_PIXELS is set above it.
            ceiling = min(limits.max_pixels, Image.MAX_IMAGE_PIXELS or limits.max_pixels)
            raise _invalid(f"is more than {ceiling:,} pixels") from None
        width, height = opened.size
        if width < 1 or height < 1:
            raise _invalid("has no pixels")
        if width * height > limits.max_pixels:
            raise _invalid(f"is {width}x{height} pixels, more than the limit of {limits.max_pixels:,}")
        cost = decoding_cost(opened, limits.max_side)
        if cost > limits.max_decode_bytes:
            raise _invalid(
                f"is a {width}x{height} {_describe_mode(opened)} picture; decoding it would need about "
                f"{_human_size(cost, exact=False)} of memory, more than the limit of "
                f"{_human_size(limits.max_decode_bytes, exact=False)}"
            )
        if kind == "JPEG":
            scale = _draft_scale(max(width, height), limits.max_side)
            if scale > 1:
                opened.draft(None, (max(1, width // scale), max(1, height // scale)))
        opened.load()  # the first frame of an animation
        orientation = _orientation(opened)
        icc_profile = opened.info.get("icc_profile")
        image = _downscale(_replacing(opened, _working_mode(opened)), limits.max_side)
    return _Decoded(image, orientation, icc_profile if isinstance(icc_profile, bytes) else None)


def decoding_cost(image: Image.Image, max_side: int) -> int:
    """Bytes of memory decoding and normalising this opened (not yet loaded) image will need at its peak.

    It follows _decode step by step: the decoded image (Pillow keeps one row pointer per row besides
    the pixels, which is what makes a 1 x 40,000,000 picture cost 320 MB more than its pixels), the
    codec's own buffers, the conversion to a working mode, the banded box reduction and the final
    resampling; the largest sum of images alive at one time is the cost.
    """
    width, height = image.size
    mode = image.mode
    scale = _draft_scale(max(width, height), max_side) if image.format == "JPEG" else 1
    width, height = -(-width // scale), -(-height // scale)
    codec = _codec_bytes(image)
    decoded = _image_bytes(mode, width, height)
    working_mode = _working_mode_name(mode, image.info.get("transparency") is not None)
    if working_mode == mode:
        steps = [codec + decoded]
        working = decoded
    else:
        working = _image_bytes(working_mode, width, height)
        banded = mode.startswith("I;16") or mode in ("I", "F")
        band = _image_bytes("F", width, min(height, max(1, REDUCE_BAND_PIXELS // width))) * 3 if banded else 0
        # The decoded image stays open until its converted copy is complete.
        steps = [codec + decoded, codec + decoded + working + band]
    longest = max(width, height)
    if longest > max_side:
        new_size = (max(1, round(width * max_side / longest)), max(1, round(height * max_side / longest)))
        factor = max(1, int(longest / max_side / REDUCING_GAP))
        if factor > 1:
            reduced_size = (-(-width // factor), -(-height // factor))
            rows = min(height, factor * max(1, REDUCE_BAND_PIXELS // (width * factor)))
            # The band, and for alpha modes its premultiplied copy.
            band = (2 if working_mode in ("LA", "RGBA") else 1) * _image_bytes(working_mode, width, rows)
            steps.append(codec + working + _image_bytes(working_mode, *reduced_size) + band)
        else:
            reduced_size = (width, height)
        # Lanczos resamples in two passes through an image of the new width and the old height.
        reduced = _image_bytes(working_mode, *reduced_size)
        between = _image_bytes(working_mode, new_size[0], reduced_size[1])
        steps.append(codec + reduced + between + _image_bytes(working_mode, *new_size))
        width, height = new_size
    # Colour conversion, alpha check, rotation and encoding make a few copies of the final image.
    final = 3 * _image_bytes("RGBA", width, height)
    return max(steps) + final + _MODULES


def _image_bytes(mode: str, width: int, height: int) -> int:
    """What Pillow allocates for an image: its pixels and one pointer per row."""
    if mode in ("1", "L", "P"):
        pixel = 1
    elif mode.startswith("I;16"):
        pixel = 2
    else:
        pixel = 4  # RGB is stored as 4 bytes a pixel, like RGBA, LA, CMYK, I and F
    return height * (width * pixel + _ROW_POINTER)


def _codec_bytes(image: Image.Image) -> int:
    """The codec's own buffers while it decodes."""
    width, height = image.size
    if image.format == "WEBP":
        # libwebp decodes into a canvas of its own, which Pillow's decoder keeps with the previous frame.
        return 2 * 4 * width * height
    if image.format == "JPEG":
        # A progressive JPEG keeps every DCT coefficient (2 bytes, each component at full size).
        components = len(image.getbands())
        if image.info.get("progressive") or image.info.get("progression"):
            return 2 * components * width * height
        return 16 * components * width  # a band of rows
    # PNG: the current and the previous row, as stored in the file.
    rawmode = image.tile[0].args if image.tile and isinstance(image.tile[0].args, str) else "RGBA;16B"
    bands = len(rawmode.split(";")[0])
    return 2 * (bands * (2 if ";16" in rawmode else 1) * width + 1)


def _working_mode_name(mode: str, has_key: bool) -> str:
    """The mode _working_mode turns an image of this mode into."""
    if mode in ("L", "RGB"):
        return (mode[0] + "A" if mode == "L" else "RGBA") if has_key else mode
    if mode in ("LA", "RGBA", "CMYK"):
        return mode
    if mode in ("1", "I", "F") or mode.startswith("I;16"):
        return "L"
    if mode in ("P", "PA"):
        return "RGBA" if has_key or mode == "PA" else "RGB"
    return {"La": "LA", "RGBa": "RGBA"}.get(mode, "RGB")


def _describe_mode(image: Image.Image) -> str:
    """The picture's kind in a person's words: '16-bit grayscale', 'RGB', ..."""
    mode = image.mode
    if mode.startswith("I;16"):
        return "16-bit grayscale"
    return {"1": "1-bit", "L": "grayscale", "LA": "grayscale with alpha", "P": "palette", "RGBA": "RGB with alpha",
            "I": "32-bit grayscale", "F": "floating-point grayscale"}.get(mode, mode)


def _draft_scale(longest: int, max_side: int) -> int:
    """The largest JPEG DCT scale that keeps the longest side at least DRAFT_MIN_FRACTION of max_side."""
    for scale in (8, 4, 2):
        if longest / scale >= max_side * DRAFT_MIN_FRACTION:
            return scale
    return 1


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation; a broken EXIF block is metadata we drop anyway, so it counts as upright."""
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # EXIF parsing of hostile input fails in many ways; the picture itself is fine
        return 1


def _replacing(old: Image.Image, new: Image.Image) -> Image.Image:
    """new, after freeing old's pixels if it is another image, before the next step allocates more."""
    if new is not old:
        old.close()
    return new


def _working_mode(image: Image.Image) -> Image.Image:
    """The image in a mode that resamples well: L, LA, RGB, RGBA or CMYK."""
    mode = image.mode
    has_key = image.info.get("transparency") is not None
    if mode in ("L", "RGB"):
        return image.convert(mode[0] + "A" if mode == "L" else "RGBA") if has_key else image
    if mode in ("LA", "RGBA", "CMYK"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        return image.convert("RGBA" if has_key or mode == "PA" else "RGB")
    if mode == "La":
        return image.convert("LA")
    if mode in ("RGBa", "RGBX"):
        return image.convert("RGBA" if mode == "RGBa" else "RGB")
    if mode.startswith("I;16"):
        # Pillow's I;16 to L conversion clips at 255 instead of scaling, which turns photos white.
        return _banded_to_l(image, lambda band: band.convert("I").point(lambda value: value / 256))
    if mode in ("I", "F"):
        return _stretch_to_l(image)
    return image.convert("RGB")  # YCbCr, LAB, HSV


def _stretch_to_l(image: Image.Image) -> Image.Image:
    """Maps a 32-bit integer or float image's own range onto 0..255."""
    low, high = image.getextrema()
    if not (high > low):  # also false for NaN
        return Image.new("L", image.size, 0)
    scale = 255.0 / (high - low)
    return _banded_to_l(image, lambda band: band.convert("F").point(lambda value: (value - low) * scale))


def _banded_to_l(image: Image.Image, to_range: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """An L image made band by band: the 32-bit copies to_range makes are never larger than a band."""
    width, height = image.size
    result = Image.new("L", image.size)
    rows = max(1, REDUCE_BAND_PIXELS // width)
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows)))
        result.paste(to_range(band).convert("L"), (0, top))
    return result


def _downscale(image: Image.Image, max_side: int) -> Image.Image:
    """The image scaled down, aspect kept, so its longest side is at most max_side; frees the input's pixels."""
    width, height = image.size
    longest = max(width, height)
    if longest <= max_side:
        return image
    size = (max(1, round(width * max_side / longest)), max(1, round(height * max_side / longest)))
    factor = max(1, int(longest / max_side / REDUCING_GAP))
    if factor > 1:
        image = _replacing(image, _box_reduce(image, factor))
    # The box keeps the geometry exact where the reduction rounded a partial block up to a pixel.
    box = (0.0, 0.0, width / factor, height / factor)
    return _replacing(image, image.resize(size, Image.Resampling.LANCZOS, box=box))


def _box_reduce(image: Image.Image, factor: int) -> Image.Image:
    """Averages factor x factor blocks, one band of rows at a time.

    Pillow resamples RGBA premultiplied, through a full-size copy; by bands that copy is never larger
    than a band, so a transparent upload at the pixel limit costs one image, not two.
    """
    width, height = image.size
    reduced = Image.new(image.mode, (-(-width // factor), -(-height // factor)))
    rows = factor * max(1, REDUCE_BAND_PIXELS // (width * factor))
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows)))
        reduced.paste(band.reduce(factor), (0, top // factor))
    return reduced


def _finish(decoded: _Decoded) -> Image.Image:
    """The downscaled image in sRGB, upright, RGB or RGBA, without any metadata."""
    image = _to_srgb(decoded.image, decoded.icc_profile)
    if image.mode == "L":
        image = image.convert("RGB")
    elif image.mode == "LA":
        image = image.convert("RGBA")
    if image.mode == "RGBA" and image.getchannel("A").getextrema()[0] == 255:
        image = image.convert("RGB")  # an alpha channel nobody uses: JPEG is smaller
    if decoded.orientation in _ORIENTATION:
        image = image.transpose(_ORIENTATION[decoded.orientation])
    image.info = {}  # PNG saving copies an ICC profile from info; nothing of the upload's metadata survives
    return image


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Converts an RGB(A) or CMYK image to sRGB with its embedded profile when it has a usable one."""
    if icc_profile and len(icc_profile) <= MAX_ICC_BYTES and image.mode in ("RGB", "RGBA", "CMYK"):
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            description = profile.profile.profile_description or ""
            # Most embedded profiles are sRGB already; trusting the name costs at worst a slight tint.
            if image.mode == "CMYK" or "srgb" not in description.lower():
                output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
                converted = ImageCms.profileToProfile(image, profile, _srgb_profile(), outputMode=output_mode)
                if converted is not None:
                    return converted
        except Exception:  # an unreadable or mismatched profile is metadata we drop: keep the pixels as they are
            pass
    return image.convert("RGB") if image.mode == "CMYK" else image


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _encode(image: Image.Image) -> Picture:
    """JPEG for an opaque image, PNG when it has transparency."""
    out = io.BytesIO()
    if image.mode == "RGBA":
        image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return Picture(data=out.getvalue(), mime_type="image/png")
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return Picture(data=out.getvalue(), mime_type="image/jpeg")
