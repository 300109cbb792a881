"""The styles' own backdrops (gradient, paper, studio, confetti, velvet, wood, bokeh), and the shopper's photo as one.

A style's backdrop depends only on the style and the size, so it is drawn once and kept (bounded).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageFilter, ImageOps

from imagegen.domain import Picture
from imagegen.generators.collage.cutout import decode
from imagegen.generators.collage.kept import Kept
from imagegen.generators.collage.paint import (
    _BICUBIC,
    _BILINEAR,
    RGB,
    _add_noise,
    _cover,
    _mix,
    _noise,
    _radial,
    _rgb,
    _rgba,
    _sepia,
    _vignette,
)
from imagegen.styles import Look

_KEPT_BYTES = 32 * 1024 * 1024  # backdrops kept: a 1024 px one takes 4 MiB


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


_kept: Kept[Image.Image] = Kept(_KEPT_BYTES)


def backdrop_for(style: str, look: Look, size: int, background: Picture | None) -> Image.Image:
    """Returns a fresh RGBA canvas: the shopper's background toned for the style, or the style's own backdrop.

    The style's own backdrop depends only on the style and the size, so it is drawn once and kept
    (least recently used first out, within _KEPT_BYTES); the caller gets its own copy to draw on.
    """
    photo = decode(background, size) if background is not None else None
    rng = random.Random(zlib.crc32(f"{style}|{size}".encode()))
    if photo is not None:
        return _finish(_photo_backdrop(photo, size, look), look, rng, photo=True)
    key = (style, size)
    found, kept = _kept.lookup(key)
    if found and kept is not None:
        return kept.copy()
    canvas = _finish(_BACKDROPS[look.backdrop](size, look, rng), look, rng, photo=False)
    _kept.put(key, canvas.copy(), size * size * 4)
    return canvas


def _finish(base: Image.Image, look: Look, rng: random.Random, photo: bool) -> Image.Image:
    """Adds the style's vignette and its fixtures (string lights, gold rule, confetti) to a ground."""
    canvas = _vignette(base, look.vignette, _rgb(look.palette.shadow)).convert("RGBA")
    if look.backdrop == "bokeh":
        _string_lights(canvas)
    elif look.backdrop == "velvet":
        _gold_frame(canvas, look)
    elif look.backdrop == "confetti" and photo:
        dots = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        _confetti(dots, _tones(look, 4)[3:], rng, 40)
        canvas.alpha_composite(dots)
    return canvas
