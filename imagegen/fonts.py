"""Typography for drawn pictures: Pillow's bundled font at any size, fitted, wrapped and letter-spaced."""

from __future__ import annotations

import dataclasses
import threading
import unicodedata

from PIL import ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Colour = tuple[int, int, int] | tuple[int, int, int, int]

# Characters beyond ASCII that the bundled font (a subset of Aileron) actually draws.
_EXTRA_GLYPHS = frozenset("©«°±´·»‘’“”…‹›⁄™")
# Look-alikes for common characters the bundled font lacks.
_SUBSTITUTES = {"–": "-", "—": "-", "×": "x", "•": "·", "‚": ",", "„": "“"}
_MAX_CACHED = 48

# One cache per thread: a FreeType face is not meant to be used by threads drawing at the same time.
_local = threading.local()


def font(size: float) -> Font:
    """Returns Pillow's bundled sans-serif at size pixels (at least 6)."""
    px = max(6, round(size))
    cache: dict[int, Font] | None = getattr(_local, "fonts", None)
    if cache is None or len(cache) > _MAX_CACHED:
        cache = _local.fonts = {}
    loaded = cache.get(px)
    if loaded is None:
        try:
            loaded = ImageFont.load_default(size=px)
        except ImportError:  # Pillow built without FreeType: the fixed-size bitmap font still works
            loaded = ImageFont.load_default()
        cache[px] = loaded
    return loaded


def drawable(text: str) -> str:
    """Returns text the bundled font can draw: accents stripped, e.g. 'Café' -> 'Cafe', others as '?'."""
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        ch = _SUBSTITUTES.get(ch, ch)
        if unicodedata.combining(ch):
            continue
        if " " <= ch <= "~" or ch in _EXTRA_GLYPHS:
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        else:
            out.append("?")
    return "".join(out)


def size_of(face: Font) -> float:
    """Returns the nominal pixel size of a face."""
    return float(getattr(face, "size", 11))


def ascent(face: Font) -> float:
    """Returns the height from the top of a line to its baseline."""
    return float(face.getmetrics()[0]) if hasattr(face, "getmetrics") else 11.0


def bold_stroke(face: Font, bold: bool) -> int:
    """Returns the outline width that fakes a bold weight with the regular bundled font."""
    size = size_of(face)
    return max(1, round(size / 30)) if bold and size >= 22 else 0


def line_width(text: str, face: Font, tracking: float = 0.0, stroke: int = 0) -> float:
    """Returns the drawn width of one line with extra letter spacing."""
    if not text:
        return 0.0
    return face.getlength(text) + tracking * (len(text) - 1) + 2 * stroke


@dataclasses.dataclass(frozen=True)
class TextBlock:
    """Lines of text fitted to a width, with the face and spacing to draw them."""

    lines: tuple[str, ...]
    face: Font
    tracking: float
    stroke: int
    line_height: float

    @property
    def height(self) -> float:
        """Returns the height of the block."""
        return self.line_height * len(self.lines)

    @property
    def width(self) -> float:
        """Returns the width of the widest line."""
        return max(line_width(line, self.face, self.tracking, self.stroke) for line in self.lines)


def _wrap(words: list[str], face: Font, tracking: float, stroke: int, width: float) -> tuple[list[str], bool]:
    """Greedily wraps words into lines no wider than width; says whether a too-wide word had to be split."""
    lines: list[str] = []
    line = ""
    split = False
    for word in words:
        candidate = f"{line} {word}" if line else word
        if line_width(candidate, face, tracking, stroke) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = word
        while len(line) > 1 and line_width(line, face, tracking, stroke) > width:
            split = True
            cut = len(line) - 1
            while cut > 1 and line_width(line[:cut], face, tracking, stroke) > width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
    if line:
        lines.append(line)
    return lines, split


def fit(
    text: str,
    width: float,
    max_lines: int,
    size: float,
    min_size: float,
    *,
    uppercase: bool = False,
    tracking: float = 0.0,
    bold: bool = False,
    leading: float = 1.22,
) -> TextBlock:
    """Fits text into width and max_lines, shrinking from size down to min_size, then ending in '…'."""
    text = drawable(" ".join(text.split())) or "?"
    if uppercase:
        text = text.upper()
    words = text.split(" ")
    current = size
    while True:
        face = font(current)
        spacing = tracking * current
        stroke = bold_stroke(face, bold)
        lines, split = _wrap(words, face, spacing, stroke, width)
        if (len(lines) <= max_lines and not split) or current <= min_size:
            break
        current = max(min_size, current * 0.92)
    if len(lines) > max_lines:
        kept = lines[: max_lines - 1]
        last = " ".join(lines[max_lines - 1 :])
        while len(last) > 1 and line_width(last + "…", face, spacing, stroke) > width:
            last = last[:-1].rstrip()
        lines = [*kept, last + "…"]
    return TextBlock(tuple(lines), face, spacing, stroke, current * leading)


def draw_line(
    draw: ImageDraw.ImageDraw,
    x: float,
    y: float,
    text: str,
    face: Font,
    fill: Colour,
    *,
    tracking: float = 0.0,
    stroke: int = 0,
    align: str = "m",
) -> float:
    """Draws one line with its top at y, starting at, centred on or ending at x (align 'l', 'm', 'r').

    Returns the line's width.
    """
    width = line_width(text, face, tracking, stroke)
    left = x - {"l": 0.0, "m": width / 2, "r": width}[align] + stroke
    if tracking == 0:
        draw.text((left, y), text, font=face, fill=fill, anchor="la", stroke_width=stroke, stroke_fill=fill)
        return width
    for ch in text:
        draw.text((left, y), ch, font=face, fill=fill, anchor="la", stroke_width=stroke, stroke_fill=fill)
        left += face.getlength(ch) + tracking
    return width


def draw_block(draw: ImageDraw.ImageDraw, x: float, y: float, block: TextBlock, fill: Colour, align: str = "m") -> None:
    """Draws fitted lines, the first line's top at y."""
    for i, line in enumerate(block.lines):
        draw_line(
            draw,
            x,
            y + i * block.line_height,
            line,
            block.face,
            fill,
            tracking=block.tracking,
            stroke=block.stroke,
            align=align,
        )


def top_for_middle(block: TextBlock | Font, middle: float) -> float:
    """Returns the y to draw at so the capitals of a block (or one line in face) centre on middle."""
    if isinstance(block, TextBlock):
        face, extra = block.face, block.line_height * (len(block.lines) - 1)
    else:
        face, extra = block, 0.0
    cap = 0.73 * size_of(face)
    return middle - (extra + 2 * ascent(face) - cap) / 2
