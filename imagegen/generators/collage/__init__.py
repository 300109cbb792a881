"""The offline generator: a styled collage of the cart's product pictures, drawn with Pillow and OpenCV.

The package's rooms: cutout (lifting products off their studio backdrop), backdrops (the styles' grounds),
frames (one card per cart line, in the style's manner), layout (the grid and the heading), paint (drawing
primitives). This module composes them and encodes the picture.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import zlib

from PIL import Image, ImageDraw

from imagegen.domain import GenerationInput, Picture, Progress
from imagegen.errors import EmptyCart, GenerationFailed
from imagegen.generators.collage.backdrops import backdrop_for
from imagegen.generators.collage.cutout import Subject, subject_of
from imagegen.generators.collage.frames import _FRAMES, _Item, _Scene, _shelf_geometry
from imagegen.generators.collage.layout import _Box, _count_label, _grid, _title
from imagegen.generators.collage.paint import (
    _BICUBIC,
    _add_noise,
    _cast,
    _composite,
    _mix,
    _noise,
    _rgb,
    _rotated,
    _sepia,
)

FORMATS = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}

log = logging.getLogger(__name__)


class CollageGenerator:
    """Composes the cart's product pictures over a styled backdrop or the shopper's background."""

    name = "collage"

    def __init__(self, image_format: str = "jpeg", cpu_slots: contextlib.AbstractContextManager | None = None) -> None:
        """image_format: webp, jpeg or png, the encoding of the pictures it draws; cpu_slots: held while drawing."""
        if image_format not in FORMATS:
            raise ValueError(f"image format must be one of {', '.join(FORMATS)}, not {image_format!r}")
        self.image_format = image_format
        # All CPU: drawing takes one of the process's CPU slots (capacity.py), whoever asked for it.
        self._cpu_slots = cpu_slots or contextlib.nullcontext()

    def generate(self, request: GenerationInput, progress: Progress) -> Picture:
        """Draws a request.size x request.size picture of the cart in request.style."""
        if not request.lines:
            raise EmptyCart("the cart is empty: there is nothing to draw")
        try:
            with self._cpu_slots:
                image = _Collage(request, progress).draw()
                picture = encode(image, self.image_format)
                progress(1.0)
            return picture
        except (MemoryError, OSError, ValueError) as exc:
            log.exception("collage drawing failed")
            raise GenerationFailed("the cart picture could not be drawn; please try again") from exc


class _Collage:
    """One drawing: the request, its look, and the steps from backdrop to the finished picture."""

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

    def draw(self) -> Image.Image:
        """Draws the whole picture, as RGB."""
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
        return image

    def backdrop(self) -> Image.Image:
        """Returns the shopper's background toned for the style, or the style's own backdrop, as RGBA."""
        return backdrop_for(self.request.style.name, self.look, self.size, self.request.background)

    def items(self, box_side: int) -> list[_Item]:
        """Prepares each cart line's picture for a card about box_side pixels wide.

        One picture never mixes cut-out products with rectangular photos: when one product cannot be
        lifted off its backdrop, every product is framed whole.
        """
        swatches = [_rgb(c) for c in self.look.palette.swatches]
        lines = self.request.lines
        subjects: list[Subject | None] = []
        for index, line in enumerate(lines):
            subjects.append(subject_of(line.picture, _bucket(box_side)))
            self.report(0.1 + 0.4 * (index + 1) / len(lines))
        framed = any(subject is not None and not subject.cutout for subject in subjects)
        items = []
        for index, (line, subject) in enumerate(zip(lines, subjects, strict=True)):
            if subject is not None and framed:
                subject = subject.framed()
            if subject is not None and self.look.sepia and self.look.frame != "polaroid":
                subject = _toned(subject, self.look.sepia)
            name = line.product.name.strip() or line.product.id or "Product"
            items.append(_Item(name, line.quantity, swatches[index % len(swatches)], subject, framed))
        return items

    def compose(self, canvas: Image.Image, area: _Box) -> None:
        """Lays the cart's products out over the backdrop."""
        look, size = self.look, self.size
        painter, aspect = _FRAMES[look.frame]
        count = len(self.request.lines)
        gap = {"scatter": 0.2, "shelves": 0.14}.get(look.layout, 0.28 if look.frame == "floating" else 0.16)
        largest = size * (0.64 if count == 1 else 0.42)  # one product is shown large
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


def _bucket(side: int) -> int:
    """Returns the size to cut a picture out at: one of a few steps, so carts and styles share cut-outs."""
    step = 64
    while step < side:
        step = step * 3 // 2
    return step


def _toned(subject: Subject, amount: float) -> Subject:
    """Returns the subject toned towards sepia."""
    return Subject(_sepia(subject.image, amount), subject.cutout, subject.bounds, subject.photo)


def encode(image: Image.Image, image_format: str) -> Picture:
    """Encodes the finished picture: JPEG or WebP at a quality that shows no loss (small for phones), or PNG.

    JPEG keeps full colour resolution (4:4:4), so coloured text on coloured ribbons stays crisp; it
    encodes in milliseconds. WebP is a third smaller but takes 50-150 ms more at 1024 px.
    """
    out = io.BytesIO()
    if image_format == "jpeg":
        image.save(out, format="JPEG", quality=90, subsampling=0)
    elif image_format == "webp":
        image.save(out, format="WEBP", quality=88, method=2)
    else:
        image.save(out, format="PNG", compress_level=4)
    return Picture(data=out.getvalue(), mime_type=FORMATS[image_format])
