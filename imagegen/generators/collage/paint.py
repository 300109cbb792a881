"""Drawing primitives of the collage: colours, anti-aliased masks, compositing, shadows, badges, tones."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

from PIL import Image, ImageChops, ImageColor, ImageDraw, ImageFilter, ImageOps

from imagegen.fonts import bold_stroke, draw_line, font, line_width, top_for_middle

RGB = tuple[int, int, int]


RGBA = tuple[int, int, int, int]


_SS = 3  # supersampling factor for anti-aliased shapes


_BICUBIC = Image.Resampling.BICUBIC


_BILINEAR = Image.Resampling.BILINEAR


_LANCZOS = Image.Resampling.LANCZOS


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


@lru_cache(maxsize=64)
def _scale_table(opacity: float) -> list[int]:
    """Returns the 256-entry table that scales an L band by opacity."""
    return [round(v * opacity) for v in range(256)]


def _shadow(mask: Image.Image, blur: float, opacity: float, colour: RGB) -> Image.Image:
    """Returns a soft RGBA shadow of the mask's shape, as big as the mask (pad the mask to give it room)."""
    alpha = mask
    if blur >= 0.5:
        # Blurring a reduced copy looks the same for soft shadows: the softer, the smaller the copy
        # (a blur of 3 px or more per reduced pixel hides the reduction), so big pictures stay cheap.
        factor = max(1, min(8, int(blur / 3), min(alpha.size) // 24))
        small = alpha.reduce(factor) if factor > 1 else alpha
        small = small.filter(ImageFilter.GaussianBlur(blur * small.width / alpha.width))
        alpha = small.resize(alpha.size, _BILINEAR) if small.size != alpha.size else small
    layer = _solid(mask.size, colour)
    layer.putalpha(alpha.point(_scale_table(opacity)))
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
    # Bilinear: the turns are small, and it costs half of bicubic on big tiles.
    return tile.convert("RGBa").rotate(degrees, resample=_BILINEAR, expand=True).convert("RGBA")


def _sparkle(draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float, fill: RGB | RGBA) -> None:
    """Draws a four-pointed sparkle."""
    points = []
    for i in range(8):
        angle = math.pi / 4 * i - math.pi / 2
        r = radius if i % 2 == 0 else radius * 0.26
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    draw.polygon(points, fill=fill)


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


def _radial(size: tuple[int, int] | int, inner: float, outer: float) -> Image.Image:
    """Returns an L mask that is 0 within inner and 255 beyond outer (fractions of the half-size)."""
    w, h = (size, size) if isinstance(size, int) else size
    lo, hi = inner * 255, max(inner * 255 + 1, outer * 255)
    mask = Image.radial_gradient("L").point(
        lambda v: 0 if v <= lo else 255 if v >= hi else round((v - lo) * 255 / (hi - lo))
    )
    return mask.resize((w, h), _BILINEAR)


@lru_cache(maxsize=24)
def _noise(size: tuple[int, int], sigma: float, clump: float = 1.0) -> Image.Image:
    """Returns grey noise around 128 whose grains are about clump pixels across (shared: never modify it).

    Kept once made (at most 24, a 2048 px grain is 4 MiB): the same grain is as good as a new one.
    """
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
