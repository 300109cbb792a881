"""Display variants: smaller WebP copies of a stored picture, for pages that show it smaller than it is.

The page shows a cart picture about 400 px wide but the stored picture is IMAGE_SIZE (1024) square; a
phone that loads the full picture waits for pixels it never shows. A variant is derived from the stored
object by one rule, so any store (local directory or bucket) holds it beside the full picture and its
URL comes from the same url_for: `generated/<token>.jpg` has its W px wide variant `generated/<token>-w<W>.webp`
for each of WIDTHS narrower than the picture and, once it has one, the whole picture in WebP at its own
width (a phone at pixel ratio 3 needs about 1000 px; WebP carries them in far fewer bytes than the JPEG).
The full picture keeps its name and stays image_url (the download); variants are extras, made best
effort: one that cannot be made or stored is left out, never failing the generation.
"""

from __future__ import annotations

import io
import logging

from PIL import Image

from imagegen.errors import StoreError
from imagegen.statuses import ImageVariant
from imagegen.stores import ImageStore

log = logging.getLogger(__name__)

# The page's picture is 326-560 CSS px wide: 512 covers a phone at pixel ratio 1, 768 at ratio 2.
WIDTHS = (512, 768)
MIME_TYPE = "image/webp"
_QUALITY = 82  # no visible loss at display size, about a tenth of the full JPEG's bytes
_METHOD = 2  # WebP's encoder effort: a 1024 px copy in 94 ms, 3% bigger than at the default 4 (240 ms)
_MAX_SOURCE_PIXELS = 16_000_000  # the service's pictures are at most 4096 square


def variant_name(name: str, width: int) -> str:
    """Returns the object name of name's variant width pixels wide: `<stem>-w<width>.webp` beside it."""
    stem = name.rsplit(".", 1)[0]
    return f"{stem}-w{width}.webp"


def variant_widths(width: int, webp: bool, widths: tuple[int, ...] = WIDTHS) -> list[int]:
    """Returns the variant widths of a picture width px wide: those narrower, then its own when it is no WebP."""
    narrower = sorted(w for w in set(widths) if w < width)
    return narrower + [width] if narrower and not webp else narrower


def make_variants(data: bytes, widths: tuple[int, ...] = WIDTHS) -> list[tuple[int, bytes]]:
    """Returns (width, WebP bytes) for each of the picture's variant widths; [] for an unreadable picture."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > _MAX_SOURCE_PIXELS:
            return []
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("display variants not made: the picture could not be read (%s)", type(exc).__name__)
        return []
    webp = image.format == "WEBP"
    image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    made = []
    for width in variant_widths(image.width, webp, widths):
        height = max(1, round(image.height * width / image.width))
        small = image
        if width != image.width:
            small = image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=2.0)
        out = io.BytesIO()
        small.save(out, format="WEBP", quality=_QUALITY, method=_METHOD)
        made.append((width, out.getvalue()))
    return made


def store_variants(store: ImageStore, name: str, data: bytes, widths: tuple[int, ...] = WIDTHS) -> list[ImageVariant]:
    """Makes name's variants from its stored bytes, stores each beside it; returns those stored, narrowest first."""
    stored = []
    for width, webp in make_variants(data, widths):
        target = variant_name(name, width)
        try:
            store.put(target, webp, MIME_TYPE)
        except StoreError as exc:
            log.warning("display variant %s not stored: %s", target, exc)
            continue
        stored.append(ImageVariant(width, store.url_for(target)))
    return stored


def stored_variants(store: ImageStore, name: str, width: int, widths: tuple[int, ...] = WIDTHS) -> list[ImageVariant]:
    """The variants of name (width px wide) already in the store, narrowest first, URLs minted afresh."""
    found = []
    for each in variant_widths(width, name.endswith(".webp"), widths):
        target = variant_name(name, each)
        try:
            if store.exists(target):
                found.append(ImageVariant(each, store.url_for(target)))
        except StoreError as exc:
            log.warning("display variant %s not looked up: %s", target, exc)
    return found
