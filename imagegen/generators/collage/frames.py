"""Frames: how each style draws one cart line as a card (print, sticker, niche, shelf, bauble, ...)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

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
from imagegen.generators.collage.cutout import Subject
from imagegen.generators.collage.paint import (
    _LANCZOS,
    RGB,
    _aa,
    _add_noise,
    _arch,
    _badge,
    _cast,
    _composite,
    _cover,
    _disc,
    _fill,
    _luma,
    _mix,
    _noise,
    _quantity,
    _radial,
    _rgb,
    _rotated,
    _rounded,
    _sepia,
    _solid,
    _vignette,
)
from imagegen.styles import Look, Palette


@dataclasses.dataclass(frozen=True)
class _Item:
    """One cart line as the collage draws it."""

    name: str
    quantity: int
    swatch: RGB  # this item's tint from the style's swatches
    subject: Subject | None  # None when the picture is missing or unreadable
    framed: bool = False  # the cart's products are framed whole, not cut out: stand-ins are too


def _initials(name: str) -> str:
    """Returns up to two initials of a product name, e.g. 'Salt & Pepper Shakers' -> 'SP'."""
    words = [w for w in drawable(name).replace("&", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def _placeholder(item: _Item, width: int, height: int, full_bleed: bool) -> Subject:
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
    return Subject(canvas, not full_bleed, None if full_bleed else (ox, oy, ox + side, oy + side))


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


def _subject(item: _Item, width: int, height: int, photo: bool = False) -> Subject:
    """Returns the item's picture, or its drawn stand-in, for a box of width x height."""
    if item.subject is not None:
        return item.subject
    return _placeholder(item, width, height, full_bleed=photo or item.framed)


def _place(
    subject: Subject, width: int, height: int, fill: float, bottom: bool = False
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
    """Presses a round rubber stamp with the quantity, a little rotated; the ring is worn, the figure crisp.

    The stamp is pressed on a cream label, so the figure reads on a dark photo as well as on the margin.
    """
    d = round(diameter)
    side = round(d * 1.15)
    off = (side - d) / 2
    label_disc = _aa(side, side, lambda dr, s: dr.ellipse((off * s, off * s, (off + d) * s, (off + d) * s), fill=255))
    ring = _aa(
        side,
        side,
        lambda dr, s: (
            dr.ellipse((off * s, off * s, (off + d) * s, (off + d) * s), outline=255, width=round(d * 0.06 * s)),
            dr.ellipse(
                ((off + d * 0.12) * s, (off + d * 0.12) * s, (off + d * 0.88) * s, (off + d * 0.88) * s),
                outline=255,
                width=max(1, round(d * 0.025 * s)),
            ),
        ),
    )
    label = _quantity(quantity)
    face = font(d * 0.4)
    if line_width(label, face) > d * 0.64:
        face = font(size_of(face) * d * 0.64 / line_width(label, face))
    text = Image.new("L", (side, side), 0)
    draw_line(
        ImageDraw.Draw(text),
        side / 2,
        top_for_middle(face, side / 2),
        label,
        face,
        255,
        stroke=bold_stroke(face, True) or max(1, round(d / 45)),
    )
    # Uneven inking wears the ring; the figure only fades a little, so it stays readable.
    wear = _noise((side, side), 90, clump=3)
    ink_alpha = ImageChops.lighter(
        ImageChops.multiply(ring, wear.point(lambda v: 255 if v > 60 else 120)),
        ImageChops.multiply(text, wear.point(lambda v: 255 if v > 30 else 205)),
    )
    stamp = _solid((side, side), _mix(ink, (250, 240, 220), 0.0))
    stamp.putalpha(ink_alpha.point(lambda v: v * 23 // 25))
    paper = _solid((side, side), (250, 242, 224))
    paper.putalpha(label_disc.point(lambda v: v * 3 // 5))
    paper.alpha_composite(stamp)
    paper = _rotated(paper, rng.uniform(-12, -4))
    _composite(tile, paper, (round(centre[0] - paper.width / 2), round(centre[1] - paper.height / 2)))


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
    image, xy = _place(subject, inner, inner, 0.76 if subject.cutout else 1.0)
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
