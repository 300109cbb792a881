"""Studio product photos of known shape: a grey seamless backdrop, light falloff, a soft shadow, noise, JPEG.

They behave like the shop's own product photos (700 x 700, light grey paper, a vignette, a soft contact
shadow, JPEG at about quality 85), and since we draw the product we also know its true outline: the
tests measure the collage's cut-outs against it.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_SS = 2  # objects are drawn at twice the size and reduced, for anti-aliased edges


@dataclasses.dataclass(frozen=True)
class StudioPhoto:
    """A JPEG product photo and the product's true outline (L mask: 255 inside, 0 outside)."""

    jpeg: bytes
    mask: Image.Image
    glass: Image.Image | None = None  # the see-through part of the product, when it has one
    thin: Image.Image | None = None  # the thin parts (arms, straps), when it has them
    gap: Image.Image | None = None  # paper the product frames closely without covering (between bridge bars)


def _backdrop(side: int, rng: np.random.Generator) -> np.ndarray:
    """Returns a float RGB seamless sweep: lighter wall, darker floor, a side light, and a vignette."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    tint = np.array([226.0, 225.0, 222.0]) + rng.uniform(-6, 6)
    sweep = 10.0 - 18.0 / (1.0 + np.exp(-(y - 0.6) * 9.0))  # the wall curving into the floor
    side_light = rng.uniform(-8, 8) * (x - 0.5)
    vignette = 1.0 - 0.16 * ((x - 0.5) ** 2 + (y - 0.5) ** 2) * 2.0
    base = (tint[None, None, :] + (sweep + side_light)[..., None]) * vignette[..., None]
    return base


def _mask(side: int, paint: Callable[[ImageDraw.ImageDraw, float], None]) -> Image.Image:
    """Returns an L mask painted by paint(draw, side) at full size."""
    mask = Image.new("L", (side, side), 0)
    paint(ImageDraw.Draw(mask), side)
    return mask


def _shadow(mask: np.ndarray, side: int, dx: float, dy: float, blur: float, strength: float) -> np.ndarray:
    """Returns how much light the product's shadow takes away, 0..strength."""
    image = Image.fromarray((mask * 255).astype(np.uint8))
    shifted = Image.new("L", image.size, 0)
    shifted.paste(image, (round(dx * side), round(dy * side)))
    soft = np.asarray(shifted.filter(ImageFilter.GaussianBlur(blur * side)), np.float32) / 255
    return soft * strength


def _shade(side: int, colour: tuple[int, int, int], light: float = 0.25) -> np.ndarray:
    """Returns a colour field lit from the upper left, as a rounded object would be."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    falloff = 1.0 + light * (0.5 - x) * 0.8 + light * (0.5 - y) * 0.6
    return np.array(colour, np.float32)[None, None, :] * falloff[..., None]


def _render(
    side: int,
    seed: int,
    opaque: Image.Image,
    colour: np.ndarray,
    glass: Image.Image | None = None,
    thin: Image.Image | None = None,
    contact: np.ndarray | None = None,
) -> StudioPhoto:
    """Photographs the product (opaque and glass masks at side x side) on the studio backdrop.

    contact, when given, is a darker shade (0..1 of the light taken) where the product touches the paper.
    """
    rng = np.random.default_rng(seed)
    solid = np.asarray(opaque, np.float32) / 255
    clear = np.asarray(glass, np.float32) / 255 if glass is not None else np.zeros_like(solid)
    whole = np.maximum(solid, clear)
    ground = clean = _backdrop(side, rng)
    # A broad soft shadow falling back-right, and a darker contact shadow just under the product.
    dim = _shadow(whole, side, 0.03, 0.02, 0.03, 0.28) + _shadow(whole, side, 0.0, 0.008, 0.008, 0.22)
    if contact is not None:
        dim = dim + contact
    ground = ground * (1.0 - np.clip(dim, 0, 0.6))[..., None]
    photo = ground
    if glass is not None:
        # Glass lets the backdrop through, a little darker and greener, with dark refracting edges
        # and a bright vertical reflection.
        edge = np.asarray(glass.filter(ImageFilter.MinFilter(2 * round(side * 0.006) + 1)), np.float32) / 255
        rim = np.clip(clear - edge, 0, 1)
        x = np.mgrid[0:side, 0:side][1].astype(np.float32) / side
        box = glass.getbbox() or (0, 0, side, side)
        across = (x - box[0] / side) / max(1e-3, (box[2] - box[0]) / side)
        shine = np.exp(-(((across - 0.25) / 0.05) ** 2)) * 0.8
        seen = clean * np.array([0.9, 0.93, 0.91])[None, None, :]
        seen = seen * (1 - 0.45 * rim)[..., None] + (255 - seen) * (shine * clear)[..., None]
        photo = photo * (1 - clear[..., None]) + seen * clear[..., None]
    photo = photo * (1 - solid[..., None]) + colour * solid[..., None]
    small = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).resize(
        (side // _SS, side // _SS), Image.Resampling.LANCZOS
    )
    noisy = np.asarray(small, np.float32) + rng.normal(0, 2.5, (side // _SS, side // _SS, 1))
    out = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=85)

    def reduce(mask: Image.Image | None) -> Image.Image | None:
        if mask is None:
            return None
        return mask.resize((side // _SS, side // _SS), Image.Resampling.BOX).point(lambda v: 255 if v >= 128 else 0)

    whole_mask = Image.fromarray((whole * 255).astype(np.uint8))
    return StudioPhoto(out.getvalue(), reduce(whole_mask), reduce(glass), reduce(thin))  # type: ignore[arg-type]


def _box(size: int, seed: int) -> StudioPhoto:
    """A teal bottle-like box: opaque, coloured, well inside the frame."""
    side = size * _SS
    mask = _mask(side, lambda d, s: d.rounded_rectangle((0.33 * s, 0.24 * s, 0.67 * s, 0.74 * s), 0.05 * s, 255))
    return _render(side, seed, mask, _shade(side, (30, 130, 140)))


def _dark(size: int, seed: int) -> StudioPhoto:
    """A black mug: a dark product whose handle leaves a hole the backdrop shows through."""
    side = size * _SS

    def paint(d: ImageDraw.ImageDraw, s: float) -> None:
        d.rounded_rectangle((0.38 * s, 0.3 * s, 0.68 * s, 0.72 * s), 0.04 * s, 255)
        d.ellipse((0.22 * s, 0.38 * s, 0.46 * s, 0.62 * s), 255)
        d.ellipse((0.28 * s, 0.44 * s, 0.4 * s, 0.56 * s), 0)

    return _render(side, seed, _mask(side, paint), _shade(side, (26, 26, 30), light=0.6))


def _glass(size: int, seed: int) -> StudioPhoto:
    """A glass jar with a wooden lid: the body is see-through."""
    side = size * _SS
    lid = _mask(side, lambda d, s: d.rounded_rectangle((0.31 * s, 0.24 * s, 0.69 * s, 0.34 * s), 0.02 * s, 255))
    body = _mask(side, lambda d, s: d.rounded_rectangle((0.33 * s, 0.33 * s, 0.67 * s, 0.76 * s), 0.05 * s, 255))
    body.paste(0, (0, 0), lid)
    return _render(side, seed, lid, _shade(side, (176, 132, 84)), glass=body)


def _edge(size: int, seed: int) -> StudioPhoto:
    """A beige shoe too big for the frame: it leaves the picture at the left and the bottom."""
    side = size * _SS

    def paint(d: ImageDraw.ImageDraw, s: float) -> None:
        d.ellipse((-0.3 * s, 0.5 * s, 0.75 * s, 1.15 * s), 255)
        d.ellipse((0.45 * s, 0.62 * s, 0.85 * s, 0.9 * s), 255)

    return _render(side, seed, _mask(side, paint), _shade(side, (196, 176, 146)))


def _thin(size: int, seed: int) -> StudioPhoto:
    """Sunglasses: dark lenses, a thin bridge and thin arms."""
    side = size * _SS
    width = max(2, round(0.0065 * side))

    def arms(d: ImageDraw.ImageDraw, s: float) -> None:
        d.line((0.27 * s, 0.48 * s, 0.08 * s, 0.34 * s), fill=255, width=width)
        d.line((0.73 * s, 0.48 * s, 0.9 * s, 0.3 * s), fill=255, width=width)
        d.line((0.45 * s, 0.47 * s, 0.55 * s, 0.47 * s), fill=255, width=width)

    def paint(d: ImageDraw.ImageDraw, s: float) -> None:
        d.ellipse((0.27 * s, 0.44 * s, 0.47 * s, 0.62 * s), 255)
        d.ellipse((0.53 * s, 0.44 * s, 0.73 * s, 0.62 * s), 255)
        arms(d, s)

    thin = _mask(side, arms)
    return _with_thin(_render(side, seed, _mask(side, paint), _shade(side, (48, 50, 58))), thin)


def _aviator(size: int, seed: int) -> StudioPhoto:
    """Aviator sunglasses: smoky lenses in thin dark rims, and a brow bar over the bridge framing a strip of paper."""
    side = size * _SS
    rim = max(2, round(0.006 * side))
    bar = max(2, round(0.0045 * side))
    brow = [(0.265, 0.458), (0.33, 0.404), (0.67, 0.404), (0.735, 0.458)]  # ends on the rims

    def lenses(d: ImageDraw.ImageDraw, s: float, grow: float) -> None:
        for left in (0.24, 0.54):
            d.ellipse(((left - grow) * s, (0.42 - grow) * s, (left + 0.22 + grow) * s, (0.62 + grow) * s), 255)

    def frame(d: ImageDraw.ImageDraw, s: float) -> None:
        lenses(d, s, 0.0)
        d.line([(x * s, y * s) for x, y in brow], fill=255, width=bar, joint="curve")
        d.arc((0.45 * s, 0.43 * s, 0.55 * s, 0.53 * s), 180, 360, fill=255, width=bar)  # the bridge
        d.line((0.25 * s, 0.47 * s, 0.07 * s, 0.32 * s), fill=255, width=bar)
        d.line((0.75 * s, 0.47 * s, 0.92 * s, 0.30 * s), fill=255, width=bar)

    def strip(d: ImageDraw.ImageDraw, s: float) -> None:
        d.polygon([(x * s, y * s) for x, y in brow], fill=255)
        d.ellipse((0.45 * s, 0.43 * s, 0.55 * s, 0.53 * s), fill=0)  # under the bridge the pocket is open

    shape = _mask(side, frame)
    glass = np.asarray(_mask(side, lambda d, s: lenses(d, s, -rim / s)))[..., None] > 0
    colour = np.where(glass, _shade(side, (74, 76, 84)), _shade(side, (22, 22, 26)))
    gap = np.where(np.asarray(shape) > 0, 0, np.asarray(_mask(side, strip))).astype(np.uint8)
    photo = _render(side, seed, shape, colour)
    small = Image.fromarray(gap).resize(photo.mask.size, Image.Resampling.BOX).point(lambda v: 255 if v >= 255 else 0)
    return dataclasses.replace(photo, gap=small)


def _sphere(size: int, seed: int) -> StudioPhoto:
    """A hammered metal sphere sitting on the paper: grey, dimpled, darker below, over its own contact shadow."""
    side = size * _SS
    rng = np.random.default_rng(seed + 100)
    mask = _mask(side, lambda d, s: d.ellipse((0.3 * s, 0.26 * s, 0.7 * s, 0.66 * s), 255))
    dimples = np.asarray(Image.fromarray((rng.random((side // 16, side // 16)) * 255).astype(np.uint8))
                         .resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255 - 0.5
    metal = _shade(side, (150, 150, 152), light=0.5) * (1.0 + 0.25 * dimples)[..., None]
    # Where a round product rests on the paper, a small dark pool of shade spreads just under it.
    pool = _mask(side, lambda d, s: d.ellipse((0.43 * s, 0.64 * s, 0.57 * s, 0.675 * s), 255))
    contact = np.asarray(pool.filter(ImageFilter.GaussianBlur(0.008 * side)), np.float32) / 255 * 0.18
    return _render(side, seed, mask, metal, contact=contact)


def _with_thin(photo: StudioPhoto, thin: Image.Image) -> StudioPhoto:
    """Returns the photo with its thin parts' mask, reduced to the photo's size."""
    small = thin.resize(photo.mask.size, Image.Resampling.BOX).point(lambda v: 255 if v >= 96 else 0)
    return dataclasses.replace(photo, thin=small)


STUDIO_PRODUCTS: dict[str, Callable[[int, int], StudioPhoto]] = {
    "box": _box,
    "dark": _dark,
    "glass": _glass,
    "edge": _edge,
    "thin": _thin,
    "aviator": _aviator,
    "sphere": _sphere,
}


def studio_photo(kind: str, size: int = 700, seed: int = 1) -> StudioPhoto:
    """Returns a size x size studio photo of one of STUDIO_PRODUCTS, with its true outline."""
    return STUDIO_PRODUCTS[kind](size, seed)
