"""Cut-outs measured against the truth: studio photos of known shape, lifted off their backdrop."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from devstack.photos import STUDIO_PRODUCTS, StudioPhoto, studio_photo
from imagegen.domain import Picture
from imagegen.generators.collage.cutout import lift, subject_of
from imagegen.generators.collage.kept import Kept

KEPT = 24  # an opacity above this (of 255) counts as part of the cut-out


def photo(kind: str, seed: int = 1) -> tuple[StudioPhoto, Image.Image]:
    """The studio photo of kind and its decoded RGB picture."""
    shot = studio_photo(kind, seed=seed)
    return shot, Image.open(io.BytesIO(shot.jpeg)).convert("RGB")


def opacity(kind: str, seed: int = 1) -> tuple[StudioPhoto, np.ndarray]:
    """The studio photo of kind and the opacity (0-255) of its cut-out."""
    shot, image = photo(kind, seed)
    lifted = lift(image)
    assert lifted is not None, f"{kind} was not recognised as a studio shot"
    assert lifted.size == image.size
    return shot, np.asarray(lifted.getchannel("A"))


def overlap(found: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks."""
    return float((found & truth).sum() / max(1, (found | truth).sum()))


def test_a_different_photo_session_is_cut_out_as_well() -> None:
    # Another seed: the paper's tint and side light, and the noise, differ.
    for kind in ("box", "dark", "edge"):
        shot, alpha = opacity(kind, seed=3)
        assert overlap(alpha > KEPT, np.asarray(shot.mask) > 0) >= 0.9, kind


def test_the_studio_photos_look_like_the_shops() -> None:
    for kind in STUDIO_PRODUCTS:
        shot, image = photo(kind)
        assert image.size == (700, 700)
        assert Image.open(io.BytesIO(shot.jpeg)).format == "JPEG"
        corner = np.asarray(image.crop((0, 0, 40, 40)), np.float32)
        assert 170 < corner.mean() < 245 and corner.std() > 1.0  # light grey paper, with noise


@pytest.mark.parametrize("kind", ["box", "dark", "edge", "thin"])
def test_an_opaque_product_is_cut_out_along_its_true_outline(kind: str) -> None:
    shot, alpha = opacity(kind)

    assert overlap(alpha > KEPT, np.asarray(shot.mask) > 0) >= 0.9


def test_a_glass_product_is_cut_out_along_its_true_outline() -> None:
    shot, alpha = opacity("glass")

    assert overlap(alpha > KEPT, np.asarray(shot.mask) > 0) >= 0.8


def test_glass_stays_see_through_rather_than_filled_with_backdrop_grey() -> None:
    shot, alpha = opacity("glass")
    assert shot.glass is not None
    body = np.asarray(shot.glass.filter(ImageFilter.MinFilter(31))) > 0  # well inside the walls

    assert 0.04 * 255 < alpha[body].mean() < 0.6 * 255


def test_thin_parts_are_kept() -> None:
    shot, alpha = opacity("thin")
    assert shot.thin is not None
    arms = np.asarray(shot.thin) > 0

    assert (alpha[arms] > KEPT).mean() >= 0.8


@pytest.mark.parametrize("seed", [1, 2, 5, 6])
def test_the_open_pocket_between_the_lenses_shows_what_is_behind_it(seed: int) -> None:
    # Under the bridge the lenses wrap round a pocket of paper that is open at the bottom; in some
    # sessions GrabCut bridges it, and it must not stay in the cut-out as a grey patch.
    shot, alpha = opacity("thin", seed)
    truth = np.asarray(shot.mask) > 0
    pocket = np.zeros_like(truth)
    pocket[345:400, 340:360] = True  # between the lenses (x 329-371), below the bridge (y 329)
    assert not truth[pocket].any()

    assert (alpha[pocket] <= KEPT).mean() >= 0.9
    assert overlap(alpha > KEPT, truth) >= 0.9


def test_the_edge_follows_the_photo_rather_than_the_working_copys_stairs() -> None:
    # The mask is found on a small copy; enlarged, its edge would step in stairs along curves and slants.
    shot, alpha = opacity("dark")
    truth = np.asarray(shot.mask) > 0
    outer = np.asarray(shot.mask.filter(ImageFilter.MaxFilter(7))) > 0
    inner = np.asarray(shot.mask.filter(ImageFilter.MinFilter(7))) > 0
    band = outer & ~inner  # three pixels either side of the true outline

    assert ((alpha > KEPT) != truth)[band].mean() < 0.09


def test_a_hole_through_the_product_shows_what_is_behind_it() -> None:
    shot, alpha = opacity("dark")
    # The mug's handle encloses a hole: the pixels inside the handle's outline that the mug does not cover.
    truth = np.asarray(shot.mask) > 0
    hole = np.zeros_like(truth)
    hole[330:370, 218:258] = True  # the middle of the hole (a circle of radius 42 around 238, 350)
    assert not truth[hole].any()

    assert (alpha[hole] <= KEPT).mean() >= 0.9


@pytest.mark.parametrize("kind", ["box", "dark", "thin"])
def test_the_photos_own_shadow_is_left_behind(kind: str) -> None:
    shot, alpha = opacity(kind)
    near = np.asarray(shot.mask.filter(ImageFilter.MaxFilter(9))) > 0  # the outline, and a few pixels more

    assert (alpha[~near] > KEPT).mean() < 0.002


def test_a_busy_photo_is_not_cut_out() -> None:
    scene = Image.new("RGB", (400, 300), (40, 120, 60))
    draw = ImageDraw.Draw(scene)
    for i in range(0, 400, 23):
        draw.line((i, 0, 400 - i, 300), fill=(200 - i // 3, 90 + i // 4, 30), width=6)

    assert lift(scene) is None


def test_a_product_too_big_for_its_photo_is_framed_not_cut_out() -> None:
    wall = Image.new("RGB", (300, 300), (150, 30, 30))
    ImageDraw.Draw(wall).rectangle((0, 0, 299, 4), fill=(230, 230, 230))

    assert lift(wall) is None


def test_cut_outs_are_kept_by_picture_and_size() -> None:
    shot, _ = photo("box", seed=7)
    picture = Picture(shot.jpeg, "image/jpeg")

    first = subject_of(picture, 300)
    again = subject_of(Picture(bytes(shot.jpeg), "image/jpeg"), 300)
    other_size = subject_of(picture, 200)

    assert first is not None and first.cutout
    assert again is first  # the same content is not cut out twice
    assert other_size is not None and other_size.image.width < first.image.width


def test_the_keeping_is_bounded_by_bytes_and_drops_the_least_recently_used() -> None:
    kept: Kept[str] = Kept(limit=1000)
    for i in range(50):
        kept.put(i, f"value {i}", cost=100)
        kept.lookup(0)  # used again and again: it stays

    assert kept.used <= 1000
    assert len(kept) == 10
    assert kept.lookup(0) == (True, "value 0")
    assert kept.lookup(1) == (False, None)
    assert kept.lookup(49) == (True, "value 49")


def test_a_value_bigger_than_the_bound_is_not_kept() -> None:
    kept: Kept[str] = Kept(limit=1000)
    kept.put("huge", "x", cost=5000)

    assert kept.lookup("huge") == (False, None)
    assert kept.used == 0


@pytest.mark.parametrize("seed", [1, 3, 5])
def test_thin_frames_are_outlined_as_the_photo_draws_them_not_in_the_working_copys_stairs(seed: int) -> None:
    # Frames and arms are a pixel or two across the small copy; enlarged, its mask beads and dashes them.
    shot, alpha = opacity("thin", seed)

    assert overlap(alpha > KEPT, np.asarray(shot.mask) > 0) >= 0.95


def hammered_sphere(size: int = 700, seed: int = 1) -> tuple[bytes, list[tuple[float, float, float]]]:
    """A studio JPEG of a hammered metal sphere with a dark opening on paper, mirroring the paper in two
    highlights (paper-coloured, through the metal's bumps); returns it and the highlights (x, y, r) in shares."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    paper = 212 - 18 * (y / size) - 10 * ((x - size / 2) / size) ** 2
    image = np.dstack([paper, paper * 0.99, paper * 0.97])
    cx, cy, r = size * 0.5, size * 0.52, size * 0.3
    distance = np.hypot(x - cx, y - cy)
    bumps = np.asarray(Image.fromarray((rng.random((size // 4, size // 4)) * 255).astype(np.uint8))
                       .resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255.0 - 0.5
    metal = 120 + 50 * np.clip(1 - distance / r, 0, 1) + 70 * bumps
    highlights = [(0.40, 0.40, 0.05), (0.60, 0.62, 0.04)]
    for hx, hy, hr in highlights:
        spot = np.exp(-(((x - size * hx) ** 2 + (y - size * hy) ** 2) / (size * hr) ** 2))
        metal = metal * (1 - spot) + (paper + 60 * bumps) * spot
    opening = ((x - cx) / (r * 0.45)) ** 2 + ((y - (cy - r * 0.55)) / (r * 0.2)) ** 2 < 1
    metal = np.where(opening, 45 + 20 * bumps, metal)
    for channel, tint in enumerate((1.0, 1.0, 1.02)):
        image[..., channel] = np.where(distance < r, metal * tint, image[..., channel])
    image += rng.normal(0, 2.0, image.shape)
    out = io.BytesIO()
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6)).save(
        out, "JPEG", quality=85)
    return out.getvalue(), highlights


@pytest.mark.parametrize("size", [192, 300, 420, 700])
def test_paper_mirrored_in_textured_metal_is_the_product_not_a_hole(size: int) -> None:
    # Polished metal shows the paper's colour where it mirrors it; only the metal's texture tells it from
    # a hole, where the paper's own smooth surface shows. The candle holder's square holes were these.
    data, highlights = hammered_sphere()
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image.thumbnail((size, size))
    alpha = np.asarray(lift(image).getchannel("A"))
    y, x = np.mgrid[0:size, 0:size]
    for hx, hy, hr in highlights:
        middle = np.hypot(x - hx * size, y - hy * size) < hr * size * 0.6
        assert (alpha[middle] > KEPT).mean() >= 0.99, (hx, hy)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("size", [324, 486, 700])
def test_the_paper_between_a_brow_bar_and_the_bridge_shows_through(seed: int, size: int) -> None:
    # Aviators' brow bar runs a few pixels above the bridge and the rims; on the working copy the strip of
    # paper between them is two or three pixels high, and it must not stay in the cut-out as a grey bar.
    shot, image = photo("aviator", seed)
    if size != image.width:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    alpha = np.asarray(lift(image).getchannel("A"))
    strip = np.asarray(shot.gap.resize((size, size), Image.Resampling.BOX).filter(ImageFilter.MinFilter(3))) >= 250
    truth = np.asarray(shot.mask.resize((size, size), Image.Resampling.BOX)) >= 128
    assert strip.sum() > 0.001 * size * size

    assert (alpha[strip] > KEPT).mean() <= 0.35
    assert overlap(alpha > KEPT, truth) >= 0.85  # thin frames at 324 px are a pixel or two across


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("size", [486, 700])
def test_the_paper_in_the_corners_where_the_brow_bar_meets_the_rims_shows_through(seed: int, size: int) -> None:
    # The strip narrows to a wedge where the brow bar meets each lens's rim; its paper (and the pixels
    # mixing it with the bars) must not stay in the cut-out as white slivers beside the bridge.
    shot, image = photo("aviator", seed)
    if size != image.width:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    alpha = np.asarray(lift(image).getchannel("A"))
    gap = np.asarray(shot.gap.resize((size, size), Image.Resampling.BOX)) >= 128

    assert alpha[gap].mean() <= 0.06 * 255


@pytest.mark.parametrize("seed", [2, 3, 5])
def test_the_contact_shadow_under_a_round_product_is_left_behind(seed: int) -> None:
    # Where a sphere rests on the paper a pool of shade spreads under it, as grey and smooth as the metal
    # is near its lower edge; it must not hang below the outline as a pale blob.
    shot, alpha = opacity("sphere", seed)
    outside = np.asarray(shot.mask.filter(ImageFilter.MaxFilter(7))) == 0  # more than three pixels out
    pool = np.zeros_like(outside)
    pool[455:500, 280:420] = True  # under the sphere's lowest point (y 462)
    pool &= outside

    assert (alpha[pool] > KEPT).mean() <= 0.08
