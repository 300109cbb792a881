"""The offline generator: a styled collage of the cart's product pictures, drawn with Pillow alone."""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import random
import zlib
from collections.abc import Callable
from functools import lru_cache

from PIL import Image, ImageChops, ImageColor, ImageDraw, ImageFilter, ImageMath, ImageOps, ImageStat

from imagegen.domain import CartLine, GenerationInput, Picture, Progress
from imagegen.errors import EmptyCart, GenerationFailed
from imagegen.fonts import (
    TextBlock,
    bold_stroke,
    draw_block,
    draw_line,
    drawable,
    fit,
    font,
    line_width,
    size_of,
    top_for_middle,
)
from imagegen.styles import Look, Palette

log = logging.getLogger(__name__)

RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]

# Product photos and normalised backgrounds are far smaller; a bigger picture is refused rather than
# decoded, which would take hundreds of megabytes.
_MAX_SOURCE_PIXELS = 16_000_000
_SS = 3  # supersampling factor for anti-aliased shapes
_BICUBIC = Image.Resampling.BICUBIC
_BILINEAR = Image.Resampling.BILINEAR
_LANCZOS = Image.Resampling.LANCZOS


class CollageGenerator:
    """Composes the cart's product pictures over a styled backdrop or the shopper's background."""

    name = "collage"

    def __init__(self) -> None:
        """Takes no settings: the collage needs nothing but Pillow."""

    def generate(self, request: GenerationInput, progress: Progress) -> Picture:
        """Draws a request.size x request.size PNG of the cart in request.style."""
        if not request.lines:
            raise EmptyCart("the cart is empty: there is nothing to draw")
        try:
            return _Collage(request, progress).draw()
        except (MemoryError, OSError, ValueError) as exc:
            log.exception("collage drawing failed")
            raise GenerationFailed("the cart picture could not be drawn; please try again") from exc


# ------------------------------------------------------------------------------------------------ colour


def _rgb(value: str) -> RGB:
    """Returns the RGB triple of a CSS colour."""
    r, g, b = ImageColor.getrgb(value)[:3]
    return (r, g, b)


def _rgba(value: str | RGB, alpha: float) -> RGBA:
    """Returns the colour with an opacity of alpha (0..1)."""
    r, g, b = _rgb(value) if isinstance(value, str) else value
    return (r, g, b, max(0, min(255, round(alpha * 255))))


def _mix(a: str | RGB, b: str | RGB, t: float) -> RGB:
    """Returns the colour t of the way from a to b."""
    ca = _rgb(a) if isinstance(a, str) else a
    cb = _rgb(b) if isinstance(b, str) else b
    return (
        round(ca[0] + (cb[0] - ca[0]) * t),
        round(ca[1] + (cb[1] - ca[1]) * t),
        round(ca[2] + (cb[2] - ca[2]) * t),
    )


def _luma(colour: RGB) -> float:
    """Returns the perceived brightness of a colour, 0..255."""
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


# ------------------------------------------------------------------------------------------------ shapes


def _aa(width: int, height: int, paint: Callable[[ImageDraw.ImageDraw, int], object]) -> Image.Image:
    """Returns an anti-aliased L mask: paint(draw, scale) draws white shapes at scale times the size."""
    width, height = max(1, width), max(1, height)
    scale = _SS if max(width, height) <= 700 else 2  # big shapes need less, and memory stays bounded
    big = Image.new("L", (width * scale, height * scale), 0)
    paint(ImageDraw.Draw(big), scale)
    return big.reduce(scale)


def _shared(build: Callable[..., Image.Image]) -> Callable[..., Image.Image]:
    """Caches the small masks a picture reuses for every card; big ones are cheap to redraw, costly to keep."""
    cached = lru_cache(maxsize=48)(build)

    def get(width: int, height: int, *args: float) -> Image.Image:
        return cached(width, height, *args) if width * height <= 250_000 else build(width, height, *args)

    return get


@_shared
def _rounded(width: int, height: int, radius: float) -> Image.Image:
    """Returns an anti-aliased rounded-rectangle mask (shared: never modify it)."""
    r = max(0.0, min(radius, width / 2, height / 2))
    return _aa(width, height, lambda d, s: d.rounded_rectangle((0, 0, width * s - 1, height * s - 1), r * s, 255))


def _disc(diameter: int) -> Image.Image:
    """Returns an anti-aliased disc mask (shared: never modify it)."""
    return _ellipse(diameter, diameter)


@_shared
def _ellipse(width: int, height: int) -> Image.Image:
    """Returns an anti-aliased mask of the ellipse filling width x height (shared: never modify it)."""
    return _aa(width, height, lambda d, s: d.ellipse((0, 0, width * s - 1, height * s - 1), 255))


@_shared
def _arch(width: int, height: int) -> Image.Image:
    """Returns an anti-aliased mask of a round-topped niche (shared: never modify it)."""
    radius = min(width / 2, height * 0.5)

    def paint(d: ImageDraw.ImageDraw, s: int) -> None:
        d.ellipse((0, 0, width * s - 1, 2 * radius * s), fill=255)
        d.rectangle((0, radius * s, width * s - 1, height * s - 1), fill=255)

    return _aa(width, height, paint)


def _solid(size: tuple[int, int], colour: RGB | RGBA) -> Image.Image:
    """Returns an RGBA image filled with one colour."""
    return Image.new("RGBA", size, colour if len(colour) == 4 else (*colour, 255))


def _fill(canvas: Image.Image, colour: RGB | RGBA, mask: Image.Image, xy: tuple[int, int] = (0, 0)) -> None:
    """Lays colour over canvas through mask at xy, honouring the colour's own opacity."""
    layer = _solid(mask.size, colour[:3])
    if len(colour) == 4 and colour[3] < 255:
        mask = mask.point(lambda v: v * colour[3] // 255)
    layer.putalpha(mask)
    _composite(canvas, layer, xy)


def _composite(canvas: Image.Image, layer: Image.Image, xy: tuple[int, int]) -> None:
    """Alpha-composites an RGBA layer onto an RGBA canvas at xy, clipping at the canvas edges."""
    x, y = round(xy[0]), round(xy[1])
    left, top = max(0, -x), max(0, -y)
    right = min(layer.width, canvas.width - x)
    bottom = min(layer.height, canvas.height - y)
    if right <= left or bottom <= top:
        return
    canvas.alpha_composite(layer, dest=(x + left, y + top), source=(left, top, right, bottom))


def _pad(mask: Image.Image, pad: int) -> Image.Image:
    """Returns the L mask with pad empty pixels on every side."""
    out = Image.new("L", (mask.width + 2 * pad, mask.height + 2 * pad), 0)
    out.paste(mask, (pad, pad))
    return out


def _shadow(mask: Image.Image, blur: float, opacity: float, colour: RGB) -> Image.Image:
    """Returns a soft RGBA shadow of the mask's shape, as big as the mask (pad the mask to give it room)."""
    alpha = mask
    if blur >= 0.5:
        # Blurring a half-size copy looks the same for soft shadows and costs a quarter.
        small = alpha.reduce(2) if min(alpha.size) > 48 else alpha
        small = small.filter(ImageFilter.GaussianBlur(blur * small.width / alpha.width))
        alpha = small.resize(alpha.size, _BILINEAR) if small.size != alpha.size else small
    layer = _solid(mask.size, colour)
    layer.putalpha(alpha.point(lambda v: round(v * opacity)))
    return layer


def _cast(
    canvas: Image.Image, mask: Image.Image, xy: tuple[float, float], blur: float, opacity: float, colour: RGB
) -> None:
    """Casts a soft shadow of mask onto canvas, mask's top-left corner at xy."""
    room = round(blur * 2.5) + 2
    _composite(canvas, _shadow(_pad(mask, room), blur, opacity, colour), (round(xy[0]) - room, round(xy[1]) - room))


def _rotated(tile: Image.Image, degrees: float) -> Image.Image:
    """Returns an RGBA tile rotated about its centre, without dark fringes."""
    if abs(degrees) < 0.05:
        return tile
    return tile.convert("RGBa").rotate(degrees, resample=_BICUBIC, expand=True).convert("RGBA")


def _sparkle(draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float, fill: RGB | RGBA) -> None:
    """Draws a four-pointed sparkle."""
    points = []
    for i in range(8):
        angle = math.pi / 4 * i - math.pi / 2
        r = radius if i % 2 == 0 else radius * 0.26
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    draw.polygon(points, fill=fill)


# ------------------------------------------------------------------------------------------------ text


def _quantity(quantity: int) -> str:
    """Returns the badge text for a quantity, e.g. 'x3'."""
    return f"x{quantity}" if quantity < 100_000 else "x99999+"


def _badge(
    canvas: Image.Image,
    centre: tuple[float, float],
    height: float,
    text: str,
    fill: RGB,
    ink: RGB,
    outline: RGB | None = None,
    outline_width: int = 0,
) -> None:
    """Draws a pill badge (a disc for short text) centred on centre, with text in it."""
    face = font(height * 0.5)
    stroke = bold_stroke(face, True) or (1 if height >= 26 else 0)
    text_w = line_width(text, face, 0, stroke)
    w, h = round(max(height, text_w + height * 0.55)), round(height)
    left, top = round(centre[0] - w / 2), round(centre[1] - h / 2)
    if outline is not None and outline_width > 0:
        o = outline_width
        _fill(canvas, outline, _rounded(w + 2 * o, h + 2 * o, (h + 2 * o) / 2), (left - o, top - o))
    _fill(canvas, fill, _rounded(w, h, h / 2), (left, top))
    draw_line(ImageDraw.Draw(canvas), left + w / 2, top_for_middle(face, top + h / 2), text, face, ink, stroke=stroke)


# ------------------------------------------------------------------------------------------------ pictures


def _decode(picture: Picture | None, want: int) -> Image.Image | None:
    """Decodes a picture at about want pixels across, or returns None if it is missing or unreadable."""
    if picture is None or not picture.data:
        return None
    try:
        image = Image.open(io.BytesIO(picture.data))
        if image.width * image.height > _MAX_SOURCE_PIXELS:
            log.warning("picture too large to draw: %dx%d", image.width, image.height)
            return None
        image.draft("RGB", (want, want))  # JPEG decodes straight to a smaller scale
        image = ImageOps.exif_transpose(image)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
        image = image.convert("RGBA" if has_alpha else "RGB")
        image.thumbnail((want, want), _LANCZOS, reducing_gap=2.0)
        return image
    except Exception as exc:  # noqa: BLE001 - a broken picture must degrade to a drawn card, never fail the cart
        log.warning("picture could not be decoded: %s", type(exc).__name__)
        return None


@dataclasses.dataclass(frozen=True)
class _Subject:
    """A product picture ready to place: cut out of its backdrop (RGBA), or a plain photo."""

    image: Image.Image
    cutout: bool
    bounds: tuple[int, int, int, int] | None = None  # the product itself within image, without its shadow


def _studio_backdrop(image: Image.Image) -> Image.Image | None:
    """Estimates the light, smooth studio backdrop behind a product shot from its borders; None if busy."""
    w, h = image.size
    band = max(2, min(w, h) // 50)
    top, bottom = image.crop((0, 0, w, band)), image.crop((0, h - band, w, h))
    left, right = image.crop((0, 0, band, h)), image.crop((w - band, 0, w, h))
    for strip in (top, bottom, left, right):
        stat = ImageStat.Stat(strip)
        if max(stat.stddev) > 12 or min(stat.mean) < 150:
            return None
    down = Image.linear_gradient("L").resize((w, h), _BILINEAR)
    across = Image.linear_gradient("L").transpose(Image.Transpose.TRANSPOSE).resize((w, h), _BILINEAR)
    # Blend the border colours inwards: top to bottom, and left to right, then average the two.
    rows = Image.composite(
        bottom.resize((w, 1), Image.Resampling.BOX).resize((w, h), Image.Resampling.NEAREST),
        top.resize((w, 1), Image.Resampling.BOX).resize((w, h), Image.Resampling.NEAREST),
        down,
    )
    cols = Image.composite(
        right.resize((1, h), Image.Resampling.BOX).resize((w, h), Image.Resampling.NEAREST),
        left.resize((1, h), Image.Resampling.BOX).resize((w, h), Image.Resampling.NEAREST),
        across,
    )
    return Image.blend(rows, cols, 0.5)


_SOBEL_X = ImageFilter.Kernel((3, 3), [-1, 0, 1, -2, 0, 2, -1, 0, 1], scale=4, offset=128)
_SOBEL_Y = ImageFilter.Kernel((3, 3), [-1, -2, -1, 0, 0, 0, 1, 2, 1], scale=4, offset=128)


def _outline(flat: Image.Image) -> Image.Image:
    """Returns a mask (at most 200 px across) of the product's sharp edges and strong colour.

    Soft shadows and the backdrop's light falloff have gentle gradients and stay out of it.
    """
    w, h = flat.size
    scale = min(1.0, 200 / max(w, h))
    small = (max(8, round(w * scale)), max(8, round(h * scale)))
    grey = flat.convert("L").resize(small, Image.Resampling.BOX)
    steep = ImageChops.lighter(
        grey.filter(_SOBEL_X).point(lambda v: 255 if abs(v - 128) > 14 else 0),
        grey.filter(_SOBEL_Y).point(lambda v: 255 if abs(v - 128) > 14 else 0),
    )
    # Convolution leaves the outermost pixels unfiltered, so they say nothing about edges.
    ImageDraw.Draw(steep).rectangle((0, 0, small[0] - 1, small[1] - 1), outline=0, width=1)
    # Ignore specks: a product is a shape, not a few isolated noisy pixels.
    return ImageChops.lighter(steep, grey.point(lambda v: 255 if v < 160 else 0)).filter(ImageFilter.MedianFilter(3))


def _fill_holes(solid: Image.Image) -> Image.Image:
    """Returns the L mask with every pocket the border cannot reach filled in."""
    background = ImageOps.invert(solid)
    w, h = background.size
    seed = Image.new("L", (w, h), 0)
    for box in ((0, 0, w, 1), (0, h - 1, w, h), (0, 0, 1, h), (w - 1, 0, w, h)):
        seed.paste(background.crop(box), box[:2])
    grow = ImageFilter.MaxFilter(3)
    # Morphological reconstruction: grow the border's background through background pixels only.
    for step in range(w + h):
        grown = ImageChops.darker(seed.filter(grow), background)
        if step % 4 == 3 and ImageChops.difference(grown, seed).getbbox() is None:
            break
        seed = grown
    return ImageOps.invert(seed)


def _body(outline: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Returns a soft mask of everything inside the product's outline, shrunk to stay off its edge."""
    w, h = outline.size
    scale = min(1.0, 64 / max(w, h))
    coarse = outline.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BOX)
    solid = coarse.point(lambda v: 255 if v > 40 else 0).filter(ImageFilter.MaxFilter(3))
    inside = _fill_holes(solid).filter(ImageFilter.MinFilter(5))
    inside = inside.filter(ImageFilter.GaussianBlur(0.7)).resize(size, _BICUBIC)
    return inside.point(lambda v: 0 if v < 110 else 255 if v > 170 else (v - 110) * 17 // 4)


def _scaled_box(
    box: tuple[int, int, int, int] | None, small: tuple[int, int], size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """Returns a box found on a reduced copy in the full-size picture's coordinates."""
    if box is None:
        return None
    sx, sy = size[0] / small[0], size[1] / small[1]
    return (
        max(0, math.floor(box[0] * sx)),
        max(0, math.floor(box[1] * sy)),
        min(size[0], math.ceil(box[2] * sx)),
        min(size[1], math.ceil(box[3] * sy)),
    )


def _divide(channel: Image.Image, by: Image.Image) -> Image.Image:
    """Returns channel * 255 / by, clipped to 255."""
    return ImageMath.lambda_eval(
        lambda a: a["convert"](a["min"](a["float"](a["c"]) * 255.0 / a["max"](a["float"](a["b"]), 1.0), 255.0), "L"),
        c=channel,
        b=by,
    )


def _unmix(channel: Image.Image, opacity: Image.Image) -> Image.Image:
    """Returns the colour that, at opacity over white, gives channel (colour-to-alpha)."""
    return ImageMath.lambda_eval(
        lambda a: a["convert"](255.0 - (255.0 - a["float"](a["c"])) * 255.0 / a["max"](a["float"](a["o"]), 1.0), "L"),
        c=channel,
        o=opacity,
    )


def _cut_out(image: Image.Image) -> _Subject:
    """Lifts the product off a light studio backdrop; keeps the whole photo when the backdrop is busy."""
    if image.mode == "RGBA":
        alpha = image.getchannel("A")
        if alpha.getextrema()[0] < 250:
            box = alpha.point(lambda v: 255 if v > 24 else 0).getbbox()
            return _Subject(image.crop(box) if box else image, True)
        image = image.convert("RGB")
    backdrop = _studio_backdrop(image)
    if backdrop is None:
        return _Subject(image.convert("RGBA"), False)
    # Divide the backdrop out so it becomes pure white, whatever its tint and light falloff, then turn
    # white into transparency ("colour to alpha"). Over a light ground this reproduces the photo's soft
    # shadow and anti-aliased edges faithfully; every frame gives products a light ground for that reason.
    flat = [_divide(c, b) for c, b in zip(image.split(), backdrop.split(), strict=True)]
    whiteness = ImageChops.darker(ImageChops.darker(flat[0], flat[1]), flat[2])
    opacity = ImageOps.invert(whiteness)
    outline = _outline(Image.merge("RGB", flat))
    box = _scaled_box(outline.getbbox(), outline.size, image.size)
    if box is None or (box[2] - box[0]) * (box[3] - box[1]) < 0.01 * image.width * image.height:
        return _Subject(image.convert("RGBA"), False)
    # Keep the photo's own shadow only near the product, fading out rather than ending in a hard line.
    margin = max(2, round(max(image.size) * 0.04))
    keep = Image.new("L", image.size, 0)
    ImageDraw.Draw(keep).rectangle(
        (box[0] - margin // 2, box[1] - margin // 2, box[2] + margin // 2, box[3] + margin // 2), fill=255
    )
    alpha = ImageChops.multiply(
        opacity.point(lambda v: 0 if v < 6 else v), keep.filter(ImageFilter.BoxBlur(margin / 2))
    )
    # Inside its outline the product is solid, so a textured ground never shows through its colours.
    # Pure white stays see-through even there: it is as likely a hole (a mug's handle, between the
    # lenses of sunglasses) as a white part, and on a light ground both look right that way.
    body = ImageChops.darker(
        _body(outline, image.size), opacity.point(lambda v: 0 if v < 10 else 255 if v > 40 else (v - 10) * 17 // 2)
    )
    alpha = ImageChops.lighter(alpha, body)
    colour = Image.composite(Image.merge("RGB", flat), Image.merge("RGB", [_unmix(c, opacity) for c in flat]), body)
    out = colour.convert("RGBA")
    out.putalpha(alpha)
    crop = (
        max(0, box[0] - margin),
        max(0, box[1] - margin),
        min(image.width, box[2] + margin),
        min(image.height, box[3] + margin),
    )
    bounds = (box[0] - crop[0], box[1] - crop[1], box[2] - crop[0], box[3] - crop[1])
    return _Subject(out.crop(crop), True, bounds)


def _sepia(image: Image.Image, amount: float) -> Image.Image:
    """Returns the picture toned towards warm sepia and slightly faded."""
    if amount <= 0:
        return image
    alpha = image.getchannel("A") if image.mode == "RGBA" else None
    rgb = image.convert("RGB")
    toned = ImageOps.colorize(ImageOps.grayscale(rgb), black="#2b1d10", white="#fff4de", mid="#a88660")
    out = Image.blend(rgb, toned, amount)
    out = Image.blend(out, Image.new("RGB", out.size, (244, 232, 208)), 0.1 * amount)
    if alpha is None:
        return out
    out = out.convert("RGBA")
    out.putalpha(alpha)
    return out


def _cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Returns the picture scaled and centre-cropped to exactly width x height, never stretched."""
    return ImageOps.fit(image, (max(1, width), max(1, height)), method=_LANCZOS, centering=(0.5, 0.5))


# ------------------------------------------------------------------------------------------------ items


@dataclasses.dataclass(frozen=True)
class _Item:
    """One cart line as the collage draws it."""

    name: str
    quantity: int
    swatch: RGB  # this item's tint from the style's swatches
    subject: _Subject | None  # None when the picture is missing or unreadable


def _initials(name: str) -> str:
    """Returns up to two initials of a product name, e.g. 'Salt & Pepper Shakers' -> 'SP'."""
    words = [w for w in drawable(name).replace("&", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def _placeholder(item: _Item, width: int, height: int, full_bleed: bool) -> _Subject:
    """Draws a stand-in for a product without a usable picture: a tinted tile with its initials."""
    swatch = item.swatch
    ink = _mix(swatch, (40, 36, 44) if _luma(swatch) > 140 else (255, 255, 255), 0.62)
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    side = min(width, height) if full_bleed else round(min(width, height) * 0.86)
    ox, oy = (width - side) // 2, (height - side) // 2
    if full_bleed:
        canvas.paste(_solid((width, height), swatch))
    else:
        _fill(canvas, _mix(swatch, ink, 0.08), _rounded(side, side, side * 0.2), (ox, oy))
        _fill(canvas, swatch, _rounded(side - 4, side - 4, side * 0.2 - 2), (ox + 2, oy + 2))
    ring = round(side * 0.56)
    line = max(1.0, side * 0.012)
    circle = _aa(
        ring, ring, lambda d, s: d.ellipse((0, 0, ring * s - 1, ring * s - 1), outline=255, width=round(line * s))
    )
    _fill(canvas, (*ink, 150), circle, ((width - ring) // 2, (height - ring) // 2))
    draw = ImageDraw.Draw(canvas)
    initials = _initials(item.name)
    face = font(side * (0.22 if len(initials) > 1 else 0.27))
    draw_line(
        draw, ox + side / 2, top_for_middle(face, oy + side / 2), initials, face, ink, stroke=bold_stroke(face, True)
    )
    return _Subject(canvas, not full_bleed, None if full_bleed else (ox, oy, ox + side, oy + side))


# ------------------------------------------------------------------------------------------------ layout


@dataclasses.dataclass(frozen=True)
class _Box:
    """A rectangle on the canvas."""

    x: int
    y: int
    w: int
    h: int


def _grid(count: int, area: _Box, aspect: tuple[float, float], gap: float, largest: float) -> list[_Box]:
    """Lays count equal cards (height/width within aspect) in the grid that lets them be widest.

    Products scale with the card's width, so width decides; of grids nearly as wide, the one with the
    taller cards wins. Rows are centred, so a short last row sits in the middle; gap is a fraction of
    the card width.
    """
    low, high = aspect
    best_area, width, cols = 0.0, 0.0, 1
    for columns in range(1, count + 1):
        rows = math.ceil(count / columns)
        w = min(area.w / (columns + (columns - 1) * gap), area.h / (rows * low + (rows - 1) * gap), largest)
        h = min(w * high, (area.h - (rows - 1) * gap * w) / rows)
        if w > width * 1.01 or (w > width * 0.99 and w * h > best_area):
            best_area, width, cols = w * h, w, columns
    rows = math.ceil(count / cols)
    height = min(width * high, (area.h - (rows - 1) * gap * width) / rows)
    step_x, step_y = width * (1 + gap), height + width * gap
    top = area.y + (area.h - (rows * height + (rows - 1) * width * gap)) / 2
    boxes = []
    for i in range(count):
        row, col = divmod(i, cols)
        in_row = min(cols, count - row * cols)
        left = area.x + (area.w - (in_row * width + (in_row - 1) * width * gap)) / 2
        boxes.append(_Box(round(left + col * step_x), round(top + row * step_y), round(width), round(height)))
    return boxes


# ------------------------------------------------------------------------------------------------ backdrops


def _gradient(size: int, stops: list[RGB], angle_deg: float) -> Image.Image:
    """Returns a linear gradient through the stops at angle degrees."""
    ramp = Image.new("RGB", (256, 1))
    n = len(stops) - 1
    for x in range(256):
        t = x / 255 * n
        i = min(int(t), n - 1)
        ramp.putpixel((x, 0), _mix(stops[i], stops[i + 1], t - i))
    side = math.ceil(size * 1.5)
    band = ramp.resize((side, side), _BILINEAR).rotate(angle_deg, resample=_BILINEAR)
    offset = (side - size) // 2
    return band.crop((offset, offset, offset + size, offset + size))


def _radial(size: tuple[int, int] | int, inner: float, outer: float) -> Image.Image:
    """Returns an L mask that is 0 within inner and 255 beyond outer (fractions of the half-size)."""
    w, h = (size, size) if isinstance(size, int) else size
    lo, hi = inner * 255, max(inner * 255 + 1, outer * 255)
    mask = Image.radial_gradient("L").point(
        lambda v: 0 if v <= lo else 255 if v >= hi else round((v - lo) * 255 / (hi - lo))
    )
    return mask.resize((w, h), _BILINEAR)


def _noise(size: tuple[int, int], sigma: float, clump: float = 1.0) -> Image.Image:
    """Returns grey noise around 128 whose grains are about clump pixels across."""
    small = (max(4, round(size[0] / clump)), max(4, round(size[1] / clump)))
    noise = Image.effect_noise(small, sigma)
    return noise if small == size else noise.resize(size, _BILINEAR)


def _add_noise(image: Image.Image, noise: Image.Image) -> Image.Image:
    """Returns the RGB image with grey noise (centred on 128) added to every channel."""
    return ImageChops.add(image, Image.merge("RGB", (noise, noise, noise)), scale=1.0, offset=-128)


def _vignette(image: Image.Image, strength: float, colour: RGB) -> Image.Image:
    """Returns the RGB image darkened towards its corners."""
    if strength <= 0:
        return image
    mask = _radial(image.size, 0.5, 1.45).point(lambda v: round(v * strength))
    return Image.composite(Image.new("RGB", image.size, colour), image, mask)


def _tones(look: Look, count: int) -> list[RGB]:
    """Returns the style's backdrop colours, repeated as needed to make at least count."""
    colours = [_rgb(c) for c in look.palette.backdrop] or [(240, 240, 240)]
    return [colours[i % len(colours)] for i in range(max(count, len(colours)))]


def _backdrop_gradient(size: int, look: Look, rng: random.Random) -> Image.Image:
    """Modern: a bold diagonal gradient with large, soft pools of light."""
    stops = _tones(look, 2)
    base = _gradient(size, stops, angle_deg=-35).convert("RGBA")
    small = max(32, size // 8)
    glow = Image.new("RGBA", (small, small), (0, 0, 0, 0))
    colours = [(255, 255, 255, 50), (*stops[-1], 120), (*stops[0], 110), (255, 255, 255, 34)]
    for colour in colours:
        r = small * rng.uniform(0.22, 0.4)
        cx, cy = small * rng.uniform(0.0, 1.0), small * rng.uniform(0.0, 1.0)
        blob = Image.new("RGBA", (small, small), (0, 0, 0, 0))
        ImageDraw.Draw(blob).ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        glow = Image.alpha_composite(glow, blob)
    base.alpha_composite(glow.filter(ImageFilter.GaussianBlur(small * 0.09)).resize((size, size), _BICUBIC))
    return base.convert("RGB")


def _backdrop_paper(size: int, look: Look, rng: random.Random) -> Image.Image:
    """Vintage: mottled, aged ledger paper."""
    pal = _tones(look, 4)
    base = Image.new("RGB", (size, size), pal[0])
    mottle = _noise((size, size), 40, clump=size / 10).filter(ImageFilter.GaussianBlur(size / 120))
    base = Image.composite(
        Image.new("RGB", (size, size), pal[1]), base, mottle.point(lambda v: max(0, min(255, (v - 120) * 3)))
    )
    draw = ImageDraw.Draw(base)
    for i in range(1, 15):  # the faint ruled lines of an old ledger
        y = round(size * (0.05 + i * 0.066))
        draw.line((0, y, size, y), fill=_mix(pal[0], pal[2], 0.1), width=max(1, size // 700))
    return base


def _backdrop_studio(size: int, look: Look, rng: random.Random) -> Image.Image:
    """Minimalist: a seamless studio sweep, wall meeting floor without a line."""
    wall, floor = _tones(look, 2)[:2]
    column = Image.new("RGB", (1, 256))
    for y in range(256):
        t = min(1.0, max(0.0, (y / 255 - 0.5) / 0.45))
        column.putpixel((0, y), _mix(wall, floor, t * t * (3 - 2 * t)))
    return column.resize((size, size), _BILINEAR)


def _confetti(layer: Image.Image, colours: list[RGB], rng: random.Random, count: int) -> None:
    """Scatters confetti (dots, triangles, strips and zigzags) over a transparent layer."""
    size = layer.width
    draw = ImageDraw.Draw(layer)
    for _ in range(count):
        colour = rng.choice(colours)
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        r = size * rng.uniform(0.008, 0.02)
        kind = rng.random()
        if kind < 0.3:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        elif kind < 0.55:
            a = rng.uniform(0, math.tau)
            draw.polygon(
                [
                    (x + r * 1.3 * math.cos(a + k * math.tau / 3), y + r * 1.3 * math.sin(a + k * math.tau / 3))
                    for k in range(3)
                ],
                fill=colour,
            )
        elif kind < 0.8:
            a = rng.uniform(0, math.pi)
            dx, dy = math.cos(a) * r * 1.6, math.sin(a) * r * 1.6
            draw.line((x - dx, y - dy, x + dx, y + dy), fill=colour, width=max(2, round(r * 0.9)))
        else:
            points = [(x + i * r * 0.7, y + (r * 0.55 if i % 2 else -r * 0.55)) for i in range(-3, 4)]
            draw.line(points, fill=colour, width=max(2, round(size * 0.005)), joint="curve")


def _backdrop_confetti(size: int, look: Look, rng: random.Random) -> Image.Image:
    """Playful: a sunny pastel ground with big soft shapes and confetti."""
    pal = _tones(look, 5)
    base = Image.new("RGBA", (size, size), (*pal[0], 255))
    s = size // 2
    shapes = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(shapes)
    draw.ellipse((-s * 0.25, -s * 0.3, s * 0.55, s * 0.45), fill=(*pal[1], 255))
    draw.ellipse((s * 0.62, s * 0.55, s * 1.3, s * 1.25), fill=(*pal[2], 255))
    draw.ellipse((s * 0.7, -s * 0.18, s * 1.05, s * 0.17), fill=(*pal[3], 200))
    draw.ellipse((-s * 0.12, s * 0.8, s * 0.3, s * 1.2), fill=(*pal[4], 170))
    base.alpha_composite(shapes.resize((size, size), _BICUBIC))
    dots = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    _confetti(dots, pal[3:], rng, 70)
    base.alpha_composite(dots)
    return base.convert("RGB")


def _backdrop_velvet(size: int, look: Look, rng: random.Random) -> Image.Image:
    """Luxury: near-black velvet under a soft overhead spotlight."""
    pal = _tones(look, 4)
    spot = ImageOps.invert(_radial(size, 0.0, 1.15)).point(lambda v: round(v * 0.8))
    return Image.composite(Image.new("RGB", (size, size), pal[2]), Image.new("RGB", (size, size), pal[0]), spot)


def _backdrop_wood(size: int, look: Look, rng: random.Random) -> Image.Image:
    """Rustic: a wall of whitewashed vertical planks, the grain showing through."""
    pal = _tones(look, 4)
    base = Image.new("RGB", (size, size), pal[0])
    draw = ImageDraw.Draw(base)
    seam = _mix(pal[-1], (60, 40, 20), 0.35)
    x = -rng.uniform(0, size * 0.08)
    while x < size:
        width = size * rng.uniform(0.12, 0.17)
        draw.rectangle((x, 0, x + width, size), fill=_mix(pal[0], rng.choice(pal[1:]), rng.uniform(0.2, 0.8)))
        draw.line((x, 0, x, size), fill=seam, width=max(2, size // 350))
        for y in (size * 0.035, size * 0.965):  # nail heads at the plank ends
            r = size * 0.003
            draw.ellipse((x + width / 2 - r, y - r, x + width / 2 + r, y + r), fill=_mix(seam, (40, 30, 20), 0.3))
        x += width
    # Long vertical streaks: noise stretched along the boards.
    grain = Image.effect_noise((size // 2, 12), 30).resize((size, size), _BICUBIC).point(lambda v: 128 + (v - 128) // 4)
    return _add_noise(base, grain)


def _backdrop_bokeh(size: int, look: Look, rng: random.Random) -> Image.Image:
    """Festive: deep pine green with warm out-of-focus lights."""
    pal = _tones(look, 4)
    base = Image.composite(
        Image.new("RGB", (size, size), pal[1]), Image.new("RGB", (size, size), pal[0]), _radial(size, 0.1, 1.3)
    )
    small = size // 4
    lights = Image.new("RGBA", (small, small), (0, 0, 0, 0))
    draw = ImageDraw.Draw(lights)
    for _ in range(34):
        r = small * rng.uniform(0.015, 0.05)
        x, y = rng.uniform(0, small), rng.uniform(0, small)
        colour = pal[2] if rng.random() < 0.75 else pal[3]
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*colour, rng.randint(40, 105)))
    lights = lights.filter(ImageFilter.GaussianBlur(small / 160)).resize((size, size), _BICUBIC)
    out = base.convert("RGBA")
    out.alpha_composite(lights)
    return out.convert("RGB")


_BACKDROPS: dict[str, Callable[[int, Look, random.Random], Image.Image]] = {
    "gradient": _backdrop_gradient,
    "paper": _backdrop_paper,
    "studio": _backdrop_studio,
    "confetti": _backdrop_confetti,
    "velvet": _backdrop_velvet,
    "wood": _backdrop_wood,
    "bokeh": _backdrop_bokeh,
}


def _photo_backdrop(photo: Image.Image, size: int, look: Look) -> Image.Image:
    """Returns the shopper's background cover-fitted, softened and toned so products stay readable."""
    pal = look.palette
    image = _cover(photo.convert("RGB"), size, size).filter(ImageFilter.GaussianBlur(size / 400))
    if look.sepia:
        image = _sepia(image, look.sepia)
    return Image.blend(image, Image.new("RGB", image.size, _rgb(pal.scrim)), pal.scrim_opacity)


def _string_lights(canvas: Image.Image) -> None:
    """Festive: a garland of warm bulbs sagging across the top edge."""
    size = canvas.width
    glow = Image.new("RGBA", (size, size // 5), (0, 0, 0, 0))
    draw, gdraw = ImageDraw.Draw(canvas), ImageDraw.Draw(glow)
    points = []
    for i in range(41):
        t = i / 40
        points.append(
            (t * size, size * (0.012 + 0.035 * (1 - (2 * t - 1) ** 2)) + size * 0.012 * math.sin(t * math.pi * 6))
        )
    draw.line(points, fill=(24, 40, 30, 255), width=max(2, size // 400))
    colours = [(255, 214, 120), (255, 120, 100), (255, 240, 200), (150, 230, 160)]
    bulbs = [(x, y, colours[i % len(colours)]) for i, (x, y) in enumerate(points[1:-1:3])]
    r = size * 0.011
    for x, y, colour in bulbs:
        gdraw.ellipse((x - r * 3.2, y - r * 2, x + r * 3.2, y + r * 4.4), fill=(*colour, 80))
    canvas.alpha_composite(glow.filter(ImageFilter.GaussianBlur(size / 110)))
    for x, y, colour in bulbs:  # the bulbs over their glow, so they stay crisp
        draw.rectangle((x - r * 0.45, y - r * 0.25, x + r * 0.45, y + r * 0.45), fill=(60, 66, 58, 255))
        draw.ellipse((x - r * 0.75, y + r * 0.2, x + r * 0.75, y + r * 2.4), fill=(*colour, 255))
        draw.ellipse((x - r * 0.35, y + r * 0.6, x + r * 0.05, y + r * 1.2), fill=(255, 255, 240, 255))


def _gold_frame(canvas: Image.Image, look: Look) -> None:
    """Luxury: a fine double gold rule inset from the edges."""
    size = canvas.width
    draw = ImageDraw.Draw(canvas)
    gold = _rgba(look.palette.accent, 0.85)
    for inset, width in ((0.028, max(2, size // 400)), (0.038, max(1, size // 1000))):
        m = round(size * inset)
        draw.rectangle((m, m, size - 1 - m, size - 1 - m), outline=gold, width=width)


# ------------------------------------------------------------------------------------------------ frames
#
# A frame draws one cart line as an RGBA tile: painter(item, card width, card height, scene) -> (tile, pad).
# The card covers (pad, pad, pad + width, pad + height) of the tile; the margin is room for shadows
# and overhanging badges.


@dataclasses.dataclass(frozen=True)
class _Scene:
    """What every frame painter needs to know about the picture being drawn."""

    look: Look
    size: int
    rng: random.Random

    @property
    def pal(self) -> Palette:
        """Returns the style's palette."""
        return self.look.palette

    def text_size(self, width: float, share: float) -> float:
        """Returns a label font size: share of the card width, kept readable on the whole picture."""
        return max(self.size * 0.0135, min(width * share, self.size * 0.03))

    def label(self, text: str, width: float, size: float, lines: int = 2, bold: bool = False) -> TextBlock:
        """Fits a product name in the style's typography."""
        look = self.look
        return fit(text, width, lines, size, size * 0.82, uppercase=look.uppercase, tracking=look.tracking, bold=bold)


def _subject(item: _Item, width: int, height: int, photo: bool = False) -> _Subject:
    """Returns the item's picture, or its drawn stand-in, for a box of width x height."""
    if item.subject is not None:
        return item.subject
    return _placeholder(item, width, height, full_bleed=photo)


def _place(
    subject: _Subject, width: int, height: int, fill: float, bottom: bool = False
) -> tuple[Image.Image, tuple[int, int]]:
    """Returns the subject sized for a box and its offset in the box (negative when a shadow spills over).

    A cutout is scaled so the product itself spans fill of the box; a photo covers the box.
    """
    if not subject.cutout:
        return _cover(subject.image, width, height), (0, 0)
    image = subject.image
    left, top, right, low = subject.bounds or (0, 0, image.width, image.height)
    scale = min(width * fill / max(1, right - left), height * fill / max(1, low - top))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    fitted = image.resize(size, _LANCZOS) if size != image.size else image
    x = (width - (right - left) * scale) / 2 - left * scale
    if bottom:
        y = height * (1 - (1 - fill) * 0.3) - low * scale
    else:
        y = (height - (low - top) * scale) / 2 - top * scale
    return fitted, (round(x), round(y))


def _product_shadow(
    ground: Image.Image, image: Image.Image, xy: tuple[int, int], lift: float, opacity: float, colour: RGB
) -> None:
    """Casts the soft shadow of a placed cutout onto its ground, as if it floated lift pixels above it."""
    _cast(ground, image.getchannel("A"), (xy[0], xy[1] + lift), max(1.0, lift * 1.2), opacity, colour)


def _frame_panel(item: _Item, w: int, h: int, scene: _Scene) -> tuple[Image.Image, int]:
    """Modern: a white rounded card with a soft shadow, the product on a tinted panel, a pill badge."""
    pal, shadow = scene.pal, _rgb(scene.pal.shadow)
    pad = round(w * 0.14)
    tile = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
    radius = w * 0.07
    card = _rounded(w, h, radius)
    _cast(tile, card, (pad, pad + w * 0.035), w * 0.05, 0.4, shadow)
    _fill(tile, _rgb(pal.card), card, (pad, pad))
    inset = round(w * 0.05)
    size = scene.text_size(w, 0.074)
    text = scene.label(item.name, w - 2 * inset, size, bold=True)
    label_h = round(size * 1.22 * 2 + inset * 1.3)
    pw, ph = w - 2 * inset, h - inset - label_h
    panel = _solid((pw, ph), item.swatch)
    subject = _subject(item, pw, ph)
    image, xy = _place(subject, pw, ph, 0.8)
    if subject.cutout:
        _product_shadow(panel, image, xy, pw * 0.025, 0.25, shadow)
    _composite(panel, image, xy)
    panel.putalpha(_rounded(pw, ph, radius * 0.7))
    tile.alpha_composite(panel, (pad + inset, pad + inset))
    draw_block(
        ImageDraw.Draw(tile),
        pad + inset,
        top_for_middle(text, pad + inset + ph + label_h / 2),
        text,
        _rgb(pal.card_ink),
        "l",
    )
    badge = max(w * 0.14, scene.size * 0.028)
    _badge(
        tile,
        (pad + w - inset - badge * 0.45 - w * 0.03, pad + inset + w * 0.03 + badge / 2),
        badge,
        _quantity(item.quantity),
        _rgb(pal.accent),
        _rgb(pal.accent_ink),
    )
    return tile, pad


def _frame_polaroid(item: _Item, w: int, h: int, scene: _Scene) -> tuple[Image.Image, int]:
    """Vintage: a sepia instant print, taped down, its name inked in the margin and its quantity stamped."""
    pal, look = scene.pal, scene.look
    pad = round(w * 0.16)
    tile = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
    card = _rounded(w, h, w * 0.012)
    _cast(tile, card, (pad + w * 0.015, pad + w * 0.03), w * 0.035, 0.5, _rgb(pal.shadow))
    _fill(tile, _rgb(pal.card), card, (pad, pad))
    border = round(w * 0.06)
    size = scene.text_size(w, 0.08)
    margin_h = round(max(w * 0.2, size * 1.2 * 2 + border))
    pw, ph = w - 2 * border, h - border - margin_h
    photo = _solid((pw, ph), _rgb("#eadcc0"))
    subject = _subject(item, pw, ph, photo=True)
    image, xy = _place(subject, pw, ph, 0.8)
    if subject.cutout:
        _product_shadow(photo, image, (xy[0] + round(pw * 0.015), xy[1]), pw * 0.025, 0.35, _rgb(pal.shadow))
    _composite(photo, image, xy)
    photo = _vignette(_sepia(photo.convert("RGB"), look.sepia), 0.5, _rgb("#3b2613"))
    tile.paste(photo, (pad + border, pad + border))
    draw = ImageDraw.Draw(tile)
    draw.rectangle(
        (pad + border, pad + border, pad + border + pw - 1, pad + border + ph - 1), outline=(*_rgb(pal.shadow), 50)
    )
    text = scene.label(item.name, pw * 0.9, size)
    draw_block(draw, pad + w / 2, top_for_middle(text, pad + border + ph + margin_h / 2), text, _rgb(pal.card_ink))
    _stamp(
        tile,
        (pad + w - border - w * 0.1, pad + border + ph - w * 0.08),
        max(w * 0.26, scene.size * 0.05),
        item.quantity,
        _rgb(pal.accent),
        scene.rng,
    )
    _tape(tile, (pad + w / 2, pad + w * 0.005), w, scene.rng)
    return tile, pad


def _stamp(
    tile: Image.Image, centre: tuple[float, float], diameter: float, quantity: int, ink: RGB, rng: random.Random
) -> None:
    """Presses a round rubber stamp with the quantity, a little rotated and unevenly inked."""
    d = round(diameter)
    side = round(d * 1.15)
    off = (side - d) / 2
    ring = _aa(
        side,
        side,
        lambda dr, s: (
            dr.ellipse((off * s, off * s, (off + d) * s, (off + d) * s), outline=255, width=round(d * 0.055 * s)),
            dr.ellipse(
                ((off + d * 0.11) * s, (off + d * 0.11) * s, (off + d * 0.89) * s, (off + d * 0.89) * s),
                outline=255,
                width=max(1, round(d * 0.022 * s)),
            ),
        ),
    )
    stamp = _solid((side, side), ink)
    label = _quantity(quantity)
    face = font(d * 0.34)
    if line_width(label, face) > d * 0.66:
        face = font(size_of(face) * d * 0.66 / line_width(label, face))
    text = Image.new("L", (side, side), 0)
    draw_line(
        ImageDraw.Draw(text), side / 2, top_for_middle(face, side / 2), label, face, 255, stroke=max(1, round(d / 40))
    )
    wear = _noise((side, side), 90, clump=3).point(lambda v: 255 if v > 60 else 110)
    stamp.putalpha(ImageChops.multiply(ImageChops.lighter(ring, text), wear).point(lambda v: v * 4 // 5))
    stamp = _rotated(stamp, rng.uniform(-18, -6))
    _composite(tile, stamp, (round(centre[0] - stamp.width / 2), round(centre[1] - stamp.height / 2)))


def _tape(tile: Image.Image, centre: tuple[float, float], card_w: int, rng: random.Random) -> None:
    """Sticks a strip of translucent paper tape across the top edge of a print."""
    tw, th = round(card_w * 0.34), max(6, round(card_w * 0.085))
    tape = Image.new("RGBA", (tw, th), (226, 212, 172, 200))
    draw = ImageDraw.Draw(tape)
    step = max(2, th // 3)
    for y in range(0, th, step):  # torn ends
        draw.polygon([(0, y), (step // 2, y + step // 2), (0, y + step)], fill=(0, 0, 0, 0))
        draw.polygon([(tw, y), (tw - step // 2, y + step // 2), (tw, y + step)], fill=(0, 0, 0, 0))
    tape = _rotated(tape, rng.uniform(-6, 6))
    _composite(tile, tape, (round(centre[0] - tape.width / 2), round(centre[1] - tape.height / 2)))


def _frame_floating(item: _Item, w: int, h: int, scene: _Scene) -> tuple[Image.Image, int]:
    """Minimalist: the product alone on the ground with a faint contact shadow, its name set small below."""
    pal, look = scene.pal, scene.look
    pad = round(w * 0.08)
    size = scene.text_size(w, 0.055)
    label_h = round(size * 1.25 * 3 + w * 0.05)
    # No wider than tall, and the product and its label centred as one group in a taller card.
    pw, ph = w, min(h - label_h, w)
    tile = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
    pad_y = pad + (h - label_h - ph) // 2
    subject = _subject(item, pw, ph)
    shadow = _rgb(pal.shadow)
    if subject.cutout:
        image, (x, y) = _place(subject, pw, ph, 0.86, bottom=True)
        (left, _, right, low) = subject.bounds or (0, 0, subject.image.width, subject.image.height)
        scale = image.width / subject.image.width
        ew, eh = (right - left) * scale * 0.9, max(4.0, pw * 0.035)
        floor = _aa(round(ew), round(eh), lambda d, s: d.ellipse((0, 0, ew * s, eh * s), fill=255))
        _cast(tile, floor, (pad + pw / 2 - ew / 2, pad_y + y + low * scale - eh * 0.55), eh * 0.6, 0.28, shadow)
        _composite(tile, image, (pad + x, pad_y + y))
    else:
        inset = round(pw * 0.08)
        photo = _cover(subject.image, pw - 2 * inset, ph - 2 * inset)
        photo.putalpha(_rounded(photo.width, photo.height, pw * 0.012))
        _cast(tile, photo.getchannel("A"), (pad + inset, pad_y + inset + pw * 0.012), pw * 0.02, 0.2, shadow)
        tile.alpha_composite(photo, (pad + inset, pad_y + inset))
    draw = ImageDraw.Draw(tile)
    text = scene.label(item.name, w * 0.94, size)
    top = pad_y + ph + w * 0.04
    draw_block(draw, pad + w / 2, top, text, _rgb(pal.ink))
    draw_line(
        draw,
        pad + w / 2,
        top + text.height + size * 0.25,
        f"x {item.quantity}",
        font(size),
        _rgb(pal.accent),
        tracking=look.tracking * size,
    )
    return tile, pad


def _frame_sticker(item: _Item, w: int, h: int, scene: _Scene) -> tuple[Image.Image, int]:
    """Playful: a chunky outlined sticker in a candy colour with a hard offset shadow and a round badge."""
    pal = scene.pal
    ink = _rgb(pal.ink)
    pad = round(w * 0.16)
    tile = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
    radius = w * 0.1
    line = max(2, round(w * 0.02))
    offset = max(3, round(w * 0.04))
    outer = _rounded(w, h, radius)
    _fill(tile, ink, outer, (pad + offset, pad + offset))
    _fill(tile, ink, outer, (pad, pad))
    _fill(tile, item.swatch, _rounded(w - 2 * line, h - 2 * line, radius - line), (pad + line, pad + line))
    inset = round(w * 0.075)
    size = scene.text_size(w, 0.08)
    label_h = round(size * 1.2 * 2 + inset * 1.1)
    pw, ph = w - 2 * inset, h - inset - label_h
    _fill(tile, ink, _rounded(pw, ph, radius * 0.7), (pad + inset, pad + inset))
    panel = _solid((pw - 2 * line, ph - 2 * line), (255, 255, 255))
    subject = _subject(item, panel.width, panel.height)
    image, xy = _place(subject, panel.width, panel.height, 0.8)
    _composite(panel, image, xy)
    panel.putalpha(_rounded(panel.width, panel.height, radius * 0.7 - line))
    tile.alpha_composite(panel, (pad + inset + line, pad + inset + line))
    text = scene.label(item.name, pw, size, bold=True)
    draw_block(
        ImageDraw.Draw(tile),
        pad + w / 2,
        top_for_middle(text, pad + inset + ph + label_h / 2),
        text,
        _rgb(pal.card_ink),
    )
    badge = max(w * 0.2, scene.size * 0.036)
    _badge(
        tile,
        (pad + w - badge * 0.3, pad + badge * 0.3),
        badge,
        _quantity(item.quantity),
        _rgb(pal.accent),
        _rgb(pal.accent_ink),
        ink,
        line,
    )
    return tile, pad


def _frame_niche(item: _Item, w: int, h: int, scene: _Scene) -> tuple[Image.Image, int]:
    """Luxury: the product in a softly lit ivory niche with a gold rim, its name in gold capitals below."""
    pal = scene.pal
    gold, gold_light = _rgb(pal.accent), _rgb("#f3dc98")
    pad = round(w * 0.14)
    tile = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
    size = scene.text_size(w, 0.056)
    label_h = round(size * 1.25 * 2 + w * 0.08)
    medal = min(max(w * 0.16, scene.size * 0.032), scene.size * 0.055)
    top = pad + round(medal / 2)  # the medallion's upper half stays inside the card
    aw, ah = w, h - label_h - round(medal / 2)
    arch = _arch(aw, ah)
    _cast(tile, arch, (pad, top), w * 0.06, 0.25, gold)  # a warm glow spilling onto the velvet
    rim = _solid((aw, ah), gold)
    rim.paste(
        _solid((aw, ah), gold_light),
        (0, 0),
        ImageOps.invert(Image.linear_gradient("L")).resize((aw, ah)).point(lambda v: v * 3 // 5),
    )
    rim.putalpha(arch)
    tile.alpha_composite(rim, (pad, top))
    edge = max(2, round(w * 0.022))
    iw, ih = aw - 2 * edge, ah - 2 * edge
    inner = _solid((iw, ih), _mix(pal.card, "#d9c7a4", 0.55))
    light = ImageOps.invert(_radial((iw * 2, ih * 2), 0.0, 0.95)).crop((iw // 2, 0, iw // 2 + iw, ih))
    inner.paste(_solid((iw, ih), _rgb(pal.card)), (0, 0), light)
    subject = _subject(item, iw, ih)
    if subject.cutout:
        # A tall niche shows the product in its lower, squarer part, the light falling from above.
        box_h = min(ih, round(iw * 1.1))
        image, (x, y) = _place(subject, iw, box_h, 0.74, bottom=True)
        y += ih - box_h - round(ih * 0.03)
        low = (subject.bounds or (0, 0, 0, subject.image.height))[3] * image.height / subject.image.height
        ew, eh = iw * 0.62, max(4.0, iw * 0.05)
        floor = _aa(round(ew), round(eh), lambda d, s: d.ellipse((0, 0, ew * s, eh * s), fill=255))
        _cast(inner, floor, (iw / 2 - ew / 2, y + low - eh * 0.5), eh * 0.5, 0.3, _rgb("#5a4526"))
        _composite(inner, image, (x, y))
    else:
        image, _ = _place(subject, iw, ih, 1.0)
        inner.alpha_composite(image)
    inner.putalpha(_arch(iw, ih))
    tile.alpha_composite(inner, (pad + edge, top + edge))
    # The quantity on a gold medallion, set like a keystone at the top of the arch.
    _badge(
        tile,
        (pad + w / 2, top + edge * 0.5),
        medal,
        _quantity(item.quantity),
        gold,
        _rgb("#2a2118"),
        _rgb("#8a6a2c"),
        max(1, round(w * 0.008)),
    )
    text = scene.label(item.name, w * 1.05, size)
    draw_block(ImageDraw.Draw(tile), pad + w / 2, top + ah + w * 0.07, text, _rgb(pal.ink))
    return tile, pad


_SHELF_PLANK = 0.1  # the plank's thickness, as a share of the card width


def _frame_shelf(item: _Item, w: int, h: int, scene: _Scene) -> tuple[Image.Image, int]:
    """Rustic: the product standing on a shelf (the layout draws the plank), a kraft tag hanging below."""
    pal = scene.pal
    shadow = _rgb(pal.shadow)
    pad = round(w * 0.14)
    tile = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
    stand, plank, tag_h, tag_w, size = _shelf_geometry(w, h, scene)
    subject = _subject(item, w, stand)
    if subject.cutout:
        image, (x, y) = _place(subject, w, stand, 0.84, bottom=True)
        low = (subject.bounds or (0, 0, 0, subject.image.height))[3] * image.height / subject.image.height
        y = round(stand - low)  # standing on the plank
    else:
        framed = _cover(subject.image, round(w * 0.7), round(min(w * 0.7, stand * 0.86)))
        border = max(3, round(w * 0.035))
        image = _solid((framed.width + 2 * border, framed.height + 2 * border), _rgb("#6b4a2c"))
        image.paste(framed, (border, border))
        x, y = (w - image.width) // 2, stand - image.height
    # Window light from the left: the shadow falls right and a little up the wall.
    _cast(tile, image.getchannel("A"), (pad + x + w * 0.035, pad + y - w * 0.01), w * 0.03, 0.3, shadow)
    _composite(tile, image, (pad + x, pad + y))
    draw = ImageDraw.Draw(tile)
    tag_x, tag_y = round(pad + (w - tag_w) / 2), round(pad + stand + plank + h * 0.03)
    twine = (*_rgb("#6f5337"), 255)
    for hx in (tag_x + tag_w * 0.18, tag_x + tag_w * 0.82):
        draw.line((hx, pad + stand + plank * 0.6, hx, tag_y + tag_h * 0.15), fill=twine, width=max(2, round(w * 0.01)))
    tag = _rounded(tag_w, tag_h, tag_h * 0.1)
    _cast(tile, tag, (tag_x + 2, tag_y + 3), w * 0.012, 0.4, shadow)
    _composite(tile, _textured(_solid((tag_w, tag_h), _rgb(pal.card)), tag), (tag_x, tag_y))
    for hx in (tag_x + tag_w * 0.18, tag_x + tag_w * 0.82):
        r = max(1.5, tag_h * 0.045)
        draw.ellipse(
            (hx - r, tag_y + tag_h * 0.15 - r, hx + r, tag_y + tag_h * 0.15 + r), fill=_mix(pal.card, "#3b2616", 0.6)
        )
    qty = _quantity(item.quantity)
    qface = font(size * 1.05)
    qstroke = bold_stroke(qface, True) or 1
    qwidth = line_width(qty, qface, 0, qstroke)
    text = scene.label(item.name, tag_w * 0.86 - qwidth, size)
    middle = tag_y + tag_h * 0.6
    draw_block(draw, tag_x + tag_w * 0.06, top_for_middle(text, middle), text, _rgb(pal.card_ink), "l")
    draw_line(
        draw,
        tag_x + tag_w * 0.94,
        top_for_middle(qface, middle),
        qty,
        qface,
        _rgb(pal.accent),
        stroke=qstroke,
        align="r",
    )
    return tile, pad


def _shelf_geometry(w: int, h: int, scene: _Scene) -> tuple[int, int, int, int, float]:
    """Returns a shelf card's product height, plank thickness, tag height, tag width and text size."""
    size = scene.text_size(w, 0.068)
    plank = max(5, round(w * _SHELF_PLANK))
    tag_h = round(size * 1.2 * 2 + w * 0.1)
    stand = h - plank - tag_h - round(h * 0.03)
    return stand, plank, tag_h, round(w * 0.9), size


def _textured(fill: Image.Image, mask: Image.Image) -> Image.Image:
    """Returns fill with a faint paper-fibre texture, cut to mask."""
    out = _add_noise(fill.convert("RGB"), _noise(fill.size, 4)).convert("RGBA")
    out.putalpha(mask)
    return out


def _frame_ornament(item: _Item, w: int, h: int, scene: _Scene) -> tuple[Image.Image, int]:
    """Festive: the product inside a hanging bauble with a gold rim, its name on a red ribbon."""
    pal = scene.pal
    pad = round(w * 0.14)
    tile = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
    gold, gold_dark = _rgb("#e2b857"), _rgb("#9a6f24")
    size = scene.text_size(w, 0.07)
    ribbon_h = round(size * 1.2 * 2 + w * 0.06)
    cap_h = round(w * 0.08)
    d = round(min(w * 0.9, h - ribbon_h - cap_h - w * 0.06))
    cx = pad + w / 2
    bx, by = round(cx - d / 2), pad + cap_h + round(w * 0.02)
    draw = ImageDraw.Draw(tile)
    draw.line((cx, pad, cx, by), fill=(*gold, 230), width=max(1, round(w * 0.008)))
    disc = _disc(d)
    _cast(tile, disc, (bx, by), w * 0.07, 0.5, _rgb("#ffcf6b"))
    _cast(tile, disc, (bx, by + w * 0.02), w * 0.03, 0.5, _rgb(pal.shadow))
    _fill(tile, gold_dark, disc, (bx, by))
    rim = max(3, round(d * 0.045))
    _fill(tile, gold, _disc(d - rim), (bx + rim // 2, by + rim // 2))
    inner = d - 2 * rim
    ground = _solid((inner, inner), _rgb(pal.card))
    ground.paste(_solid((inner, inner), _rgb("#efdfc4")), (0, 0), _radial(inner, 0.5, 1.0).point(lambda v: v * 2 // 5))
    subject = _subject(item, inner, inner, photo=True)
    image, xy = _place(subject, inner, inner, 0.64)
    if subject.cutout:
        _product_shadow(ground, image, xy, inner * 0.02, 0.25, _rgb(pal.shadow))
    _composite(ground, image, xy)
    shine = _aa(
        inner,
        inner,
        lambda dr, s: dr.ellipse((inner * 0.17 * s, inner * 0.08 * s, inner * 0.42 * s, inner * 0.24 * s), fill=255),
    )
    _fill(ground, (255, 255, 255, 110), shine.filter(ImageFilter.GaussianBlur(inner * 0.02)))
    ground.putalpha(_disc(inner))
    tile.alpha_composite(ground, (bx + rim, by + rim))
    cap_w = round(d * 0.22)
    cap_x, cap_y = round(cx - cap_w / 2), by - round(cap_h * 0.75)
    _fill(tile, gold_dark, _rounded(cap_w, cap_h, cap_h * 0.25), (cap_x, cap_y))
    _fill(tile, gold, _rounded(cap_w - 2, cap_h - 3, cap_h * 0.25), (cap_x + 1, cap_y + 1))
    for k in range(1, 4):  # the cap's fluting
        gx = cap_x + cap_w * k / 4
        draw.line((gx, cap_y + 2, gx, cap_y + cap_h - 3), fill=gold_dark, width=1)
    # The name on a swallow-tailed ribbon; the quantity as a gold coin on the bauble.
    red, red_dark = _rgb(pal.accent), _rgb("#7d1019")
    rib_top = by + d + round(w * 0.035)
    notch = ribbon_h * 0.3
    tail = w * 0.07
    ribbon = _aa(
        w,
        ribbon_h,
        lambda dr, s: dr.polygon(
            [
                (0, 0),
                (w * s, 0),
                ((w - notch) * s, ribbon_h * 0.5 * s),
                (w * s, ribbon_h * s),
                (0, ribbon_h * s),
                (notch * s, ribbon_h * 0.5 * s),
            ],
            fill=255,
        ),
    )
    _fill(tile, red_dark, ribbon, (pad, rib_top + round(w * 0.015)))
    band = _rounded(round(w - 2 * tail), ribbon_h, ribbon_h * 0.08)
    _cast(tile, band, (pad + tail, rib_top + 2), w * 0.01, 0.4, _rgb(pal.shadow))
    _fill(tile, red, band, (round(pad + tail), rib_top))
    text = scene.label(item.name, w - 2 * tail - w * 0.06, size, bold=True)
    draw_block(draw, cx, top_for_middle(text, rib_top + ribbon_h / 2), text, _rgb(pal.card_ink))
    coin = max(w * 0.22, scene.size * 0.034)
    angle = math.radians(40)
    _badge(
        tile,
        (cx + d / 2 * math.cos(angle) * 0.9, by + d / 2 + d / 2 * math.sin(angle) * 0.9),
        coin,
        _quantity(item.quantity),
        gold,
        red_dark,
        gold_dark,
        max(1, round(w * 0.01)),
    )
    return tile, pad


# painter and the range of card height / width it draws well
_FRAMES: dict[str, tuple[Callable[[_Item, int, int, _Scene], tuple[Image.Image, int]], tuple[float, float]]] = {
    "panel": (_frame_panel, (0.95, 1.3)),
    "polaroid": (_frame_polaroid, (1.12, 1.22)),
    "floating": (_frame_floating, (1.0, 1.3)),
    "sticker": (_frame_sticker, (0.95, 1.3)),
    "niche": (_frame_niche, (1.2, 1.6)),
    "shelf": (_frame_shelf, (1.2, 1.55)),
    "ornament": (_frame_ornament, (1.3, 1.4)),
}


# ------------------------------------------------------------------------------------------------ titles


def _count_label(lines: tuple[CartLine, ...]) -> str:
    """Returns how many items the cart holds, in words, e.g. '7 items'."""
    units = sum(max(1, line.quantity) for line in lines)
    return f"{units} item" if units == 1 else f"{units} items"


def _title(canvas: Image.Image, look: Look, box: _Box, count: str) -> None:
    """Draws the heading ('Your cart' and how many items) in the style's manner."""
    pal = look.palette
    draw = ImageDraw.Draw(canvas)
    ink, muted, accent = _rgb(pal.ink), _rgb(pal.muted), _rgb(pal.accent)
    size = canvas.width
    cx, mid = box.x + box.w / 2, box.y + box.h / 2
    hair = max(1, size // 900)
    if look.title == "bold":
        face = font(box.h * 0.66)
        width = draw_line(
            draw, box.x, top_for_middle(face, mid), "Your cart", face, ink, stroke=bold_stroke(face, True), align="l"
        )
        pill = box.h * 0.42
        cface = font(pill * 0.5)
        pw = line_width(count, cface) + pill
        left = round(box.x + width + box.h * 0.35)
        _fill(canvas, (255, 255, 255, 56), _rounded(round(pw), round(pill), pill / 2), (left, round(mid - pill / 2)))
        draw_line(draw, left + pw / 2, top_for_middle(cface, mid), count, cface, ink)
    elif look.title == "ruled":
        face = font(box.h * 0.56)
        top = box.y
        width = draw_line(draw, cx, top, "Your cart", face, ink, tracking=size_of(face) * 0.03)
        rule_y = top + size_of(face) * 0.62
        for sign in (-1, 1):
            inner = cx + sign * (width / 2 + box.h * 0.3)
            outer = inner + sign * box.w * 0.17
            draw.line((inner, rule_y, outer, rule_y), fill=ink, width=max(1, size // 500))
            draw.line((inner, rule_y + size * 0.006, outer, rule_y + size * 0.006), fill=ink, width=hair)
        cface = font(box.h * 0.25)
        draw_line(draw, cx, top + size_of(face) * 1.18, f"~ {count} ~", cface, muted, tracking=size_of(cface) * 0.1)
    elif look.title == "split":
        face = font(box.h * 0.32)
        tracking = look.tracking * size_of(face) * 1.4
        draw_line(draw, box.x, top_for_middle(face, mid), "YOUR CART", face, ink, tracking=tracking, align="l")
        draw_line(
            draw, box.x + box.w, top_for_middle(face, mid), count.upper(), face, muted, tracking=tracking, align="r"
        )
        y = box.y + box.h * 0.92
        draw.line((box.x, y, box.x + box.w, y), fill=_mix(ink, _tones(look, 1)[0], 0.75), width=hair)
    elif look.title == "sticker":
        face = font(box.h * 0.52)
        stroke = bold_stroke(face, True)
        w, h = round(line_width("Your cart", face, 0, stroke) + box.h * 0.7), round(box.h * 0.84)
        line, room = max(2, round(size * 0.004)), 20
        label = Image.new("RGBA", (w + 2 * room, h + 2 * room), (0, 0, 0, 0))
        _fill(label, ink, _rounded(w, h, h * 0.3), (room + line * 2, room + line * 2))
        _fill(label, ink, _rounded(w, h, h * 0.3), (room, room))
        _fill(
            label,
            _tones(look, 4)[3],
            _rounded(w - 2 * line, h - 2 * line, h * 0.3 - line),
            (room + line, room + line),
        )
        draw_line(
            ImageDraw.Draw(label),
            room + w / 2,
            top_for_middle(face, room + h / 2),
            "Your cart",
            face,
            ink,
            stroke=stroke,
        )
        label = _rotated(label, 2.5)
        _composite(canvas, label, (box.x - room, round(mid - label.height / 2)))
        pill = box.h * 0.46
        pw = line_width(count, font(pill * 0.5), 0, 1) + pill * 0.55
        _badge(
            canvas,
            (box.x + label.width - 2 * room + box.h * 0.25 + pw / 2, mid),
            pill,
            count,
            accent,
            _rgb(pal.accent_ink),
            ink,
            line,
        )
    elif look.title == "engraved":
        face = font(box.h * 0.38)
        draw_line(draw, cx, box.y, "YOUR CART", face, ink, tracking=size_of(face) * look.tracking * 1.5)
        y = box.y + size_of(face) * 1.45
        half, d = box.w * 0.12, size * 0.007
        draw.line((cx - half, y, cx - d * 2, y), fill=accent, width=hair)
        draw.line((cx + d * 2, y, cx + half, y), fill=accent, width=hair)
        draw.polygon([(cx, y - d), (cx + d, y), (cx, y + d), (cx - d, y)], fill=accent)
        cface = font(box.h * 0.18)
        draw_line(
            draw, cx, y + size * 0.018, count.upper(), cface, muted, tracking=size_of(cface) * look.tracking * 1.5
        )
    elif look.title == "chalkboard":
        face, cface = font(box.h * 0.44), font(box.h * 0.21)
        text_w = max(line_width("Your cart", face), line_width(count, cface))
        frame = max(4, round(size * 0.011))
        w = round(text_w + box.h * 1.1)
        h = round(size_of(face) * 1.1 + size_of(cface) * 1.3 + box.h * 0.22 + 2 * frame)
        left, top = round(cx - w / 2), round(box.y + (box.h - h) / 2)
        board = _rounded(w, h, frame)
        _cast(canvas, board, (left + 3, top + 6), size * 0.01, 0.45, _rgb(pal.shadow))
        _fill(canvas, _rgb("#8c6240"), board, (left, top))
        _fill(canvas, _rgb("#2f3b35"), Image.new("L", (w - 2 * frame, h - 2 * frame), 255), (left + frame, top + frame))
        chalk = Image.new("L", (w - 2 * frame, h - 2 * frame), 0)
        cdraw = ImageDraw.Draw(chalk)
        inner_top = (chalk.height - size_of(face) * 1.1 - size_of(cface) * 1.3) / 2
        draw_line(cdraw, chalk.width / 2, inner_top, "Your cart", face, 235, stroke=bold_stroke(face, True))
        draw_line(
            cdraw, chalk.width / 2, inner_top + size_of(face) * 1.15, count, cface, 190, tracking=size_of(cface) * 0.06
        )
        dust = _noise(chalk.size, 70).point(lambda v: 255 if v > 55 else 130)
        _fill(canvas, ink, ImageChops.multiply(chalk, dust), (left + frame, top + frame))
    else:  # sparkle
        face = font(box.h * 0.56)
        top = box.y
        width = draw_line(draw, cx, top, "Your cart", face, ink, stroke=bold_stroke(face, True))
        star_y = top - top_for_middle(face, 0.0)
        gold = _rgb("#f3c969")
        for sign in (-1, 1):
            _sparkle(draw, cx + sign * (width / 2 + box.h * 0.35), star_y, box.h * 0.17, gold)
            _sparkle(draw, cx + sign * (width / 2 + box.h * 0.64), star_y - box.h * 0.15, box.h * 0.08, gold)
        cface = font(box.h * 0.24)
        draw_line(draw, cx, top + size_of(face) * 1.2, count, cface, muted, tracking=size_of(cface) * 0.06)


# ------------------------------------------------------------------------------------------------ composition


class _Collage:
    """One drawing: the request, its look, and the steps from backdrop to PNG."""

    def __init__(self, request: GenerationInput, progress: Progress) -> None:
        self.request = request
        self.progress = progress
        self.look = request.style.look
        self.size = max(64, int(request.size))
        # Seeded by the cart's products so the same cart always draws the same picture.
        seed = "|".join([request.style.name, *(line.product.id for line in request.lines)])
        self.rng = random.Random(zlib.crc32(seed.encode()))
        self.reported = 0.0

    def report(self, fraction: float) -> None:
        """Reports progress, never going backwards."""
        self.reported = max(self.reported, min(1.0, fraction))
        self.progress(self.reported)

    def draw(self) -> Picture:
        """Draws the whole picture and encodes it as PNG."""
        size, look = self.size, self.look
        canvas = self.backdrop()
        self.report(0.1)
        margin = round(size * (0.075 if look.backdrop == "velvet" else 0.055))
        top = margin + (round(size * 0.03) if look.backdrop == "bokeh" else 0)
        title = _Box(margin, top, size - 2 * margin, round(size * 0.09))
        _title(canvas, look, title, _count_label(self.request.lines))
        content_top = title.y + title.h + round(size * 0.035)
        self.compose(canvas, _Box(margin, content_top, size - 2 * margin, size - content_top - margin))
        image = canvas.convert("RGB")
        if look.grain > 0:
            image = _add_noise(image, _noise((size, size), 16 * look.grain, clump=max(1.0, size / 800)))
        self.report(0.95)
        out = io.BytesIO()
        image.save(out, format="PNG", compress_level=4)
        self.report(1.0)
        return Picture(data=out.getvalue(), mime_type="image/png")

    def backdrop(self) -> Image.Image:
        """Returns the shopper's background toned for the style, or the style's own backdrop, as RGBA."""
        size, look = self.size, self.look
        photo = _decode(self.request.background, size) if self.request.background is not None else None
        base = (
            _photo_backdrop(photo, size, look) if photo is not None else _BACKDROPS[look.backdrop](size, look, self.rng)
        )
        canvas = _vignette(base, look.vignette, _rgb(look.palette.shadow)).convert("RGBA")
        if look.backdrop == "bokeh":
            _string_lights(canvas)
        elif look.backdrop == "velvet":
            _gold_frame(canvas, look)
        elif look.backdrop == "confetti" and photo is not None:
            dots = Image.new("RGBA", (size, size), (0, 0, 0, 0))
            _confetti(dots, _tones(look, 4)[3:], self.rng, 40)
            canvas.alpha_composite(dots)
        return canvas

    def items(self, box_side: int) -> list[_Item]:
        """Decodes and prepares each cart line's picture for a card about box_side pixels wide."""
        swatches = [_rgb(c) for c in self.look.palette.swatches]
        lines = self.request.lines
        items = []
        for index, line in enumerate(lines):
            image = _decode(line.picture, max(48, box_side))
            subject = _cut_out(image) if image is not None else None
            if subject is not None and self.look.sepia and self.look.frame != "polaroid":
                subject = dataclasses.replace(subject, image=_sepia(subject.image, self.look.sepia))
            name = line.product.name.strip() or line.product.id or "Product"
            items.append(_Item(name, line.quantity, swatches[index % len(swatches)], subject))
            self.report(0.1 + 0.4 * (index + 1) / len(lines))
        return items

    def compose(self, canvas: Image.Image, area: _Box) -> None:
        """Lays the cart's products out over the backdrop."""
        look, size = self.look, self.size
        painter, aspect = _FRAMES[look.frame]
        count = len(self.request.lines)
        gap = {"scatter": 0.2, "shelves": 0.14}.get(look.layout, 0.28 if look.frame == "floating" else 0.16)
        largest = size * (0.5 if count == 1 else 0.42)
        boxes = _grid(count, area, aspect, gap, largest)
        items = self.items(boxes[0].w)
        scene = _Scene(look, size, self.rng)
        if look.layout == "shelves":
            self.shelves(canvas, boxes, scene)
        for index, (item, box) in enumerate(zip(items, boxes, strict=True)):
            tile, pad = painter(item, box.w, box.h, scene)
            x, y = box.x - pad, box.y - pad
            if look.layout == "scatter" and look.tilt:
                turned = _rotated(tile, self.rng.uniform(0.35, 1.0) * look.tilt * (1 if index % 2 else -1))
                jitter = box.w * 0.03
                x += round(self.rng.uniform(-jitter, jitter)) - (turned.width - tile.width) // 2
                y += round(self.rng.uniform(-jitter, jitter)) - (turned.height - tile.height) // 2
                tile = turned
            _composite(canvas, tile, (x, y))
            self.report(0.5 + 0.4 * (index + 1) / count)

    def shelves(self, canvas: Image.Image, boxes: list[_Box], scene: _Scene) -> None:
        """Rustic: draws an oak plank on iron brackets under each row of products."""
        size = canvas.width
        oak, edge = _rgb("#a8743f"), _rgb("#6b4423")
        for top in sorted({box.y for box in boxes}):
            row = [b for b in boxes if b.y == top]
            w, h = row[0].w, row[0].h
            stand, thick, _, _, _ = _shelf_geometry(w, h, scene)
            left = min(b.x for b in row) - round(w * 0.12)
            right = max(b.x + b.w for b in row) + round(w * 0.12)
            y = top + stand
            draw = ImageDraw.Draw(canvas)
            for bx in (left + (right - left) * 0.08, right - (right - left) * 0.08):  # iron brackets
                draw.polygon(
                    [
                        (bx - thick * 0.3, y + thick),
                        (bx + thick * 0.3, y + thick),
                        (bx + thick * 0.3, y + thick * 2.6),
                        (bx - thick * 0.3, y + thick * 1.2),
                    ],
                    fill=(52, 44, 38, 255),
                )
            _cast(
                canvas,
                Image.new("L", (right - left, thick), 255),
                (left, y + thick * 0.5),
                size * 0.01,
                0.5,
                _rgb(self.look.palette.shadow),
            )
            plank = Image.new("RGB", (right - left, thick), oak)
            grain = Image.effect_noise((max(4, (right - left) // 40), max(2, thick)), 50).resize(plank.size, _BICUBIC)
            plank = _add_noise(plank, grain.point(lambda v: 128 + (v - 128) * 2 // 5))
            pdraw = ImageDraw.Draw(plank)
            pdraw.line((0, 0, plank.width, 0), fill=_mix(oak, (255, 240, 210), 0.4), width=max(1, thick // 6))
            pdraw.line((0, thick - 1, plank.width, thick - 1), fill=edge, width=max(1, thick // 4))
            canvas.paste(plank, (left, y))
