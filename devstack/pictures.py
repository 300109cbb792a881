"""Product pictures drawn with Pillow: stand-ins for the shop's photos, which we must not ship.

Like the shop's photos they show the product on light grey seamless paper with a soft shadow, a slight
vignette and sensor noise, as a 700 x 700 JPEG at about quality 85.
"""

from __future__ import annotations

import io
import math
import random
import threading
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

Color = tuple[int, int, int]
Point = tuple[float, float]
Stops = Sequence[tuple[float, Color]]

# Drawings are made on a 1000x1000 design grid, rendered at twice the requested size and downsampled.
_SUPERSAMPLE = 2

_cache: dict[tuple[str, int], bytes] = {}
_cache_lock = threading.Lock()


# ---------------------------------------------------------------- colour helpers


def _mix(a: Color, b: Color, t: float) -> Color:
    """Blends colour a towards b by t."""
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


def _scale(c: Color, f: float) -> Color:
    """Darkens (f < 1) or brightens (f > 1) a colour."""
    return tuple(max(0, min(255, round(x * f))) for x in c)  # type: ignore[return-value]


def _luts(stops: Stops) -> list[int]:
    """Builds a 768-entry RGB lookup table (for Image.point on an RGB-merged L image) from stops."""
    stops = sorted(stops)
    channels: list[list[int]] = [[], [], []]
    for i in range(256):
        t = i / 255
        lo = stops[0]
        hi = stops[-1]
        for a, b in zip(stops, stops[1:]):
            if a[0] <= t <= b[0]:
                lo, hi = a, b
                break
        if t <= stops[0][0]:
            lo = hi = stops[0]
        elif t >= stops[-1][0]:
            lo = hi = stops[-1]
        span = hi[0] - lo[0]
        f = 0.0 if span <= 0 else (t - lo[0]) / span
        col = _mix(lo[1], hi[1], f)
        for ch in range(3):
            channels[ch].append(col[ch])
    return channels[0] + channels[1] + channels[2]


def _colorize(gray: Image.Image, stops: Stops) -> Image.Image:
    """Maps an L image (0..255 = position 0..1) through colour stops to RGB."""
    return Image.merge("RGB", (gray, gray, gray)).point(_luts(stops))


def _strip(stops: Stops, width: int = 256) -> Image.Image:
    """A one-row RGB image running through the colour stops from left to right."""
    gray = Image.new("L", (width, 1))
    gray.putdata([round(i * 255 / (width - 1)) for i in range(width)])
    return _colorize(gray, stops)


def _cylinder(base: Color, gloss: float = 0.6, dark: float = 0.55, rim: float = 0.85) -> Stops:
    """Colour stops across a glossy cylinder lit from the upper left."""
    high = _mix(base, (255, 255, 255), gloss)
    return [
        (0.0, _scale(base, rim)),
        (0.08, _scale(base, 0.95)),
        (0.22, _mix(base, (255, 255, 255), gloss * 0.35)),
        (0.28, high),
        (0.33, _mix(base, (255, 255, 255), gloss * 0.3)),
        (0.5, base),
        (0.82, _scale(base, dark)),
        (0.93, _scale(base, dark * 0.9)),
        (1.0, _scale(base, dark * 1.25)),
    ]


def _metal(base: Color) -> Stops:
    """Colour stops across a polished metal cylinder: high-contrast reflected bands."""
    return [
        (0.0, _scale(base, 0.55)),
        (0.1, _mix(base, (255, 255, 255), 0.45)),
        (0.2, _scale(base, 0.8)),
        (0.3, _mix(base, (255, 255, 255), 0.85)),
        (0.38, _mix(base, (255, 255, 255), 0.3)),
        (0.55, _scale(base, 0.9)),
        (0.7, _scale(base, 0.45)),
        (0.85, _scale(base, 0.7)),
        (0.95, _scale(base, 0.4)),
        (1.0, _scale(base, 0.6)),
    ]


# ---------------------------------------------------------------- geometry helpers


class _Path:
    """A polyline built from lines and cubic Bézier curves, in design units."""

    def __init__(self, start: Point) -> None:
        self.points: list[Point] = [start]

    def line(self, p: Point) -> _Path:
        """Adds a straight segment."""
        self.points.append(p)
        return self

    def curve(self, c1: Point, c2: Point, p: Point, steps: int = 28) -> _Path:
        """Adds a cubic Bézier segment from the last point to p."""
        x0, y0 = self.points[-1]
        for i in range(1, steps + 1):
            t = i / steps
            u = 1 - t
            a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
            self.points.append(
                (a * x0 + b * c1[0] + c * c2[0] + d * p[0], a * y0 + b * c1[1] + c * c2[1] + d * p[1])
            )
        return self


def _mirror(points: Sequence[Point], cx: float = 500) -> list[Point]:
    """Mirrors points about the vertical line x = cx, in reverse order (to close a symmetric outline)."""
    return [(2 * cx - x, y) for x, y in reversed(points)]


def _ellipse_points(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 40) -> list[Point]:
    """Points of a (possibly rotated) ellipse."""
    ca, sa = math.cos(angle), math.sin(angle)
    out = []
    for i in range(n):
        t = 2 * math.pi * i / n
        x, y = rx * math.cos(t), ry * math.sin(t)
        out.append((cx + x * ca - y * sa, cy + x * sa + y * ca))
    return out


# ---------------------------------------------------------------- the canvas


class _Canvas:
    """An RGB picture on a 1000-unit design grid, with masks, gradients and shading helpers."""

    def __init__(self, px: int, backdrop: Color = (238, 235, 230)) -> None:
        self.px = px
        self.k = px / 1000
        self.size = (px, px)
        self.img = self._backdrop(backdrop)

    # -- coordinates
    def s(self, v: float) -> float:
        """Design units to pixels."""
        return v * self.k

    def pts(self, points: Iterable[Point]) -> list[Point]:
        """Design points to pixel points."""
        return [(x * self.k, y * self.k) for x, y in points]

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        """A design-unit box in pixels."""
        return [x0 * self.k, y0 * self.k, x1 * self.k, y1 * self.k]

    # -- masks
    def mask(self) -> Image.Image:
        """An empty full-size L mask."""
        return Image.new("L", self.size, 0)

    def poly(self, points: Sequence[Point]) -> Image.Image:
        """A mask of a filled polygon."""
        m = self.mask()
        ImageDraw.Draw(m).polygon(self.pts(points), fill=255)
        return m

    def ellipse(self, cx: float, cy: float, rx: float, ry: float) -> Image.Image:
        """A mask of a filled ellipse."""
        m = self.mask()
        ImageDraw.Draw(m).ellipse(self.box(cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
        return m

    def stroke(self, points: Sequence[Point], width: float, closed: bool = False) -> Image.Image:
        """A mask of a thick polyline with round joints and caps."""
        m = self.mask()
        p = self.pts(points)
        if closed:
            p = p + p[:1]
        w = max(1.0, self.s(width))
        r = w / 2
        d = ImageDraw.Draw(m)
        # Segments plus a disc at every vertex: Pillow's own wide-line joints leave spikes on dense curves.
        for a, b in zip(p, p[1:]):
            d.line([a, b], fill=255, width=max(1, round(w)))
        if r >= 1.5:
            for x, y in p:
                d.ellipse([x - r, y - r, x + r, y + r], fill=255)
        return m

    # -- gradients (full-size images)
    def linear(self, p0: Point, p1: Point, stops: Stops) -> Image.Image:
        """An RGB linear gradient from p0 (position 0) to p1 (position 1), clamped outside."""
        (x0, y0), (x1, y1) = self.pts([p0, p1])
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy or 1.0
        # A tall 1-px ramp padded with 0 above and 255 below, so the affine lookup clamps.
        pad = 4096
        ramp = Image.new("L", (1, 256 + 2 * pad))
        ramp.putdata([0] * pad + list(range(256)) + [255] * pad)
        a, b = 255 * dx / length2, 255 * dy / length2
        gray = ramp.transform(
            self.size,
            Image.Transform.AFFINE,
            (0, 0, 0, a, b, pad - a * x0 - b * y0),
            resample=Image.Resampling.BILINEAR,
        )
        return _colorize(gray, stops)

    def radial(self, cx: float, cy: float, rx: float, ry: float, stops: Stops) -> Image.Image:
        """An RGB elliptical gradient: position 0 at the centre, 1 at the rim and beyond."""
        src = Image.radial_gradient("L")  # 256x256, 0 at centre, 255 at radius 128
        x0, y0, rxp, ryp = self.s(cx), self.s(cy), self.s(rx), self.s(ry)
        gray = src.transform(
            self.size,
            Image.Transform.AFFINE,
            (128 / rxp, 0, 128 - 128 * x0 / rxp, 0, 128 / ryp, 128 - 128 * y0 / ryp),
            resample=Image.Resampling.BILINEAR,
            fillcolor=255,
        )
        return _colorize(gray, stops)

    # -- painting
    def paint(self, mask: Image.Image, fill: Color | Image.Image, alpha: float = 1.0) -> None:
        """Paints a colour or a full-size image through a mask, at an overall opacity."""
        box = mask.getbbox()
        if box is None:
            return
        # Work on the mask's bounding box only: most shapes are small next to the canvas.
        region = mask.crop(box)
        if alpha < 1.0:
            region = region.point(lambda v: round(v * alpha))
        if isinstance(fill, Image.Image):
            self.img.paste(fill.crop(box), box, region)
        else:
            self.img.paste(fill, box, region)

    def blur(self, mask: Image.Image, radius: float) -> Image.Image:
        """A Gaussian-blurred copy of a mask, radius in design units."""
        box = mask.getbbox()
        if box is None:
            return mask.copy()
        r = self.s(radius)
        margin = math.ceil(3 * r) + 2
        box = (max(0, box[0] - margin), max(0, box[1] - margin),
               min(self.px, box[2] + margin), min(self.px, box[3] + margin))
        out = self.mask()
        out.paste(mask.crop(box).filter(ImageFilter.GaussianBlur(r)), box[:2])
        return out

    def shadow(self, cx: float, cy: float, rx: float, ry: float, blur: float, alpha: float,
               color: Color = (70, 62, 55)) -> None:
        """A soft elliptical shadow on the floor."""
        self.paint(self.blur(self.ellipse(cx, cy, rx, ry), blur), color, alpha)

    def shadow_of(self, mask: Image.Image, dx: float, dy: float, blur: float, alpha: float,
                  color: Color = (70, 62, 55)) -> None:
        """A soft drop shadow of a shape, offset in design units."""
        moved = ImageChops.offset(mask, round(self.s(dx)), round(self.s(dy)))
        self.paint(self.blur(moved, blur), color, alpha)

    def bevel(self, mask: Image.Image, radius: float, dark: float = 0.35, light: float = 0.25,
              direction: Point = (-0.6, -0.8), dark_color: Color = (20, 12, 8)) -> None:
        """Rounds a flat shape: darkens edges facing away from the light, brightens those facing it."""
        blurred = self.blur(mask, radius)
        dx, dy = round(self.s(direction[0] * radius * 0.7)), round(self.s(direction[1] * radius * 0.7))
        toward = ImageChops.offset(blurred, dx, dy)
        away = ImageChops.offset(blurred, -dx, -dy)
        if dark > 0:
            self.paint(ImageChops.multiply(mask, ImageChops.invert(toward)), dark_color, dark)
        if light > 0:
            self.paint(ImageChops.multiply(mask, ImageChops.invert(away)), (255, 255, 255), light)

    def sheen(self, clip: Image.Image, points: Sequence[Point], width: float, blur: float, alpha: float,
              color: Color = (255, 255, 255)) -> None:
        """A soft highlight stroke, clipped to a shape."""
        m = self.blur(self.stroke(points, width), blur)
        self.paint(ImageChops.multiply(m, clip), color, alpha)

    def dashes(self, points: Sequence[Point], dash: float, gap: float, width: float, color: Color,
               alpha: float = 1.0, clip: Image.Image | None = None) -> None:
        """A dashed line (stitching) along a polyline."""
        m = self.mask()
        d = ImageDraw.Draw(m)
        w = max(1, round(self.s(width)))
        on = True
        seg: list[Point] = [points[0]]
        left = dash
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            length = math.hypot(x1 - x0, y1 - y0)
            t = 0.0
            while length > 0 and t < length:
                step = min(left, length - t)
                t += step
                left -= step
                p = (x0 + (x1 - x0) * t / length, y0 + (y1 - y0) * t / length)
                if on:
                    seg.append(p)
                if left <= 1e-9:
                    if on and len(seg) > 1:
                        d.line(self.pts(seg), fill=255, width=w, joint="curve")
                    on = not on
                    left = dash if on else gap
                    seg = [p]
        if on and len(seg) > 1:
            d.line(self.pts(seg), fill=255, width=w, joint="curve")
        if clip is not None:
            m = ImageChops.multiply(m, clip)
        self.paint(m, color, alpha)

    def lathe(self, cx: float, profile: Sequence[tuple[float, float]], stops: Stops, e: float = 0.2,
              paint: bool = True) -> Image.Image:
        """Draws a turned (round) object standing upright, seen from slightly above.

        profile lists (y, radius) pairs in design units, top to bottom; every horizontal cross-section is
        an ellipse of height radius*e, and the surface is shaded across its width by the colour stops.
        Returns the object's mask (and paints it unless paint is False).
        """
        ys = [self.s(y) for y, _ in profile]
        rs = [self.s(r) for _, r in profile]
        cxp = self.s(cx)
        # Half-width of the silhouette on every pixel row: the widest cross-section ellipse crossing it.
        half: dict[int, float] = {}
        for row in range(int(ys[0]), int(math.ceil(ys[-1])) + 1):
            y = min(max(row + 0.5, ys[0]), ys[-1])
            i = next((j for j in range(len(ys) - 1) if ys[j] <= y <= ys[j + 1]), len(ys) - 2)
            span = ys[i + 1] - ys[i]
            r = rs[i] if span <= 0 else rs[i] + (rs[i + 1] - rs[i]) * (y - ys[i]) / span
            ry = r * e
            reach = int(ry)
            for dy in range(-reach, reach + 1):
                h = r * math.sqrt(max(0.0, 1 - (dy / ry) ** 2)) if ry > 0 else r
                if h > half.get(row + dy, 0.0):
                    half[row + dy] = h
        m = self.mask()
        d = ImageDraw.Draw(m)
        fill = Image.new("RGB", self.size)
        strip = _strip(stops)
        for row, h in half.items():
            x0, x1 = round(cxp - h), round(cxp + h)
            if x1 <= x0 or not 0 <= row < self.px:
                continue
            d.line([(x0, row), (x1 - 1, row)], fill=255)
            fill.paste(strip.resize((x1 - x0, 1), Image.Resampling.BILINEAR), (x0, row))
        if paint:
            self.paint(m, fill)
        return m

    def text(self, xy: Point, text: str, size: float, color: Color, alpha: float = 1.0, bold: bool = True) -> None:
        """Centred text in Pillow's bundled font (the same on every machine, so pictures stay identical)."""
        px = round(self.s(size))
        m = self.mask()
        ImageDraw.Draw(m).text(self.pts([xy])[0], text, fill=255, font=ImageFont.load_default(px), anchor="mm",
                               stroke_width=max(1, round(px * 0.05)) if bold else 0, stroke_fill=255)
        self.paint(m, color, alpha)

    # -- backdrop and output
    def _backdrop(self, tint: Color) -> Image.Image:
        """A seamless studio sweep: light wall fading into a slightly darker floor, lit at the centre."""
        wall = _mix((250, 249, 247), tint, 0.35)
        floor = _mix((236, 233, 228), tint, 0.6)
        base = self.linear((0, 0), (0, 1000), [
            (0.0, _scale(wall, 0.97)), (0.45, wall), (0.7, _mix(wall, floor, 0.7)), (1.0, _scale(floor, 0.95)),
        ])
        light = self.radial(500, 470, 560, 520, [(0.0, (255, 255, 255)), (1.0, (0, 0, 0))]).convert("L")
        base.paste((255, 255, 255), (0, 0, self.px, self.px), light.point(lambda v: round(v * 0.35)))
        return base

    def jpeg(self, size: int) -> bytes:
        """Downsamples to size x size and encodes it as the shop's photos are: a slight vignette, sensor
        noise, JPEG at quality 85 (the same noise every time, so a picture is the same in every process)."""
        small = self.img.resize((size, size), Image.Resampling.LANCZOS)
        y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
        vignette = 1.0 - 0.14 * ((x - 0.5) ** 2 + (y - 0.5) ** 2) * 2.0
        noise = np.random.default_rng(size).normal(0.0, 2.5, (size, size, 1))
        photo = np.asarray(small, np.float32) * vignette[..., None] + noise
        out = io.BytesIO()
        Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=85)
        return out.getvalue()


# ---------------------------------------------------------------- the products


def _sunglasses(c: _Canvas) -> None:
    """Black wayfarer-style sunglasses, front view from slightly above, temples open."""
    frame = (28, 28, 32)
    dy = 80
    c.shadow(500, 700 + dy - 30, 380, 40, 26, 0.3)
    c.shadow(500, 650 + dy - 40, 320, 16, 10, 0.3)

    # Temples recede behind the front; from above they rise towards the back and thin with distance.
    for side in (-1, 1):
        arm = _Path((500 + side * 318, 452 + dy)).curve((500 + side * 318, 380 + dy), (500 + side * 296, 280 + dy),
                                                        (500 + side * 268, 205 + dy)).points
        m = c.poly(_taper(arm, 22, 13))
        c.shadow_of(m, 0, 14, 10, 0.15)
        c.paint(m, frame)
        c.sheen(m, [(x - side * 4, y) for x, y in arm], 4, 2, 0.35)

    # One lens outline (left), mirrored for the right.
    def lens(cx: float) -> list[Point]:
        p = _Path((cx - 122, 438 + dy))
        p.curve((cx - 60, 428 + dy), (cx + 60, 428 + dy), (cx + 112, 440 + dy))
        p.curve((cx + 122, 500 + dy), (cx + 100, 572 + dy), (cx + 40, 590 + dy))
        p.curve((cx + 5, 598 + dy), (cx - 60, 598 + dy), (cx - 92, 584 + dy))
        p.curve((cx - 122, 560 + dy), (cx - 132, 490 + dy), (cx - 122, 438 + dy))
        return p.points[:-1]

    left = lens(330)
    right = [(1000 - x, y) for x, y in left][::-1]
    front = ImageChops.lighter(c.poly(_grow_outline(left, 24)), c.poly(_grow_outline(right, 24)))
    # Brow bar and bridge.
    brow = _Path((170, 420 + dy)).curve((290, 396 + dy), (420, 402 + dy), (470, 420 + dy)).line((530, 420 + dy))
    brow.curve((580, 402 + dy), (710, 396 + dy), (830, 420 + dy)).line((832, 478 + dy)).line((700, 470 + dy))
    brow.line((540, 462 + dy)).curve((520, 452 + dy), (480, 452 + dy), (460, 462 + dy)).line((300, 470 + dy))
    brow.line((168, 478 + dy))
    front = ImageChops.lighter(front, c.poly(brow.points))
    c.shadow_of(front, 0, 22, 14, 0.22)
    c.paint(front, c.linear((0, 400 + dy), (0, 620 + dy), [(0, (62, 62, 68)), (0.3, frame), (1, (12, 12, 14))]))
    c.bevel(front, 10, dark=0.5, light=0.35)

    for outline in (left, right):
        lm = c.poly(outline)
        x0 = min(x for x, _ in outline)
        c.paint(lm, c.linear((0, 430 + dy), (0, 600 + dy), [(0, (20, 24, 32)), (0.55, (50, 48, 54)),
                                                            (1, (108, 88, 74))]))
        # Sky reflection: a soft diagonal band and a crisp highlight.
        c.sheen(lm, [(x0 + 40, 610 + dy), (x0 + 180, 420 + dy)], 55, 18, 0.16)
        c.sheen(lm, [(x0 + 32, 478 + dy), (x0 + 72, 455 + dy)], 8, 2, 0.6)
        c.bevel(lm, 14, dark=0.45, light=0.0)
    # Hinge studs and a gloss line along the brow.
    for x in (185, 815):
        c.paint(c.ellipse(x, 447 + dy, 9, 9), (205, 205, 210))
        c.paint(c.ellipse(x - 2, 445 + dy, 4, 4), (255, 255, 255))
    c.sheen(front, [(205, 420 + dy), (330, 408 + dy), (440, 418 + dy)], 7, 3, 0.5)
    c.sheen(front, [(560, 418 + dy), (670, 408 + dy), (795, 420 + dy)], 7, 3, 0.4)


def _tank_top(c: _Canvas) -> None:
    """A scoop-neck tank top laid flat, with ribbed trim and a hemmed bottom."""
    base = (64, 128, 172)
    neck = _Path((408, 130)).curve((410, 250), (440, 322), (500, 322)).points      # strap down to the scoop
    arm = _Path((338, 130)).curve((338, 265), (305, 385), (232, 408)).points        # strap down to the underarm
    side = _Path((232, 408)).curve((255, 520), (246, 700), (226, 884)).points      # side seam down to the hem
    hem = _Path((226, 884)).curve((320, 896), (420, 898), (500, 898)).points
    half = neck[::-1] + arm + side[1:] + hem[1:]
    outline = half + _mirror(half)[1:]
    front = c.poly(outline)
    # Inside of the back, seen through the scoop neck: the back neckline sits higher.
    back_neck = _Path((408, 140)).curve((425, 205), (575, 205), (592, 140)).points
    inside = ImageChops.subtract(c.poly(back_neck + [(592, 330), (408, 330)]), front)
    inside = ImageChops.multiply(inside, c.poly(neck + _mirror(neck)[1:]))
    garment = ImageChops.lighter(front, inside)

    c.shadow_of(garment, 6, 14, 18, 0.3)
    c.paint(front, c.linear((300, 150), (700, 900), [(0, _scale(base, 1.12)), (0.6, base), (1, _scale(base, 0.85))]))
    c.paint(inside, c.linear((0, 160), (0, 320), [(0, _scale(base, 0.5)), (1, _scale(base, 0.7))]))
    tag = c.poly([(482, 198), (518, 198), (517, 228), (483, 228)])
    c.paint(tag, (240, 238, 232))
    c.text((500, 213), "M", 18, (90, 90, 95))
    # Heathered cotton: a faint, seeded speckle.
    rng = random.Random(11)
    speck = c.mask()
    sd = ImageDraw.Draw(speck)
    for _ in range(5000):
        x, y = rng.uniform(200, 800), rng.uniform(120, 910)
        sd.point(c.pts([(x, y)]), fill=rng.randrange(80, 255))
    speck = speck.filter(ImageFilter.GaussianBlur(0.6))
    c.paint(ImageChops.multiply(speck, front), (255, 255, 255), 0.35)
    # Soft folds in the fabric.
    for pts, a in (([(330, 520), (420, 700), (440, 860)], 0.14), ([(630, 470), (600, 640), (650, 860)], 0.12),
                   ([(500, 420), (520, 600)], 0.07)):
        c.sheen(front, pts, 26, 22, a, (10, 30, 50))
    for pts, a in (([(360, 470), (450, 690), (470, 850)], 0.14), ([(660, 520), (630, 700)], 0.1)):
        c.sheen(front, pts, 20, 20, a)
    c.bevel(front, 22, dark=0.45, light=0.22, dark_color=(10, 25, 40))

    # Ribbed binding on the neckline and armholes, with a row of stitches beside it.
    trim = _scale(base, 0.86)
    neckline = neck + _mirror(neck)[1:]
    for path, off in ((neckline, -14), (arm, 14), (_mirror(arm), 14)):
        m = ImageChops.multiply(c.stroke(_offset_path(path, off / 2), 15), front)
        c.paint(m, trim)
        c.dashes(_offset_path(path, off * 1.25), 7, 6, 2.5, _scale(base, 0.6), 0.8, clip=front)
    hem_line = _Path((226, 856)).curve((320, 868), (420, 870), (500, 870)).points
    hem_line = hem_line + _mirror(hem_line)[1:]
    c.dashes(hem_line, 8, 6, 2.5, _scale(base, 0.6), 0.8, clip=front)
    c.dashes([(x, y + 9) for x, y in hem_line], 8, 6, 2.5, _scale(base, 0.6), 0.8, clip=front)


def _offset_path(points: Sequence[Point], d: float) -> list[Point]:
    """Offsets a polyline sideways by d design units (positive to the left of travel)."""
    out = []
    for i, (x, y) in enumerate(points):
        x0, y0 = points[max(0, i - 1)]
        x1, y1 = points[min(len(points) - 1, i + 1)]
        dx, dy = x1 - x0, y1 - y0
        n = math.hypot(dx, dy) or 1.0
        out.append((x + dy / n * d, y - dx / n * d))
    return out


def _grow_outline(points: Sequence[Point], d: float) -> list[Point]:
    """Offsets a closed, roughly convex outline outwards by d design units."""
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))
    sign = 1 if area > 0 else -1
    n = len(points)
    out = []
    for i, (x, y) in enumerate(points):
        (xa, ya), (xb, yb) = points[i - 1], points[(i + 1) % n]
        tx, ty = xb - xa, yb - ya
        length = math.hypot(tx, ty) or 1.0
        out.append((x + sign * ty / length * d, y - sign * tx / length * d))
    return out


def _taper(points: Sequence[Point], w0: float, w1: float) -> list[Point]:
    """Outline of a stroke along points whose width narrows from w0 to w1, with rounded ends."""
    n = len(points)
    left, right = [], []
    for i, (x, y) in enumerate(points):
        w = (w0 + (w1 - w0) * i / (n - 1)) / 2
        (xa, ya), (xb, yb) = points[max(0, i - 1)], points[min(n - 1, i + 1)]
        tx, ty = xb - xa, yb - ya
        length = math.hypot(tx, ty) or 1.0
        left.append((x + ty / length * w, y - tx / length * w))
        right.append((x - ty / length * w, y + tx / length * w))
    (xe, ye), (xp, yp) = points[-1], points[-2]
    a = math.atan2(ye - yp, xe - xp)
    turns = [a + math.pi / 2 - math.pi * j / 8 for j in range(9)]
    cap = [(xe + w1 / 2 * math.cos(t), ye + w1 / 2 * math.sin(t)) for t in turns]
    return left + cap + right[::-1]


def _watch(c: _Canvas) -> None:
    """A steel watch with a blue dial and a cognac leather strap, hands at ten past ten."""
    leather = (150, 86, 46)
    cx, cy = 500, 500
    c.shadow(cx + 20, cy + 30, 250, 420, 40, 0.3)

    def strap(y_from: float, y_to: float, w0: float, w1: float) -> list[Point]:
        sgn = 1 if y_to > y_from else -1
        p = _Path((cx - w0, y_from)).line((cx - w1, y_to - sgn * w1))
        p.curve((cx - w1, y_to), (cx + w1, y_to), (cx + w1, y_to - sgn * w1)).line((cx + w0, y_from))
        return p.points

    top = strap(360, 70, 92, 84)
    bottom = strap(640, 945, 92, 84)
    for outline in (top, bottom):
        m = c.poly(outline)
        c.shadow_of(m, 8, 12, 12, 0.3)
        c.paint(m, c.linear((cx - 92, 0), (cx + 92, 0), [(0, _scale(leather, 0.8)), (0.35, _scale(leather, 1.15)),
                                                          (1, _scale(leather, 0.72))]))
        c.bevel(m, 14, dark=0.45, light=0.2)
        c.dashes(_offset_path(outline, -14), 9, 7, 3, (235, 215, 180), 0.9, clip=m)
    for y in (760, 805, 850):
        c.paint(c.ellipse(cx, y, 11, 11), (45, 25, 14))
        c.paint(c.ellipse(cx + 2, y + 3, 7, 7), (80, 48, 28))
    # Buckle on the top strap.
    outer = _Path((cx - 105, 190)).line((cx - 105, 120)).curve((cx - 105, 85), (cx + 105, 85), (cx + 105, 120))
    inner = _Path((cx - 83, 180)).line((cx - 83, 125)).curve((cx - 83, 105), (cx + 83, 105), (cx + 83, 125))
    buckle = ImageChops.subtract(c.poly(outer.line((cx + 105, 190)).points), c.poly(inner.line((cx + 83, 180)).points))
    c.shadow_of(buckle, 4, 8, 6, 0.4)
    c.paint(buckle, c.linear((cx - 105, 0), (cx + 105, 0), _metal((190, 192, 198))))
    c.bevel(buckle, 5, dark=0.4, light=0.3)
    keeper = c.poly([(cx - 96, 240), (cx + 96, 240), (cx + 96, 262), (cx - 96, 262)])
    c.paint(keeper, _scale(leather, 0.8))
    c.bevel(keeper, 6, dark=0.4, light=0.2)

    # Lugs and crown.
    for sx in (-1, 1):
        for sy in (-1, 1):
            lug = c.poly([(cx + sx * 70, cy + sy * 150), (cx + sx * 105, cy + sy * 150),
                          (cx + sx * 100, cy + sy * 205), (cx + sx * 80, cy + sy * 205)])
            c.paint(lug, c.linear((cx - 110, 0), (cx + 110, 0), _metal((185, 188, 195))))
            c.bevel(lug, 5, dark=0.4, light=0.2)
    crown = c.poly([(cx + 195, cy - 28), (cx + 238, cy - 24), (cx + 238, cy + 24), (cx + 195, cy + 28)])
    c.paint(crown, c.linear((0, cy - 28), (0, cy + 28), _metal((190, 192, 198))))
    for y in range(-20, 21, 8):
        c.paint(c.stroke([(cx + 205, cy + y), (cx + 236, cy + y)], 2.5), (110, 112, 120))

    # Case, bezel and dial.
    case = c.ellipse(cx, cy, 200, 200)
    c.shadow_of(case, 10, 16, 16, 0.4)
    c.paint(case, c.linear((cx - 200, cy - 200), (cx + 200, cy + 200), [
        (0, (235, 236, 240)), (0.25, (160, 163, 172)), (0.45, (245, 246, 250)), (0.7, (120, 123, 132)),
        (1, (170, 173, 180))]))
    c.bevel(case, 10, dark=0.4, light=0.3)
    c.paint(c.ellipse(cx, cy, 176, 176), (60, 62, 70))
    dial = c.ellipse(cx, cy, 170, 170)
    c.paint(dial, c.radial(cx - 40, cy - 50, 260, 260, [(0, (48, 78, 140)), (0.6, (22, 40, 88)), (1, (10, 18, 45))]))
    # Sunburst texture.
    rays = c.mask()
    rd = ImageDraw.Draw(rays)
    for i in range(0, 360, 6):
        a = math.radians(i)
        rd.line(c.pts([(cx, cy), (cx + 170 * math.cos(a), cy + 170 * math.sin(a))]), fill=255, width=1)
    c.paint(ImageChops.multiply(rays, dial), (255, 255, 255), 0.06)

    # Hour indices (doubled at twelve) and minute ticks, each set painted through one mask.
    indices: list[list[Point]] = []
    for h in range(12):
        a = math.radians(h * 30 - 90)
        ca, sa = math.cos(a), math.sin(a)
        r0, r1 = (150, 112) if h % 3 else (152, 100)
        for off in ((-11, 11) if h == 0 else (0,)):
            indices.append([(cx + off + r0 * ca, cy + r0 * sa), (cx + off + r1 * ca, cy + r1 * sa)])
    marks = c.mask()
    for i, pts in enumerate(indices):
        marks = ImageChops.lighter(marks, c.stroke(pts, 10 if i < 2 else (13 if (i - 1) % 3 == 0 else 9)))
    c.paint(marks, (236, 238, 242))
    ticks = c.mask()
    td = ImageDraw.Draw(ticks)
    for minute in range(60):
        if minute % 5:
            a = math.radians(minute * 6 - 90)
            td.line(c.pts([(cx + 160 * math.cos(a), cy + 160 * math.sin(a)),
                           (cx + 152 * math.cos(a), cy + 152 * math.sin(a))]), fill=255, width=round(c.s(2.5)))
    c.paint(ticks, (200, 205, 215))
    c.text((cx, cy - 60), "DEVSTACK", 17, (230, 232, 238))
    c.text((cx, cy + 72), "AUTOMATIC", 11, (200, 205, 215), bold=False)

    def hand(angle_deg: float, length: float, width: float, color: Color, tail: float = 20) -> None:
        a = math.radians(angle_deg - 90)
        ca, sa = math.cos(a), math.sin(a)
        nx, ny = -sa, ca
        pts = [(cx - tail * ca + nx * width * 0.5, cy - tail * sa + ny * width * 0.5),
               (cx + length * 0.7 * ca + nx * width * 0.5, cy + length * 0.7 * sa + ny * width * 0.5),
               (cx + length * ca, cy + length * sa),
               (cx + length * 0.7 * ca - nx * width * 0.5, cy + length * 0.7 * sa - ny * width * 0.5),
               (cx - tail * ca - nx * width * 0.5, cy - tail * sa - ny * width * 0.5)]
        m = c.poly(pts)
        c.shadow_of(m, 5, 7, 4, 0.45, (0, 0, 10))
        c.paint(m, color)
        c.bevel(m, 3, dark=0.3, light=0.3)

    hand(-60, 100, 20, (225, 228, 235))
    hand(60, 148, 15, (235, 238, 245))
    hand(200, 158, 4, (226, 70, 50), tail=40)
    c.paint(c.ellipse(cx, cy, 13, 13), (210, 212, 218))
    c.paint(c.ellipse(cx, cy, 5, 5), (226, 70, 50))
    # Reflection on the crystal.
    glass = c.ellipse(cx, cy, 170, 170)
    c.paint(ImageChops.multiply(c.blur(c.ellipse(cx - 60, cy - 95, 150, 70), 20), glass), (255, 255, 255), 0.16)


def _loafers(c: _Canvas) -> None:
    """A pair of brown penny loafers in profile, toes to the right."""
    grow, lift = 1.1, -60  # the pair fills the frame and sits a little above centre of the floor
    c.shadow(510, 720, 440, 36, 24, 0.35)

    def shoe(dx: float, dy: float, k: float, shade: float) -> None:
        def t(p: Point) -> Point:
            return (500 + (p[0] - 500) * k * grow + dx, 740 + (p[1] - 740) * k * grow + dy + lift)

        def tp(points: Iterable[Point]) -> list[Point]:
            return [t(p) for p in points]

        leather = _scale((120, 62, 32), shade)
        sole_col = _scale((40, 28, 22), shade)
        stitch = _scale((214, 176, 130), shade)
        # Proportions of a real loafer: heel counter ~65 mm, instep ~75 mm, toe ~40 mm on a 290 mm last.
        up = _Path((200, 714))
        up.curve((184, 668), (186, 602), (212, 562))           # heel counter
        up.curve((270, 566), (350, 598), (432, 602))           # topline down to the throat
        up.curve((474, 592), (520, 554), (578, 548))           # instep
        up.curve((690, 546), (802, 572), (848, 640))           # vamp down to the toe
        up.curve((872, 676), (860, 712), (822, 714))           # rounded toe
        up.line((200, 714))
        upper = c.poly(tp(up.points))
        # The far side of the collar, lined in tan, shows above the near topline.
        lining = _Path((214, 566)).curve((285, 546), (385, 570), (444, 598))
        lining.curve((365, 598), (275, 566), (214, 566))
        c.paint(c.poly(tp(lining.points)), c.linear(t((220, 550)), t((440, 600)), [
            (0, _scale((206, 166, 122), shade)), (1, _scale((128, 92, 62), shade))]))
        # Sole with welt stitching, and a stacked leather heel.
        sole = _Path((196, 708)).line((830, 708)).curve((860, 706), (872, 716), (862, 728))
        sole.curve((820, 738), (640, 738), (480, 734)).line((345, 734)).line((345, 764)).line((204, 764))
        sole.line((196, 708))
        sm = c.poly(tp(sole.points))
        c.paint(sm, sole_col)
        for y in (743, 753):
            c.paint(ImageChops.multiply(c.stroke(tp([(200, y), (345, y)]), 2), sm), _scale((95, 70, 52), shade))
        c.bevel(sm, 5, dark=0.3, light=0.2)
        c.dashes(tp([(215, 720), (480, 722), (700, 721), (845, 716)]), 7, 6, 2.5, _scale((150, 120, 90), shade),
                 0.8, clip=sm)

        c.paint(upper, c.linear(t((300, 550)), t((600, 760)), [(0, _scale(leather, 1.35)), (0.5, leather),
                                                              (1, _scale(leather, 0.62))]))
        c.bevel(upper, 20, dark=0.55, light=0.18, dark_color=(25, 10, 5))
        # Polish: a shine along the toe and down the heel counter.
        c.sheen(upper, tp([(640, 562), (760, 575), (832, 625)]), 22, 12, 0.55)
        c.sheen(upper, tp([(760, 660), (815, 685)]), 10, 8, 0.25)
        c.sheen(upper, tp([(214, 600), (206, 680)]), 14, 10, 0.3)
        # Moc-toe apron seam and its stitching.
        seam = _Path((590, 590)).curve((690, 592), (800, 615), (852, 676)).points
        c.paint(ImageChops.multiply(c.stroke(tp(seam), 5), upper), _scale(leather, 0.5), 0.8)
        c.dashes(tp([(x, y + 11) for x, y in seam]), 8, 6, 3, stitch, 0.85, clip=upper)
        c.dashes(tp([(x, y - 10) for x, y in seam]), 8, 6, 3, stitch, 0.6, clip=upper)
        # Penny strap across the instep, with its slot.
        band = _Path((436, 601)).curve((480, 590), (530, 552), (596, 549)).line((606, 596))
        band.curve((540, 600), (500, 630), (452, 650)).line((436, 601))
        strap = ImageChops.multiply(c.poly(tp(band.points)), upper)
        c.shadow_of(strap, 3, 7, 6, 0.4, (20, 8, 4))
        c.paint(strap, c.linear(t((440, 560)), t((560, 660)), [(0, _scale(leather, 1.25)), (1, _scale(leather, 0.75))]))
        c.bevel(strap, 7, dark=0.5, light=0.3)
        c.paint(c.poly(tp([(488, 590), (545, 568), (549, 581), (492, 603)])), _scale((28, 14, 8), shade))
        c.dashes(tp(_offset_path(band.points[:29], 9)), 6, 5, 2.5, stitch, 0.85, clip=strap)
        c.dashes(tp(_offset_path(band.points[30:-1], 9)), 6, 5, 2.5, stitch, 0.85, clip=strap)

    shoe(-95, -30, 0.94, 0.78)
    shoe(10, 12, 1.0, 1.0)


def _hairdryer(c: _Canvas) -> None:
    """A pink hairdryer in profile, nozzle to the right, with a gold trim and a cord."""
    pink = (226, 148, 156)
    gold = (214, 172, 96)
    c.shadow(500, 860, 330, 38, 26, 0.35)

    # Cord first, so the handle covers its start.
    cord = _Path((372, 830)).curve((390, 900), (520, 900), (600, 860)).curve((690, 815), (780, 850), (860, 900))
    cm = c.stroke(cord.points, 16)
    c.paint(cm, (64, 60, 64))
    c.sheen(cm, [(x, y - 4) for x, y in cord.points], 4, 2, 0.35)
    # Handle, tilted back.
    handle = _Path((330, 420)).line((470, 420)).line((425, 790))
    handle.curve((420, 845), (335, 845), (330, 790)).line((330, 420))
    hm = c.poly(handle.points)
    c.shadow_of(hm, 10, 10, 14, 0.3)
    c.paint(hm, c.linear((330, 0), (470, 0), [(0, _scale(pink, 1.08)), (0.4, pink), (1, _scale(pink, 0.7))]))
    c.bevel(hm, 18, dark=0.4, light=0.3, dark_color=(60, 20, 30))
    # Switch on the handle.
    sw = c.poly(_Path((395, 520)).line((425, 520)).line((418, 640)).line((388, 640)).line((395, 520)).points)
    c.paint(sw, _scale(pink, 0.7))
    knob = c.poly([(397, 530), (423, 530), (420, 575), (394, 575)])
    c.paint(knob, c.linear((394, 0), (425, 0), _metal(gold)))
    c.paint(c.ellipse(402, 680, 8, 8), (250, 240, 235))
    c.paint(c.ellipse(402, 710, 8, 8), (250, 240, 235), 0.8)

    # Barrel: a horizontal round body, drawn upright and turned on its side.
    e = 0.22
    profile = [(200, 118), (215, 124), (600, 124), (640, 118), (700, 96), (745, 86), (770, 86)]
    layer = _Canvas(c.px, (0, 0, 0))
    upright = [(1000 - x, r) for x, r in reversed(profile)]
    m = layer.lathe(330, upright, _cylinder(pink, gloss=0.55, dark=0.6), e=e)
    body_rgb = layer.img.transpose(Image.Transpose.ROTATE_270)
    body_mask = m.transpose(Image.Transpose.ROTATE_270)
    # After the turn the axis sits at y = 330 and design x runs left to right.
    c.shadow_of(body_mask, 10, 18, 16, 0.3)
    c.paint(body_mask, body_rgb)
    # Rear air intake: a disc with a grille.
    c.paint(c.ellipse(203, 330, 118 * e + 4, 118), _scale(pink, 0.75))
    grille = c.ellipse(203, 330, 118 * e - 6, 104)
    c.paint(grille, (70, 60, 64))
    for r in (96, 72, 48, 24):
        c.paint(ImageChops.subtract(c.ellipse(203, 330, r * e, r), c.ellipse(203, 330, r * e - 3, r - 6)),
                (140, 130, 134))
    c.paint(c.ellipse(203, 330, 6, 16), (180, 170, 172))
    # Gold trim rings and the nozzle opening.
    for x, r in ((600, 124), (225, 124)):
        ring = ImageChops.multiply(c.stroke([(x, 330 - r - 5), (x, 330 + r + 5)], 14), body_mask)
        c.paint(ring, c.linear((0, 330 - r), (0, 330 + r), _metal(gold)))
    c.paint(c.ellipse(770, 330, 86 * e + 3, 86), _scale(pink, 0.7))
    c.paint(c.ellipse(772, 330, 86 * e - 4, 70), (50, 44, 46))
    for y in range(-50, 51, 25):
        c.paint(c.stroke([(772, 330 + y - 2), (772, 330 + y + 2)], 5), (120, 110, 112))
    c.text((420, 330), "ionic", 24, _scale(pink, 0.7), bold=False, alpha=0.8)


def _candle_holder(c: _Canvas) -> None:
    """A turned brass candlestick holding a lit ivory candle."""
    brass = (202, 158, 78)
    cx = 500
    c.shadow(cx + 20, 872, 230, 36, 24, 0.35)
    c.shadow(cx, 862, 150, 18, 8, 0.3)
    # Warm glow behind the flame.
    c.paint(c.blur(c.ellipse(cx, 160, 170, 190), 80), (255, 236, 190), 0.5)

    profile = [
        (385, 44), (400, 44), (402, 78), (416, 80), (422, 44), (440, 30), (456, 46), (470, 30), (610, 24),
        (630, 40), (648, 50), (666, 34), (700, 34), (730, 60), (770, 112), (800, 140), (830, 150), (848, 150),
    ]
    holder = c.lathe(cx, profile, _metal(brass), e=0.22)
    c.bevel(holder, 6, dark=0.2, light=0.0)
    # Drip pan top face.
    c.paint(c.ellipse(cx, 402, 78, 78 * 0.22), c.linear((cx - 78, 0), (cx + 78, 0), _metal(_scale(brass, 1.05))))
    c.paint(c.ellipse(cx, 398, 48, 48 * 0.22), _scale(brass, 0.6))
    # Candle, its top at y = top.
    wax, top = (246, 238, 220), 175
    candle = c.lathe(cx, [(top, 38), (400, 38)], _cylinder(wax, gloss=0.3, dark=0.78), e=0.22)
    c.paint(c.ellipse(cx, top, 38, 38 * 0.22), (252, 246, 232))
    c.paint(c.ellipse(cx, top + 1, 30, 30 * 0.22), (236, 226, 204))
    # A drip down the front.
    drip = _Path((cx - 8, top + 5)).curve((cx - 10, top + 40), (cx - 14, top + 50), (cx - 12, top + 70))
    drip.curve((cx - 10, top + 82), (cx + 2, top + 82), (cx + 2, top + 65))
    drip.curve((cx + 2, top + 40), (cx + 4, top + 20), (cx + 8, top + 5))
    dm = c.poly(drip.points)
    c.paint(dm, (252, 248, 238))
    c.bevel(dm, 3, dark=0.15, light=0.3)
    c.bevel(candle, 6, dark=0.1, light=0.0)
    # Wick and flame.
    c.paint(c.stroke([(cx, top + 1), (cx + 2, top - 22)], 4), (40, 30, 25))
    f = top - 140  # the flame's tip
    flame = _Path((cx, f)).curve((cx + 10, f + 30), (cx + 28, f + 58), (cx + 22, f + 80))
    flame.curve((cx + 16, f + 100), (cx - 16, f + 100), (cx - 22, f + 80))
    flame.curve((cx - 26, f + 58), (cx - 8, f + 30), (cx, f))
    fm = c.poly(flame.points)
    c.paint(c.blur(fm, 16), (255, 200, 90), 0.8)
    c.paint(fm, c.linear((cx, f), (cx, f + 98), [(0, (255, 170, 60)), (0.35, (255, 226, 130)), (0.75, (255, 250, 220)),
                                                  (1, (120, 150, 230))]))
    c.paint(c.blur(c.ellipse(cx, f + 70, 8, 18), 4), (255, 255, 250), 0.9)


def _salt_and_pepper(c: _Canvas) -> None:
    """A white salt shaker and a black pepper shaker with domed steel caps."""
    steel = (196, 198, 204)
    e = 0.24

    def shaker(cx: float, body: Color, dark: float, holes: int, letter: str, letter_color: Color) -> None:
        c.shadow(cx + 25, 830, 140, 28, 22, 0.35)
        c.shadow(cx, 820, 100, 14, 6, 0.35)
        profile = [(440, 82), (470, 88), (560, 100), (680, 108), (760, 104), (790, 96), (815, 92)]
        m = c.lathe(cx, profile, _cylinder(body, gloss=0.7, dark=dark), e=e)
        c.bevel(m, 8, dark=0.15, light=0.0)
        c.text((cx, 650), letter, 70, letter_color, alpha=0.9)
        cap = c.lathe(cx, [(350, 80), (440, 84), (450, 84)], _metal(steel), e=e)
        # Dome on top of the cap.
        dome = c.ellipse(cx, 350, 80, 80 * e + 24)
        top = ImageChops.multiply(dome, c.poly([(cx - 90, 250), (cx + 90, 250), (cx + 90, 350), (cx - 90, 350)]))
        top = ImageChops.lighter(top, c.ellipse(cx, 350, 80, 80 * e))
        c.paint(top, c.radial(cx - 25, 320, 120, 70, [(0, (250, 250, 252)), (0.5, steel), (1, (120, 122, 130))]))
        rng = random.Random(holes)
        for i in range(holes):
            a = 2 * math.pi * i / holes + rng.uniform(-0.05, 0.05)
            rr = 40 if i % 2 else 22
            x, y = cx + rr * math.cos(a), 343 + rr * e * 1.2 * math.sin(a)
            c.paint(c.ellipse(x, y, 5, 3), (50, 50, 56))
        c.paint(c.ellipse(cx, 343, 5, 3), (50, 50, 56))
        c.paint(ImageChops.multiply(c.stroke([(cx - 82, 442), (cx + 82, 442)], 3), cap), (110, 112, 120))
        c.bevel(cap, 4, dark=0.2, light=0.0)

    shaker(365, (246, 245, 242), 0.72, 10, "S", (60, 60, 66))
    shaker(635, (52, 52, 58), 0.55, 6, "P", (235, 235, 240))


def _below(curve: Sequence[Point], x: float, y: float) -> bool:
    """Whether (x, y) lies below the polyline curve (y grows downwards)."""
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if min(x0, x1) <= x <= max(x0, x1) and x0 != x1:
            return y >= y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return False


def _bamboo_glass_jar(c: _Canvas) -> None:
    """A clear glass storage jar, two thirds full of coffee beans, closed with a bamboo lid."""
    cx, e = 500, 0.2
    top, bottom, r = 330, 820, 175
    c.shadow(cx + 30, bottom + 20, 260, 45, 28, 0.3)
    c.shadow(cx, bottom + 12, 185, 24, 8, 0.25)
    jar = c.lathe(cx, [(top, r), (bottom - 20, r), (bottom, r - 8)], [(0, (0, 0, 0)), (1, (0, 0, 0))], e=e, paint=False)
    inner = c.lathe(cx, [(top + 5, r - 9), (bottom - 36, r - 9), (bottom - 26, r - 18)],
                    [(0, (0, 0, 0)), (1, (0, 0, 0))], e=e, paint=False)
    # Glass tints what is behind it slightly.
    c.paint(jar, (214, 222, 220), 0.35)

    # Coffee beans fill the lower part, with a gently heaped surface.
    fill_top = 500
    heap = _Path((cx - r, fill_top + 20))
    heap.curve((cx - 80, fill_top - 20), (cx + 60, fill_top - 10), (cx + r, fill_top + 15))
    heap.line((cx + r, 1000)).line((cx - r, 1000))
    heap_mask = c.poly([(x, y + 18) for x, y in heap.points])
    rng = random.Random(7)
    beans = Image.new("RGB", c.size, (40, 22, 12))
    bd = ImageDraw.Draw(beans)
    outline = ImageDraw.Draw(heap_mask)
    for _ in range(520):
        x = rng.uniform(cx - r - 10, cx + r + 10)
        y = rng.uniform(fill_top - 40, bottom)
        a = rng.uniform(0, math.pi)
        col = _scale((112, 64, 34), rng.uniform(0.75, 1.2))
        ca, sa = math.cos(a), math.sin(a)
        bd.polygon(c.pts(_ellipse_points(x, y, 24, 16, a, 20)), fill=_scale(col, 0.7))
        if y < fill_top + 60 and _below(heap.points, x, y):
            outline.polygon(c.pts(_ellipse_points(x, y, 24, 16, a, 20)), fill=255)
        bd.polygon(c.pts(_ellipse_points(x - 1, y - 2, 21, 13, a, 20)), fill=col)
        bd.polygon(c.pts(_ellipse_points(x - 6 * ca + 3 * sa, y - 6 * sa - 3 * ca, 9, 5, a, 12)),
                   fill=_scale(col, 1.35))
        crease = [(x + u * ca - 2.5 * math.sin(u / 6) * sa, y + u * sa + 2.5 * math.sin(u / 6) * ca)
                  for u in range(-17, 18, 3)]
        bd.line(c.pts(crease), fill=(34, 18, 8), width=max(1, round(c.s(3))))
    beans_area = ImageChops.multiply(inner, heap_mask)
    c.paint(beans_area, beans)
    # Beans near the glass sit in its shade.
    c.bevel(inner, 25, dark=0.35, light=0.0, dark_color=(10, 10, 10))

    # Glass: thick base, edges, reflections.
    base = ImageChops.subtract(jar, c.lathe(cx, [(top, r), (bottom - 30, r - 2)], [(0, (0, 0, 0)), (1, (0, 0, 0))],
                                            e=e, paint=False))
    c.paint(base, (200, 215, 212), 0.45)
    edge = ImageChops.subtract(jar, inner)
    c.paint(edge, (150, 170, 168), 0.35)
    c.bevel(jar, 6, dark=0.3, light=0.0, dark_color=(40, 60, 60))
    c.sheen(jar, [(cx - r + 45, top + 40), (cx - r + 45, bottom - 50)], 26, 10, 0.5)
    c.sheen(jar, [(cx - r + 85, top + 40), (cx - r + 85, bottom - 80)], 6, 3, 0.5)
    c.sheen(jar, [(cx + r - 30, top + 60), (cx + r - 30, bottom - 60)], 10, 6, 0.45)
    foot_rim = ImageChops.subtract(c.ellipse(cx, bottom - 10, r - 4, (r - 4) * e),
                                   c.ellipse(cx, bottom - 18, r - 16, (r - 16) * e))
    c.paint(foot_rim, (255, 255, 255), 0.35)

    # Bamboo lid with its grey seal.
    bamboo = (214, 176, 118)
    c.lathe(cx, [(top - 4, r + 2), (top + 10, r + 2)], _cylinder((150, 150, 150), gloss=0.3), e=e)
    lid = c.lathe(cx, [(top - 95, r + 4), (top - 2, r + 4)], _cylinder(bamboo, gloss=0.35, dark=0.7), e=e)
    rng = random.Random(3)
    grain = c.mask()
    gd = ImageDraw.Draw(grain)
    for _ in range(70):
        x = rng.uniform(cx - r, cx + r)
        w = rng.uniform(1, 3)
        gd.line(c.pts([(x, top - 120), (x + rng.uniform(-2, 2), top + 20)]), fill=255, width=max(1, round(c.s(w))))
    c.paint(ImageChops.multiply(grain, lid), (150, 105, 55), 0.35)
    top_face = c.ellipse(cx, top - 95, r + 4, (r + 4) * e)
    c.paint(top_face, c.linear((cx - r, top - 130), (cx + r, top - 60), [(0, (236, 206, 150)), (1, (200, 160, 102))]))
    rings = c.mask()
    rd = ImageDraw.Draw(rings)
    for i in range(28):
        y = top - 95 - (r + 4) * e + i * (2 * (r + 4) * e) / 28 + rng.uniform(-1, 1)
        rd.line(c.pts([(cx - r - 10, y), (cx + r + 10, y)]), fill=255, width=max(1, round(c.s(1.5))))
    c.paint(ImageChops.multiply(rings, top_face), (170, 125, 70), 0.35)
    # A pale chamfer round the rim of the lid.
    c.paint(ImageChops.subtract(top_face, c.ellipse(cx, top - 95, r - 6, (r - 6) * e)), (250, 232, 190), 0.6)


def _mug(c: _Canvas) -> None:
    """A glazed teal mug of coffee, handle to the right."""
    glaze = (46, 120, 140)
    cx, top, bottom = 460, 340, 770
    e = 0.24
    c.shadow(cx + 60, bottom + 18, 300, 50, 30, 0.35)
    c.shadow(cx, bottom + 8, 175, 26, 8, 0.35)

    # Handle: a thick loop on the right, partly hidden by the body.
    outer = c.ellipse(cx + 180, 545, 115, 135)
    inner = c.ellipse(cx + 180, 545, 62, 85)
    handle = ImageChops.subtract(outer, inner)
    handle = ImageChops.multiply(handle, c.poly([(cx + 100, 300), (900, 300), (900, 800), (cx + 100, 800)]))
    c.shadow_of(handle, 14, 18, 14, 0.35)
    c.paint(handle, c.linear((cx + 180, 420), (cx + 300, 680), [(0, _scale(glaze, 1.3)), (0.5, glaze),
                                                                (1, _scale(glaze, 0.55))]))
    c.bevel(handle, 18, dark=0.5, light=0.35)

    profile = [(top, 180), (bottom - 20, 170), (bottom, 160)]
    body = c.lathe(cx, profile, _cylinder(glaze, gloss=0.55, dark=0.55), e=e)
    c.bevel(body, 10, dark=0.2, light=0.0)
    # Rim and inside.
    c.paint(c.ellipse(cx, top, 180, 180 * e), c.linear((cx - 180, 0), (cx + 180, 0), [(0, (200, 222, 226)),
                                                                                     (1, (120, 160, 170))]))
    inside = c.ellipse(cx, top + 2, 166, 166 * e)
    c.paint(inside, c.linear((0, top - 40), (0, top + 40), [(0, (150, 140, 126)), (1, (238, 232, 220))]))
    coffee = ImageChops.multiply(inside, c.ellipse(cx, top + 22, 160, 160 * e))
    c.paint(coffee, c.radial(cx - 30, top + 18, 190, 50, [(0, (120, 72, 40)), (0.6, (80, 46, 24)), (1, (52, 28, 14))]))
    c.paint(ImageChops.multiply(c.blur(c.ellipse(cx - 60, top + 16, 50, 8), 4), coffee), (255, 240, 220), 0.4)
    # Steam.
    for x0, ph in ((cx - 50, 0.0), (cx + 30, 1.8)):
        pts = [(x0 + 22 * math.sin(ph + t / 28), top - 40 - t) for t in range(0, 200, 4)]
        c.paint(c.blur(c.stroke(pts, 18), 10), (255, 255, 255), 0.75)


_DRAWINGS: dict[str, tuple[Callable[[_Canvas], None], Color]] = {
    "sunglasses": (_sunglasses, (214, 224, 236)),
    "tank-top": (_tank_top, (236, 232, 224)),
    "watch": (_watch, (228, 226, 222)),
    "loafers": (_loafers, (236, 228, 218)),
    "hairdryer": (_hairdryer, (240, 230, 230)),
    "candle-holder": (_candle_holder, (232, 226, 216)),
    "salt-and-pepper-shakers": (_salt_and_pepper, (224, 230, 228)),
    "bamboo-glass-jar": (_bamboo_glass_jar, (232, 230, 222)),
    "mug": (_mug, (238, 232, 222)),
}

PICTURE_SLUGS: tuple[str, ...] = tuple(_DRAWINGS)


def picture_slug(picture_path_or_slug: str) -> str:
    """Returns the slug ("mug") of a picture path ("/static/img/products/mug.jpg"); KeyError if unknown."""
    name = picture_path_or_slug.rsplit("/", 1)[-1]
    if name.endswith(".jpg"):
        name = name[: -len(".jpg")]
    if name not in _DRAWINGS:
        raise KeyError(f"no product picture named {picture_path_or_slug!r}")
    return name


def draw_product_picture(picture_path_or_slug: str, size: int = 700) -> bytes:
    """Returns a size x size JPEG drawing of the product; KeyError for an unknown picture."""
    slug = picture_slug(picture_path_or_slug)
    if size < 16 or size > 4096:
        raise ValueError(f"picture size must be between 16 and 4096, not {size}")
    key = (slug, size)
    # One lock for all: a picture is drawn once per process, and drawing is CPU-bound anyway.
    with _cache_lock:
        if key not in _cache:
            draw, backdrop = _DRAWINGS[slug]
            canvas = _Canvas(size * _SUPERSAMPLE, backdrop)
            draw(canvas)
            _cache[key] = canvas.jpeg(size)
        return _cache[key]
