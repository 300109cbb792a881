"""Reference sheets: many product pictures combined into labelled grids, so no product is dropped."""

from __future__ import annotations

import dataclasses
import io
import logging
import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from imagegen.domain import Picture

logger = logging.getLogger(__name__)

TILE = 320  # pixels per tile side; large enough for the model to see shape, colour and logos
LABEL_HEIGHT = 40
GAP = 8
FONT_SIZE = 22
# More tiles than this on one sheet make each product too small to keep faithful.
PREFERRED_TILES_PER_SHEET = 9
MAX_DECODE_PIXELS = 40_000_000  # product pictures come from the shop, but stay bounded anyway


@dataclasses.dataclass(frozen=True)
class Tile:
    """One product picture and the label drawn under it."""

    number: int
    label: str
    picture: Picture


@dataclasses.dataclass(frozen=True)
class ReferenceSheet:
    """A grid image and the product numbers whose tiles it holds, in order."""

    picture: Picture
    numbers: tuple[int, ...]


def sheet_count(tiles: int, max_sheets: int) -> int:
    """How many sheets hold `tiles` tiles: about PREFERRED_TILES_PER_SHEET each, never more than max_sheets."""
    return max(1, min(max_sheets, math.ceil(tiles / PREFERRED_TILES_PER_SHEET)))


def build_reference_sheets(tiles: Sequence[Tile], max_sheets: int) -> list[ReferenceSheet]:
    """Lays the tiles out on at most max_sheets JPEG sheets, spread evenly; undecodable pictures are skipped."""
    decoded = [(tile, image) for tile in tiles if (image := _decode(tile)) is not None]
    if not decoded:
        return []
    count = sheet_count(len(decoded), max_sheets)
    per_sheet = math.ceil(len(decoded) / count)
    groups = [decoded[start : start + per_sheet] for start in range(0, len(decoded), per_sheet)]
    return [_render(group) for group in groups]


def decodable(picture: Picture) -> bool:
    """True when Pillow can read the picture (the model rejects a request holding a broken image)."""
    try:
        with Image.open(io.BytesIO(picture.data)) as image:
            image.verify()
        return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def to_png(picture: Picture) -> Picture | None:
    """Re-encodes a picture the model may not accept (e.g. GIF) as PNG; None when it cannot be read."""
    try:
        with Image.open(io.BytesIO(picture.data)) as image:
            image.load()
            out = io.BytesIO()
            image.convert("RGBA" if _has_alpha(image) else "RGB").save(out, "PNG")
            return Picture(out.getvalue(), "image/png")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _decode(tile: Tile) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(tile.picture.data)) as image:
            if image.width * image.height > MAX_DECODE_PIXELS:
                raise ValueError("picture too large")
            image = ImageOps.exif_transpose(image)
            rgba = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        logger.warning(
            "product picture skipped from reference sheet", extra={"product_number": tile.number, "reason": str(exc)}
        )
        return None
    # Flatten transparency onto white, the way product shots usually look.
    background = Image.new("RGB", rgba.size, "white")
    background.paste(rgba, mask=rgba.getchannel("A"))
    # Scaled up as well as down, so small product shots still fill their tile.
    return ImageOps.contain(background, (TILE, TILE), Image.Resampling.LANCZOS)


def _render(group: Sequence[tuple[Tile, Image.Image]]) -> ReferenceSheet:
    columns = math.ceil(math.sqrt(len(group)))
    rows = math.ceil(len(group) / columns)
    cell_width, cell_height = TILE + GAP, TILE + LABEL_HEIGHT + GAP
    sheet = Image.new("RGB", (columns * cell_width + GAP, rows * cell_height + GAP), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=FONT_SIZE)
    for index, (tile, image) in enumerate(group):
        left = GAP + (index % columns) * cell_width
        top = GAP + (index // columns) * cell_height
        sheet.paste(image, (left + (TILE - image.width) // 2, top + (TILE - image.height) // 2))
        draw.rectangle((left, top, left + TILE - 1, top + TILE - 1), outline=(200, 200, 200))
        label = _fit(draw, tile.label, font, TILE)
        draw.text((left + 4, top + TILE + 6), label, fill="black", font=font)
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=88)
    return ReferenceSheet(Picture(out.getvalue(), "image/jpeg"), tuple(tile.number for tile, _ in group))


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> str:
    """Shortens text with an ellipsis until it fits the tile width."""
    if draw.textlength(text, font=font) <= width - 8:
        return text
    while text and draw.textlength(text + "…", font=font) > width - 8:
        text = text[:-1]
    return text.rstrip() + "…"


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
