"""Lifting a product off its studio backdrop: a backdrop model, GrabCut seeded from it, and edge matting.

A product photo (the shop's are 700 x 700 on grey seamless paper) is read as backdrop + product +
the product's shadow. The backdrop is a smooth surface (paper with a light gradient and a vignette),
fitted robustly to the pixels that agree with it; what differs from it is product or shadow. A shadow
only darkens the paper, keeping its hue and staying smooth; the product changes it. Those seeds go to
OpenCV's GrabCut, which settles the doubtful pixels by colour models and edges. Enclosed bodies outlined
by fine lines (glass) stay see-through; paper the product wraps round but leaves open on one side (the
gap under a pair of sunglasses' bridge) is dropped, as is the photo's own shadow (frames cast their own).
Slivers of paper too thin for the small working copy (between bridge bars, into the corners where they
meet) and contact shade it took in are found again at full size.
Cut-outs are kept by picture content and size, within a memory bound.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
from collections.abc import Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps

from imagegen.domain import Picture
from imagegen.generators.collage.kept import Kept

log = logging.getLogger(__name__)

# Product photos and normalised backgrounds are far smaller; a bigger picture is refused rather than
# decoded, which would take hundreds of megabytes.
_MAX_SOURCE_PIXELS = 16_000_000
_CACHE_BYTES = 48 * 1024 * 1024  # cut-outs kept for the carts to come (a 400 px one is about 1 MiB)
_WORK_SIDE = 192  # GrabCut runs on a copy at most this big: it costs about 0.1 s there
_LIFT_SIDE = 729  # products are cut out once at up to this size and made smaller: thin parts need the pixels
_BAND = 0.05  # the border band the backdrop is first fitted to, as a share of the side
_MIN_BACKDROP_BORDER = 0.5  # less of the border than this looks like paper: not a studio shot
_MAX_BACKDROP_NOISE = 8.0  # a backdrop noisier than this (grey levels) is a textured scene
_MIN_PAPER_LIGHT = 140.0  # studio paper is light; a darker ground is a scene
_SHADOW_RATIO = 0.42  # a shadow keeps at least this share of the paper's light
_GLASS_LIGHT = 0.84  # paper seen through glass keeps more of its light than this; a shadow does not
_GUIDE_EPS = 1e-4  # the guided filter's smoothing: small, so the outline follows the photo's own edge
_GUIDE_GAIN = 8.0  # the filtered ramp sharpened back to an edge a pixel or two wide
_GLASS_FLOOR = 0.12  # the least opacity of a see-through part, so glass still reads as glass
_HOLE_HUE = 0.008  # paper seen through a hole keeps its hue within this (on average)
_HOLE_LIGHT = 0.65  # ... and more than this share of its light
_PAPER_LIT = 0.9  # smooth paper in the outline keeping this share of the backdrop's light is paper, not product
_GLASS_BODY = 0.03  # a see-through part is at least this thick (a radius, as a share of the side)
_SHEEN_TEXTURE = 0.8  # a gap this textured inside its rim may be a reflection (a hole through a mug: 0.5)
_SHEEN_UNEVEN = 4.0  # ... when its light varies more than this many times the paper's noise (paper: about 1)


@dataclasses.dataclass(frozen=True)
class Subject:
    """A product picture ready to place: cut out of its backdrop (RGBA), or a plain photo."""

    image: Image.Image
    cutout: bool
    bounds: tuple[int, int, int, int] | None = None  # the product itself within image
    photo: Image.Image | None = None  # the whole photo, for a picture whose products are all framed

    def framed(self) -> Subject:
        """Returns the subject as a plain photo, as a cart that cannot be lifted whole shows it."""
        return Subject(self.photo.convert("RGBA"), False) if self.cutout and self.photo is not None else self


def _bytes(image: Image.Image) -> int:
    """Returns the memory an image's pixels take."""
    return image.width * image.height * len(image.getbands())


_kept: Kept[Subject | None] = Kept(_CACHE_BYTES)


def subject_of(picture: Picture | None, want: int) -> Subject | None:
    """Returns the product picture decoded at about want pixels and cut out; None if missing or unreadable."""
    if picture is None or not picture.data:
        return None
    key = (hashlib.sha256(picture.data).digest(), want)
    found, subject = _kept.lookup(key)
    if found:
        return subject
    image = decode(picture, want)
    if image is None:
        subject = None
    elif want < _LIFT_SIDE and max(image.size) < _LIFT_SIDE:
        subject = _smaller(subject_of(picture, _LIFT_SIDE), image)
    else:
        subject = _prepare(image)
    cost = 0 if subject is None else sum(_bytes(i) for i in (subject.image, subject.photo) if i is not None)
    _kept.put(key, subject, cost + 256)
    return subject


def _smaller(large: Subject | None, image: Image.Image) -> Subject | None:
    """Returns the subject cut out at full size, made as small as image (the picture decoded smaller)."""
    if large is None or not large.cutout or large.photo is None:
        return None if large is None else Subject(image.convert("RGBA"), False, None, image.convert("RGB"))
    scale = image.width / large.photo.width
    size = (max(1, round(large.image.width * scale)), max(1, round(large.image.height * scale)))
    bounds = None if large.bounds is None else tuple(round(v * scale) for v in large.bounds)
    return Subject(large.image.resize(size, Image.Resampling.LANCZOS), True, bounds, image.convert("RGB"))  # type: ignore[arg-type]


def decode(picture: Picture | None, want: int) -> Image.Image | None:
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
        image.thumbnail((want, want), Image.Resampling.LANCZOS, reducing_gap=2.0)
        return image
    except Exception as exc:  # noqa: BLE001 - a broken picture must degrade to a drawn card, never fail the cart
        log.warning("picture could not be decoded: %s", type(exc).__name__)
        return None


def _prepare(image: Image.Image) -> Subject:
    """Cuts the product out of its picture, or keeps the photo whole when it is no studio shot."""
    photo = image.convert("RGB")
    if image.mode == "RGBA":
        alpha = image.getchannel("A")
        if alpha.getextrema()[0] < 250:  # already cut out
            box = alpha.point(lambda v: 255 if v > 24 else 0).getbbox()
            return Subject(image.crop(box) if box else image, True, None, photo)
    try:
        lifted = lift(photo)
    except (cv2.error, np.linalg.LinAlgError) as exc:
        log.warning("product could not be cut out: %s", type(exc).__name__)
        lifted = None
    if lifted is None:
        return Subject(photo.convert("RGBA"), False, None, photo)
    box = lifted.getchannel("A").point(lambda v: 255 if v > 24 else 0).getbbox()
    if box is None:
        return Subject(photo.convert("RGBA"), False, None, photo)
    margin = max(2, round(max(image.size) * 0.02))
    crop = (
        max(0, box[0] - margin),
        max(0, box[1] - margin),
        min(image.width, box[2] + margin),
        min(image.height, box[3] + margin),
    )
    bounds = (box[0] - crop[0], box[1] - crop[1], box[2] - crop[0], box[3] - crop[1])
    return Subject(lifted.crop(crop), True, bounds, photo)


def lift(image: Image.Image) -> Image.Image | None:
    """Returns the product cut out of a studio photo as RGBA of the same size; None when it is no studio shot."""
    rgb = np.asarray(image.convert("RGB"), np.float32)
    h, w = rgb.shape[:2]
    if min(h, w) < 16:
        return None
    scale = min(1.0, _WORK_SIDE / max(h, w))
    sw, sh = max(8, round(w * scale)), max(8, round(h * scale))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    model = _fit_backdrop(small)
    if model is None:
        return None
    coeffs, noise = model
    paper_small = _evaluate(coeffs, sw, sh)
    found = _segment(small, paper_small, noise)
    if found is None:
        return None
    paper = _evaluate(coeffs, w, h)
    alpha = _matte(rgb, paper, *found, noise)
    if alpha.max() < 0.5:
        return None
    colour = _unmix(rgb, paper, alpha)
    out = np.dstack([colour, alpha * 255.0]).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(out, "RGBA")


# ------------------------------------------------------------------------------------------ backdrop


def _terms(w: int, h: int) -> np.ndarray:
    """Returns the smooth-surface terms (constant, gradients, curvature, vignette) at every pixel, h x w x 7."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (u + 0.5) / w * 2 - 1
    v = (v + 0.5) / h * 2 - 1
    r2 = u * u + v * v
    return np.dstack([np.ones_like(u), u, v, u * u, u * v, v * v, r2 * r2])


def _evaluate(coeffs: np.ndarray, w: int, h: int) -> np.ndarray:
    """Returns the fitted backdrop at w x h, RGB float."""
    return _terms(w, h) @ coeffs


def _fit_backdrop(small: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Fits a smooth surface to the paper, robustly; returns its coefficients (7 x 3) and the paper's noise."""
    h, w = small.shape[:2]
    terms = _terms(w, h).reshape(-1, 7)
    pixels = small.reshape(-1, 3)
    band = max(2, round(min(w, h) * _BAND))
    border = np.zeros((h, w), bool)
    border[:band], border[-band:], border[:, :band], border[:, -band:] = True, True, True, True
    border = border.reshape(-1)
    # Start from the border's commonest brightness: the paper is one even tone there, a product is not.
    light = pixels.mean(axis=1)
    counts, edges = np.histogram(light[border], bins=64, range=(0, 256))
    mode = edges[np.argmax(counts)] + 2.0
    use = border & (np.abs(light - mode) < 14.0)
    coeffs, spread = np.zeros((7, 3), np.float32), 0.0
    for step in range(6):
        if use.sum() < 40:
            return None
        coeffs = np.linalg.lstsq(terms[use], pixels[use], rcond=None)[0]
        residual = np.abs(pixels - terms @ coeffs).max(axis=1)
        spread = float(np.median(residual[use])) * 1.4826
        agree = residual < min(max(3.0 * spread, 3.0), 18.0)
        # First settle on the border, then let every agreeing pixel refine the paper's falloff.
        use = agree & border if step < 3 else agree
    if spread > _MAX_BACKDROP_NOISE or (use & border).sum() < _MIN_BACKDROP_BORDER * border.sum():
        return None
    if float(np.mean(pixels[use & border])) < _MIN_PAPER_LIGHT:
        return None  # a dark or coloured scene, not a product on studio paper
    return coeffs.astype(np.float32), max(spread, 1.0)


# ------------------------------------------------------------------------------------------ evidence


def _evidence(rgb: np.ndarray, paper: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns how far each pixel is from the paper (grey levels), whether it is paper-like, and its detail.

    Paper-like pixels change the paper's light evenly in every channel (a shadow, or paper seen through
    glass); detail is local contrast (a product's texture, the fine lines of glass), which shadows lack.
    """
    difference = np.abs(rgb - paper).max(axis=2)
    ratio = rgb / np.maximum(paper, 1.0)
    light = ratio.mean(axis=2)
    hue_shift = np.abs(ratio - light[..., None]).max(axis=2)
    paper_like = (light < 1.04) & (light > _SHADOW_RATIO) & (hue_shift < 0.035 + noise / 255.0 * 2)
    detail = np.abs(light - cv2.GaussianBlur(light, (0, 0), 1.2))
    return difference, paper_like, detail


def _segment(small: np.ndarray, paper: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Returns the product's mask on the small copy, its glass pockets, and the paper-like rest inside it.

    Glass pockets are outlined by glass walls and always keep a little opacity; paper-like parts that
    GrabCut took in (paper seen through glass, or a gap it bridged) are as see-through as they look.
    """
    h, w = small.shape[:2]
    difference, paper_like, detail = _evidence(small, paper, noise)
    textured = cv2.GaussianBlur(detail, (0, 0), 1.5) > 0.012 + noise / 255.0
    shadow = paper_like & ~textured
    low = max(4.0 * noise, 9.0)
    seeds = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    seeds[difference < low * 0.7] = cv2.GC_BGD
    likely = (difference >= low) & ~shadow
    seeds[likely] = cv2.GC_PR_FGD
    sure = cv2.erode(((difference > max(10.0 * noise, 40.0)) & ~shadow).astype(np.uint8), np.ones((3, 3), np.uint8))
    seeds[sure > 0] = cv2.GC_FGD
    if not likely.any():
        return None
    if (seeds == cv2.GC_BGD).any() and ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).any():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(1)  # GrabCut's colour models start from k-means: the same photo, the same cut-out
        cv2.grabCut(small.astype(np.uint8), seeds, None, bgd, fgd, 2, cv2.GC_INIT_WITH_MASK)
    solid = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.uint8)
    light = (small / np.maximum(paper, 1.0)).mean(axis=2)
    solid = _drop_specks(_peel(solid, paper_like & (difference >= low * 0.7)))
    ratio = small / np.maximum(paper, 1.0)
    solid, holes = _open_holes(solid, paper_like, ratio)
    share = solid.mean()
    if share < 0.004 or share > 0.92:
        return None
    lines, apart = _fine_lines(detail, solid)
    product, pockets = _with_glass(solid, lines, apart, difference, light, noise)
    # Fill the notches GrabCut leaves where a sheen runs along the product's edge.
    notches = cv2.morphologyEx(product.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0
    product = (product | notches) & ~holes
    product |= _sheen(product, textured, light, noise)
    pockets &= ~holes
    gaps = _open_pockets(product, paper_like, ratio, textured)
    product &= ~gaps
    pockets &= ~gaps
    # Smooth, paper-like parts inside the outline are paper: seen through glass when they keep most of
    # its light, else a shadow in a hole or under an arm, which is dropped.
    seen_through = product & shadow & (light > _GLASS_LIGHT) & ~pockets
    seen_through &= _near(pockets, 2)
    return product, pockets, seen_through


def _open_holes(solid: np.ndarray, paper_like: np.ndarray, ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns the mask with its holes opened, and the holes: paper ringed all round by the product.

    GrabCut tends to close small holes (a mug's handle); what shows the paper through them is not product.
    A hole keeps most of the paper's light and exactly its hue; a pale lining inside a shoe does not.
    """
    holes = np.zeros(solid.shape, bool)
    for part, ring, paper_light in _paper_parts((solid > 0) & paper_like, ratio, 0.0015):
        if paper_light and float(np.mean(solid.astype(bool)[ring])) > 0.97 and not _touches_border(part):
            holes |= part
    return np.where(holes, 0, solid).astype(np.uint8), holes


def _sheen(product: np.ndarray, textured: np.ndarray, light: np.ndarray, noise: float) -> np.ndarray:
    """Returns the gaps ringed by the product that carry its texture: reflections, not holes.

    Polished metal mirrors the paper, so GrabCut and the hole rule see paper's colour there; a hole through
    the product shows the paper's own surface away from its rim, as even as the paper's noise, where a
    reflection varies with the metal's bumps. A gap too small to tell is left as GrabCut found it.
    """
    found = np.zeros(product.shape, bool)
    count, labels = cv2.connectedComponents((~product).astype(np.uint8), connectivity=4)
    for index in range(1, count):
        gap = labels == index
        if _touches_border(gap):
            continue
        core = gap & ~_near(product, 1)  # the rim of a hole looks textured next to the product's edge
        if (core.any() and float(np.mean(textured[core])) > _SHEEN_TEXTURE
                and float(np.std(light[core])) > _SHEEN_UNEVEN * noise / 255.0):
            found |= gap
    return found


def _open_pockets(product: np.ndarray, paper_like: np.ndarray, ratio: np.ndarray, textured: np.ndarray) -> np.ndarray:
    """Returns the paper GrabCut took in where the product wraps round it but leaves one side open.

    The gap under a pair of sunglasses' bridge is such a pocket: smooth paper of exactly its hue, ringed
    by the product on most sides and reaching the backdrop on one; a pale part of the product along its
    outline has the backdrop along a whole side, or its own colour or texture.
    """
    found = np.zeros(product.shape, bool)
    for part, ring, plain in _paper_parts(product & paper_like, ratio, 0.0008):
        wrapped = float(np.mean(product[ring]))
        core = part & ~_near(product & ~part, 3)  # the product's own edges look textured next to it
        smooth = core.any() and float(np.mean(textured[core])) < 0.5
        if plain and smooth and 0.6 < wrapped < 0.97:
            found |= part
    return found


def _paper_parts(mask: np.ndarray, ratio: np.ndarray, min_share: float) -> Iterator[tuple[np.ndarray, np.ndarray, bool]]:
    """Yields each 4-connected part of mask covering at least min_share of the picture, the ring of pixels
    just outside it, and whether it keeps most of the paper's light and exactly its hue."""
    light = ratio.mean(axis=2)
    hue_shift = np.abs(ratio - light[..., None]).max(axis=2)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    for index in range(1, count):
        if stats[index, cv2.CC_STAT_AREA] < mask.size * min_share:
            continue
        part = labels == index
        ring = _near(part, 1) & ~part
        yield part, ring, float(np.mean(light[part])) > 0.65 and float(np.mean(hue_shift[part])) < 0.02


def _touches_border(mask: np.ndarray) -> bool:
    """Returns whether the mask reaches the picture's edge."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _peel(solid: np.ndarray, shade: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Returns the mask with the shadow peeled off its rim: next to an edge a shadow looks textured.

    Only the rim of thick parts is peeled: a thin arm or strap is all rim, and stays.
    """
    square = np.ones((3, 3), np.uint8)
    for _ in range(rounds):
        interior = cv2.erode(solid, square)
        rim = solid.astype(bool) & ~(interior > 0) & (cv2.dilate(interior, square) > 0)
        solid = np.where(rim & shade, 0, solid).astype(np.uint8)
    return solid


def _near(mask: np.ndarray, reach: int) -> np.ndarray:
    """Returns the pixels within reach of the mask."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _drop_specks(solid: np.ndarray) -> np.ndarray:
    """Returns the mask without the crumbs of noise: components far smaller than the largest."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    if count <= 2:
        return solid
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(count, np.uint8)
    keep[1:] = areas >= max(6, areas.max() * 0.02)
    return keep[labels]


def _fine_lines(detail: np.ndarray, solid: np.ndarray) -> tuple[np.ndarray, bool]:
    """Returns the faint lines of the product's glass parts (uint8 0/1), and whether some stand apart.

    Lines that touch the product are its glass walls; a closed ring of line near it but apart from it
    (the bottom of a glass jar under its lid, the walls too faint to see) is glass too, and then the
    product's outline is the hull around both.
    """
    threshold = max(0.007, 4.0 * float(np.median(detail)))
    lines = (detail > threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    keep = np.zeros(count, np.uint8)
    keep[np.unique(labels[_near(solid, 2) & (lines > 0)])] = 1
    reach = _near(solid, max(3, round(solid.shape[0] * 0.08)))
    apart = False
    for index in range(1, count):
        x, y, w, h, area = stats[index]
        if keep[index] or area < solid.size * 0.002 or not reach[labels == index].any():
            continue
        if w * h > 4 * area and min(w, h) > solid.shape[0] * 0.06:  # a ring: it encloses room
            keep[index], apart = 1, True
    keep[0] = 0
    keep[stats[:, cv2.CC_STAT_AREA] < 6] = 0
    return keep[labels], apart


def _with_glass(
    solid: np.ndarray, lines: np.ndarray, apart: bool, difference: np.ndarray, light: np.ndarray, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Returns the product with its glass pockets added, and those pockets.

    A pocket is glass when fine lines (not the solid product) outline it, as a jar's walls do, or when
    it differs from the paper and holds reflections; a plain hole (a mug's handle) is ringed by the
    solid product and shows the paper, or a smooth shadow on it, so it stays a hole.
    """
    structure = cv2.morphologyEx(solid | lines, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(structure, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(solid)
    if apart:
        contours = [cv2.convexHull(np.vstack(contours))]
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    # Lines along the outside of the product are its edge, not glass: look only well inside the outline.
    pockets = cv2.erode(filled, np.ones((5, 5), np.uint8)) & (1 - solid)
    count, labels = cv2.connectedComponents(pockets, connectivity=4)
    glass = np.zeros(solid.shape, bool)
    inner = np.zeros(solid.shape, bool)
    wide_lines = _near(lines, 1)
    for index in range(1, count):
        pocket = labels == index
        ring = _near(pocket, 2) & ~pocket
        thick = cv2.erode(pocket.astype(np.uint8), np.ones((5, 5), np.uint8)).any()
        if not thick or pocket.sum() < solid.size * 0.001 or float(np.mean(filled[ring])) < 0.97:
            continue  # a crumb, a sliver along an edge, or a notch in the outside edge
        # Seen through glass the paper keeps most of its light; a shadow in a hole does not.
        bright = float(np.mean(light[pocket])) > _GLASS_LIGHT
        walls = ring & ~solid.astype(bool)
        # Outlined: a good part of the pocket's rim is not the solid product but fine lines (glass walls),
        # or the hull drawn to a ring of glass apart from the product; a gap bridged by closing is not.
        outlined = bright and float(np.mean(walls[ring])) > 0.3 and (apart or float(np.mean(wide_lines[walls])) > 0.6)
        # Reflections lie inside the glass; the lines along a hole's own rim are the product's edge.
        middle = cv2.erode(pocket.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        reflective = (
            bright
            and middle.any()
            and float(np.mean(difference[pocket])) > 2.5 * noise + 2.0
            and 0.04 < float(np.mean(wide_lines[middle])) < 0.7
        )
        # Glass is a body its walls enclose; a sliver of paper between thin bars or along a lens's rim is a gap.
        radius = float(cv2.distanceTransform(pocket.astype(np.uint8), cv2.DIST_L2, 3).max())
        body = radius >= _GLASS_BODY * max(solid.shape)
        if (outlined or reflective) and body:
            glass |= pocket
        elif float(np.mean(light[pocket])) < 0.75 and float(np.mean(wide_lines[pocket])) > 0.3:
            inner |= pocket  # a dark, detailed opening (a candle holder's cup) is the product itself
    glass = _near(glass, 3) & (filled > 0) & ~solid.astype(bool)  # out to the glass's own walls
    return solid.astype(bool) | glass | inner, glass


# ------------------------------------------------------------------------------------------ matting


def _matte(
    rgb: np.ndarray, paper: np.ndarray, product: np.ndarray, glass: np.ndarray, seen: np.ndarray, noise: float
) -> np.ndarray:
    """Returns the full-size opacity (0..1): the product's smooth outline, paper and shadow taken off its edge.

    The outline comes from the small mask, enlarged smoothly; along it, pixels that are plainly paper
    (or the photo's shadow, or the bright halo sharpening leaves) are dropped, so no grey rim remains.
    """
    h, w = rgb.shape[:2]
    step = max(1.0, w / product.shape[1])
    inside = cv2.resize(product.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    inside = cv2.GaussianBlur(inside, (0, 0), step * 0.35)
    # Set a little inside the small mask's edge: its outermost pixels mix product and shadow.
    outline = np.clip((inside - 0.6) * 2.5 + 0.5, 0.0, 1.0)
    edge = (inside > 0.02) & (outline < 0.999)
    soft = cv2.GaussianBlur(rgb, (3, 3), 0)
    difference = np.abs(soft - paper).max(axis=2)
    ratio = soft / np.maximum(paper, 1.0)
    light = ratio.mean(axis=2)
    neutral = np.abs(ratio - light[..., None]).max(axis=2) < 0.05
    low = max(3.0 * noise, 6.0)
    # Outside the small mask's edge a paper-like pixel is shadow or halo; inside it may be the product's
    # own sheen (a black mug's rim light), and only a pixel that is plainly paper goes.
    shade = neutral & (light > _SHADOW_RATIO) & (light < 1.15)
    paper_like = (difference < low) | (shade & (inside < 0.5))
    alpha = np.where(edge & paper_like, 0.0, outline).astype(np.float32)
    # The small mask's edge steps across a thin slanted part (an arm) in stairs; pixels along it that are
    # plainly product, and not mixed with the paper at its edge, are kept whole: the edge follows the photo's.
    plain = ((difference > max(10.0 * noise, 40.0)) & ~shade).astype(np.uint8)
    alpha[edge & (cv2.erode(plain, np.ones((3, 3), np.uint8)) > 0)] = 1.0
    # Where the photo's own edge is plain (the product differs from the paper more than its shadow does),
    # let it place the outline: opacity made locally linear in the difference from the paper, so the
    # small mask's stairs and bites along a neutral product (polished metal) follow the photo instead.
    reach = max(2, round(step * 1.5))
    band = _near(edge, reach)
    refined = _guided(difference / 255.0, alpha, reach, _GUIDE_EPS)
    alpha = np.where(band, np.clip((refined - 0.5) * _GUIDE_GAIN + 0.5, 0.0, 1.0), alpha).astype(np.float32)
    see_through = _see_through(rgb, paper) * 1.6
    glassy = np.zeros((h, w), bool)
    for part, floor in ((seen, 0.0), (glass, _GLASS_FLOOR)):
        clear = (cv2.resize(part.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0) & (inside > 0.5)
        alpha[clear] = np.clip(see_through[clear], floor, 1.0)
        glassy |= clear
    holes = _fine_holes(ratio, shade & ~glassy, inside, step)
    alpha[holes] = 0.0
    # Along a hole's edge a pixel mixes the paper with the bar beside it: as opaque as it is dark.
    rim = _near(holes, 2) & ~holes & shade & ~glassy
    darkest = cv2.erode(light, np.ones((5, 5), np.uint8))
    mixed = np.clip((1.0 - light) / np.maximum(1.0 - darkest, 1e-3), 0.0, 1.0)
    alpha[rim] = np.minimum(alpha[rim], mixed[rim])
    return cv2.GaussianBlur(alpha, (3, 3), 0.6)


def _fine_holes(ratio: np.ndarray, shade: np.ndarray, inside: np.ndarray, step: float) -> np.ndarray:
    """Returns the paper the small mask took in, found at full size: holes it closed, backdrop it took in.

    A gap a pixel or two wide on the small copy (the paper between a pair of sunglasses' bridge bars) is
    many pixels wide here. A hole shows the paper, shaded but smooth and of exactly its hue, as even as
    the backdrop outside; polished metal mirroring the paper carries the metal's texture, and a smoky
    lens is darker than most of the paper's light. Glass is left to its own see-through rule.
    """
    light = ratio.mean(axis=2)
    hue_shift = np.abs(ratio - light[..., None]).max(axis=2)
    detail = cv2.GaussianBlur(np.abs(light - cv2.GaussianBlur(light, (0, 0), 1.0)), (0, 0), 1.0)
    outside, within = inside < 0.02, inside >= 0.02
    found = np.zeros(light.shape, bool)
    if not outside.any():
        return found
    smooth = detail < 2.0 * float(np.percentile(detail[outside], 95))
    parts = shade & smooth
    count, labels, stats, _ = cv2.connectedComponentsWithStats(parts.astype(np.uint8), connectivity=4)
    open_ = np.zeros(count, bool)
    open_[np.unique(labels[outside & parts])] = True  # reaching the backdrop: no hole
    for index in range(1, count):
        if open_[index] or stats[index, cv2.CC_STAT_AREA] < 4.0 * step * step:
            continue  # open to the backdrop, or smaller than a few working pixels: the small mask saw it
        x, y, bw, bh = stats[index, :4]
        part = labels[y:y + bh, x:x + bw] == index
        if (float(np.mean(light[y:y + bh, x:x + bw][part])) > _HOLE_LIGHT
                and float(np.mean(hue_shift[y:y + bh, x:x + bw][part])) < _HOLE_HUE):
            found[y:y + bh, x:x + bw] |= part
    # Next to the product's edge the paper looks less smooth: take the pale shade the hole joins, then a
    # few pixels of any shade, up to the product's own edge.
    pale = (shade & (light > _HOLE_LIGHT) & within).astype(np.uint8)
    count, labels = cv2.connectedComponents(pale, connectivity=4)
    joined = np.zeros(count, bool)
    joined[np.unique(labels[found & (pale > 0)])] = True
    joined[0] = False
    found |= joined[labels]
    square = np.ones((3, 3), np.uint8)
    for _ in range(max(2, round(step * 1.5))):
        found |= (cv2.dilate(found.astype(np.uint8), square) > 0) & shade
    # Paper lit nearly as the backdrop, or shade of exactly its hue (a contact shadow), reaching in from it
    # along the outline is no product either, as far in as the small mask can be wrong; a thin arm's own
    # pixels are darker, polished metal is tinted or textured.
    lit = smooth & shade & ((light > _PAPER_LIT) | (hue_shift < _HOLE_HUE))
    count, labels = cv2.connectedComponents(lit.astype(np.uint8), connectivity=4)
    reaching = np.zeros(count, bool)
    reaching[np.unique(labels[outside & lit])] = True
    reaching[0] = False
    taken = reaching[labels] & _near(outside, max(2, round(step * 5))) & within
    # Further in, paper narrowing into a corner between two bars (a brow bar meeting a lens's rim) is
    # still paper: a wedge of it too narrow for the small mask, joined to the paper already taken.
    wide = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * round(step * 1.5) + 1,) * 2)
    bright = shade & (light > _PAPER_LIT) & within  # beside the bars the paper looks less smooth
    narrow = bright & (cv2.morphologyEx(bright.astype(np.uint8), cv2.MORPH_OPEN, wide) == 0)
    count, labels = cv2.connectedComponents((taken | narrow).astype(np.uint8), connectivity=4)
    joined = np.zeros(count, bool)
    joined[np.unique(labels[taken])] = True
    joined[0] = False
    taken |= joined[labels]
    for _ in range(max(2, round(step * 1.5))):
        taken |= (cv2.dilate(taken.astype(np.uint8), square) > 0) & shade & (light > _PAPER_LIT - 0.1) & within
    return (found | taken) & within


def _guided(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Returns source filtered to follow guide's edges (He's guided filter, grey guide, box windows)."""
    window = (2 * radius + 1, 2 * radius + 1)
    guide = guide.astype(np.float32)
    mean_g = cv2.boxFilter(guide, -1, window)
    mean_s = cv2.boxFilter(source, -1, window)
    covariance = cv2.boxFilter(guide * source, -1, window) - mean_g * mean_s
    variance = cv2.boxFilter(guide * guide, -1, window) - mean_g * mean_g
    a = covariance / (variance + eps)
    b = mean_s - a * mean_g
    return cv2.boxFilter(a, -1, window) * guide + cv2.boxFilter(b, -1, window)


def _see_through(rgb: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """Returns the least opacity with which some colour over the paper gives each pixel (colour to alpha)."""
    darker = (paper - rgb) / np.maximum(paper, 1.0)
    lighter = (rgb - paper) / np.maximum(255.0 - paper, 1.0)
    return np.clip(np.maximum(darker, lighter).max(axis=2), 0.0, 1.0)


def _unmix(rgb: np.ndarray, paper: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Returns the product's own colour: the pixel with the paper's share taken out."""
    a = np.maximum(alpha, 1e-3)[..., None]
    colour = (rgb - (1.0 - a) * paper) / a
    return np.where(alpha[..., None] > 0.98, rgb, colour).clip(0, 255)
