"""Display variants: smaller WebP copies of a stored picture, for pages that show it smaller than it is.

The page shows a cart picture about 400 px wide but the stored picture is IMAGE_SIZE (1024) square; a
phone that loads the full picture waits for pixels it never shows. A variant is derived from the stored
object by one rule, so any store (local directory or bucket) holds it beside the full picture and its
URL comes from the same url_for: `generated/<token>.jpg` has the 512 px variant `generated/<token>-w512.webp`.
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

WIDTHS = (512,)  # the page's picture is about 400 px wide; 512 covers it at 1.25x device pixels
MIME_TYPE = "image/webp"
_QUALITY = 82  # no visible loss at display size, about a tenth of the full JPEG's bytes
_MAX_SOURCE_PIXELS = 16_000_000  # the service's pictures are at most 4096 square


def variant_name(name: str, width: int) -> str:
    """Returns the object name of name's variant width pixels wide: `<stem>-w<width>.webp` beside it."""
    stem = name.rsplit(".", 1)[0]
    return f"{stem}-w{width}.webp"


def make_variants(data: bytes, widths: tuple[int, ...] = WIDTHS) -> list[tuple[int, bytes]]:
    """Returns (width, WebP bytes) for each width narrower than the picture; [] for an unreadable picture."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > _MAX_SOURCE_PIXELS:
            return []
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("display variants not made: the picture could not be read (%s)", type(exc).__name__)
        return []
    image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    made = []
    for width in sorted(set(widths)):
        if width >= image.width:
            continue  # a variant as big as the picture saves nothing
        height = max(1, round(image.height * width / image.width))
        small = image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=2.0)
        out = io.BytesIO()
        small.save(out, format="WEBP", quality=_QUALITY, method=4)
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


def stored_variants(store: ImageStore, name: str, widths: tuple[int, ...] = WIDTHS) -> list[ImageVariant]:
    """The variants of name already in the store (a picture drawn before), narrowest first, URLs minted afresh."""
    found = []
    for width in sorted(set(widths)):
        target = variant_name(name, width)
        try:
            if store.exists(target):
                found.append(ImageVariant(width, store.url_for(target)))
        except StoreError as exc:
            log.warning("display variant %s not looked up: %s", target, exc)
    return found
