"""Laying the cards out, and the picture's heading."""

from __future__ import annotations

import dataclasses
import math

from PIL import Image, ImageChops, ImageDraw

from imagegen.domain import CartLine
from imagegen.fonts import bold_stroke, draw_line, font, line_width, size_of, top_for_middle
from imagegen.generators.collage.backdrops import _tones
from imagegen.generators.collage.paint import (
    _badge,
    _cast,
    _composite,
    _fill,
    _mix,
    _noise,
    _rgb,
    _rotated,
    _rounded,
    _sparkle,
)
from imagegen.styles import Look


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
