"""The offline collage generator: a finished PNG of the cart in every style, whatever pictures come along."""

from __future__ import annotations

import colorsys
import io

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat

from devstack.photos import studio_photo
from imagegen.domain import CartLine, GenerationInput, Picture, Product
from imagegen.errors import EmptyCart
from imagegen.fonts import drawable, fit
from imagegen.generators.collage import CollageGenerator
from imagegen.styles import STYLES, resolve_style

SIZE = 384  # small pictures keep the suite fast; layout scales with the size


def product_shot(colour: tuple[int, int, int], shape: tuple[int, int] = (160, 160), fmt: str = "PNG") -> Picture:
    """A product photo: a coloured object with a soft shadow on a white studio backdrop."""
    image = Image.new("RGB", (300, 300), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    w, h = shape
    left, top = (300 - w) // 2, (300 - h) // 2
    draw.ellipse((left, top + h - 10, left + w, top + h + 14), fill=(225, 225, 225))
    draw.rounded_rectangle((left, top, left + w, top + h), radius=12, fill=colour)
    out = io.BytesIO()
    image.save(out, fmt)
    return Picture(out.getvalue(), "image/png" if fmt == "PNG" else "image/jpeg")


def line(name: str = "Mug", quantity: int = 1, picture: Picture | None = None, product_id: str = "") -> CartLine:
    """A cart line for a product named name."""
    return CartLine(Product(product_id or name.upper(), name), quantity, picture)


def draw(*lines: CartLine, style: str = "modern", background: Picture | None = None, size: int = SIZE) -> Image.Image:
    """Runs the generator and decodes what it returns."""
    picture = CollageGenerator("png").generate(
        GenerationInput(lines, resolve_style(style), background, size), lambda _: None
    )
    assert picture.mime_type == "image/png"
    return Image.open(io.BytesIO(picture.data))


def pixels_near(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 10) -> Image.Image:
    """A mask of the pixels within tolerance of colour on every channel."""
    r, g, b = ImageChops.difference(image.convert("RGB"), Image.new("RGB", image.size, colour)).split()
    return ImageChops.lighter(ImageChops.lighter(r, g), b).point(lambda v: 255 if v <= tolerance else 0)


def count(mask: Image.Image) -> int:
    """How many pixels a mask selects."""
    return mask.histogram()[255]


def hue(i: int, n: int) -> tuple[int, int, int]:
    """The i-th of n clearly different saturated colours."""
    r, g, b = colorsys.hsv_to_rgb(i / n, 1.0, 0.9)
    return (round(r * 255), round(g * 255), round(b * 255))


RED = (220, 30, 40)


def test_generator_is_named_collage():
    assert CollageGenerator.name == "collage"


@pytest.mark.parametrize(
    ("image_format", "mime_type", "decoded"),
    [("webp", "image/webp", "WEBP"), ("jpeg", "image/jpeg", "JPEG"), ("png", "image/png", "PNG")],
)
def test_output_is_encoded_as_asked_at_the_requested_size(image_format: str, mime_type: str, decoded: str):
    picture = CollageGenerator(image_format).generate(
        GenerationInput((line(picture=product_shot(RED)),), resolve_style("modern"), None, 1024), lambda _: None
    )

    image = Image.open(io.BytesIO(picture.data))
    assert picture.mime_type == mime_type
    assert image.format == decoded
    assert image.size == (1024, 1024)


def test_the_default_format_is_a_jpeg_a_phone_downloads_quickly():
    picture = CollageGenerator().generate(
        GenerationInput((line(picture=product_shot(RED)),), resolve_style("vintage"), None, 1024), lambda _: None
    )

    assert picture.mime_type == "image/jpeg"
    assert len(picture.data) < 400 * 1024


def test_a_lossy_picture_looks_like_the_lossless_one():
    lines = (line("Mug", 2, product_shot(RED)), line("Lamp", 1, product_shot((30, 90, 200))))
    request = GenerationInput(lines, resolve_style("vintage"), None, 512)
    exact = Image.open(io.BytesIO(CollageGenerator("png").generate(request, lambda _: None).data)).convert("RGB")

    for image_format in ("webp", "jpeg"):
        lossy = Image.open(io.BytesIO(CollageGenerator(image_format).generate(request, lambda _: None).data))
        # Film grain may change, the picture may not: compare what the eye sees, the grain smoothed away.
        seen = [i.filter(ImageFilter.GaussianBlur(1.5)) for i in (exact, lossy.convert("RGB"))]
        difference = ImageChops.difference(*seen).convert("L")
        assert ImageStat.Stat(difference).mean[0] < 2, image_format


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="jpeg, webp, png"):
        CollageGenerator("gif")


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_draws_the_cart_with_its_pictures(style: str):
    pictured = (line("Mug", 2, product_shot(RED)), line("Lamp", 1, product_shot((30, 90, 200))), line("Gift", 3))
    unpictured = (line("Mug", 2), line("Lamp", 1), line("Gift", 3))

    image = draw(*pictured, style=style).convert("RGB")

    assert image.size == (SIZE, SIZE)
    changed = ImageChops.difference(image, draw(*unpictured, style=style).convert("RGB")).convert("L")
    assert count(changed.point(lambda v: 255 if v > 40 else 0)) > 1500  # the product pictures are on it


def test_styles_draw_visibly_different_pictures():
    lines = (line("Mug", 2, product_shot(RED)), line("Lamp", 1, product_shot((30, 90, 200))))
    small = {name: draw(*lines, style=name, size=256).convert("RGB").resize((32, 32)) for name in STYLES}

    names = sorted(small)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            difference = ImageChops.difference(small[a], small[b]).convert("L")
            assert ImageStat.Stat(difference).mean[0] > 8, f"{a} and {b} look alike"


def test_a_single_product_is_drawn_large_and_centred():
    image = draw(line("Mug", 1, product_shot(RED)))

    left, _, right, _ = pixels_near(image, RED).getbbox()
    assert right - left > SIZE * 0.3
    assert abs((left + right) / 2 - SIZE / 2) < SIZE * 0.03


def test_a_product_keeps_its_proportions():
    tall = product_shot(RED, shape=(40, 240))

    left, top, right, bottom = pixels_near(draw(line("Vase", 1, tall)), RED).getbbox()

    assert (bottom - top) / (right - left) == pytest.approx(6.0, rel=0.15)


def test_twenty_products_all_appear():
    colours = [hue(i, 20) for i in range(20)]
    lines = [line(f"Product {i}", 1, product_shot(c), product_id=f"P{i}") for i, c in enumerate(colours)]

    image = draw(*lines, size=512)

    for colour in colours:
        assert count(pixels_near(image, colour)) > 40, f"product coloured {colour} is missing"


def test_twenty_products_are_laid_out_in_a_grid_of_equal_cells():
    colours = [hue(i, 20) for i in range(20)]
    lines = [line(f"Product {i}", 1, product_shot(c), product_id=f"P{i}") for i, c in enumerate(colours)]

    image = draw(*lines, size=512)

    centres = []
    for colour in colours:
        left, top, right, bottom = pixels_near(image, colour).getbbox()
        centres.append(((left + right) / 2, (top + bottom) / 2))
    rows = clusters([y for _, y in centres])
    columns = clusters([x for x, _ in centres])
    assert len(rows) * len(columns) >= 20
    assert len(rows) <= 5 and len(columns) <= 5  # a tidy grid, not a single strip


def clusters(values: list[float], tolerance: float = 6.0) -> list[float]:
    """The distinct positions among values, treating those within tolerance as one."""
    found: list[float] = []
    for value in sorted(values):
        if not found or value - found[-1] > tolerance:
            found.append(value)
    return found


def test_the_quantity_is_drawn_on_the_product_card():
    one = draw(line("Mug", 2, product_shot(RED))).convert("RGB")
    three = draw(line("Mug", 3, product_shot(RED))).convert("RGB")

    changed = ImageChops.difference(one, three).getbbox()
    assert changed is not None
    assert changed[3] > SIZE * 0.25  # below the heading: the card itself changed, not only the item count


def test_the_product_name_is_drawn():
    mug = draw(line("Mug", 1, product_shot(RED), product_id="X"))
    lamp = draw(line("Lamp", 1, product_shot(RED), product_id="X"))

    assert ImageChops.difference(mug.convert("RGB"), lamp.convert("RGB")).getbbox() is not None


def test_a_missing_picture_still_shows_the_product_as_a_drawn_card():
    with_picture = draw(line("Mug", 1, product_shot(RED)))
    without = draw(line("Mug", 1, None))

    assert without.size == (SIZE, SIZE)
    assert count(pixels_near(without, RED)) == 0
    assert ImageChops.difference(with_picture.convert("RGB"), without.convert("RGB")).getbbox() is not None


@pytest.mark.parametrize("data", [b"not a picture", b"\x89PNG\r\n\x1a\n broken", b"\xff\xd8\xff\xe0 truncated", b""])
def test_undecodable_picture_bytes_are_drawn_like_a_missing_picture(data: bytes):
    broken = draw(line("Mug", 2, Picture(data, "image/jpeg")))
    missing = draw(line("Mug", 2, None))

    assert ImageChops.difference(broken.convert("RGB"), missing.convert("RGB")).getbbox() is None


def test_a_jpeg_product_shot_is_cut_out_of_its_backdrop():
    image = draw(line("Mug", 1, product_shot(RED, fmt="JPEG")), style="luxury")

    assert count(pixels_near(image, RED, 40)) > 500
    # The white studio backdrop is gone: nothing pure white remains around the product on the ivory niche.
    assert count(pixels_near(image, (255, 255, 255), 2)) < 50


def test_a_transparent_product_picture_is_used_as_it_is():
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((50, 50, 150, 150), fill=(*RED, 255))
    out = io.BytesIO()
    image.save(out, "PNG")

    drawn = draw(line("Ball", 1, Picture(out.getvalue(), "image/png")))

    assert count(pixels_near(drawn, RED)) > 1000


def test_a_busy_photo_is_shown_whole_rather_than_cut_out():
    photo = Image.new("RGB", (300, 200), (40, 120, 60))
    ImageDraw.Draw(photo).rectangle((0, 0, 150, 200), fill=(200, 160, 20))
    out = io.BytesIO()
    photo.save(out, "PNG")

    image = draw(line("Scene", 1, Picture(out.getvalue(), "image/png")))

    assert count(pixels_near(image, (40, 120, 60))) > 1000
    assert count(pixels_near(image, (200, 160, 20))) > 1000


def solid_background(*colours: tuple[int, int, int], width: int = 300, height: int = 100) -> Picture:
    """A background split into vertical bands of the given colours."""
    image = Image.new("RGB", (width, height))
    band = width // len(colours)
    for i, colour in enumerate(colours):
        image.paste(colour, (i * band, 0, (i + 1) * band, height))
    out = io.BytesIO()
    image.save(out, "PNG")
    return Picture(out.getvalue(), "image/png")


def test_an_uploaded_background_is_used():
    plain = draw(line("Mug", 1, product_shot(RED)))
    green = draw(line("Mug", 1, product_shot(RED)), background=solid_background((0, 200, 0))).convert("RGB")

    r, g, b = green.getpixel((4, SIZE - 4))
    assert g > r + 40 and g > b + 40
    assert ImageChops.difference(plain.convert("RGB"), green).getbbox() is not None


def test_an_uploaded_background_is_cover_fitted_not_stretched():
    # A wide picture: only its middle band fits a square when cropped; stretching would show all three.
    image = draw(line("Mug", 1), background=solid_background((220, 0, 0), (0, 200, 0), (0, 0, 220))).convert("RGB")

    for x in (4, SIZE - 5):
        r, g, b = image.getpixel((x, SIZE - 4))
        assert g > r + 40 and g > b + 40


def test_an_uploaded_background_is_toned_down_so_products_stay_readable():
    image = draw(line("Mug", 1), background=solid_background((255, 255, 0))).convert("RGB")

    assert image.getpixel((4, SIZE - 4)) != (255, 255, 0)


def test_an_undecodable_background_falls_back_to_the_style_backdrop():
    plain = draw(line("Mug", 1))
    broken = draw(line("Mug", 1), background=Picture(b"garbage", "image/png"))

    assert ImageChops.difference(plain.convert("RGB"), broken.convert("RGB")).getbbox() is None


def test_the_same_cart_draws_the_same_picture():
    lines = (line("Mug", 2, product_shot(RED)), line("Lamp", 1))

    assert draw(*lines, style="playful").tobytes() == draw(*lines, style="playful").tobytes()


def test_progress_rises_steadily_to_one():
    seen: list[float] = []
    lines = tuple(line(f"P{i}", 1, product_shot(hue(i, 5))) for i in range(5))

    CollageGenerator().generate(GenerationInput(lines, resolve_style("vintage"), None, 256), seen.append)

    assert len(seen) >= 3
    assert seen == sorted(seen)
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert seen[-1] == 1.0


def test_an_empty_cart_is_refused():
    with pytest.raises(EmptyCart):
        CollageGenerator().generate(GenerationInput((), resolve_style("modern")), lambda _: None)


def test_long_names_odd_characters_and_big_quantities_still_draw():
    lines = (
        line("Café Crème Brûlée Set – Limited Edition With A Very Long Name Indeed", 12_345),
        line("", 1, product_shot(RED), product_id="NO-NAME"),
        line("☕ 茶", 7),
    )

    for style in STYLES:
        assert draw(*lines, style=style, size=256).size == (256, 256)


def test_names_are_made_drawable_with_the_bundled_font():
    assert drawable("Café – Crème") == "Cafe - Creme"
    assert drawable("茶") == "?"


def test_a_long_name_is_shrunk_then_ellipsized_to_fit():
    block = fit("Salt and Pepper Shakers of the Finest Porcelain", 120, 2, 24, 12)

    assert len(block.lines) == 2
    assert block.lines[-1].endswith("…")
    assert block.width <= 120


def studio_shot(kind: str) -> Picture:
    """A photo-like product shot: grey paper, shadow, vignette, noise, JPEG."""
    return Picture(studio_photo(kind).jpeg, "image/jpeg")


def busy_photo() -> Picture:
    """A lifestyle photo: no studio backdrop to lift a product off."""
    scene = Image.new("RGB", (300, 300), (40, 120, 60))
    draw = ImageDraw.Draw(scene)
    for i in range(0, 300, 20):
        draw.line((i, 0, 300 - i, 300), fill=(200 - i // 3, 90 + i // 4, 30), width=6)
    out = io.BytesIO()
    scene.save(out, "PNG")
    return Picture(out.getvalue(), "image/png")


def paper_pixels(image: Image.Image) -> int:
    """How many pixels look like the studio photos' grey paper."""
    return count(pixels_near(image, (214, 213, 210), 12))


def test_studio_shots_are_cut_out_so_their_paper_is_not_shown():
    image = draw(line("Box", 1, studio_shot("box")), line("Mug", 1, studio_shot("dark")), style="playful")

    assert paper_pixels(image) < 300


def test_one_picture_never_mixes_cut_outs_with_framed_photos():
    lifted = draw(line("Box", 1, studio_shot("box")), line("Mug", 1, studio_shot("dark")), style="playful")
    mixed = draw(line("Box", 1, studio_shot("box")), line("Scene", 1, busy_photo()), style="playful")

    # With a photo that cannot be lifted in the cart, the studio shot is framed whole too: its paper shows.
    assert paper_pixels(mixed) > paper_pixels(lifted) + 2000


@pytest.mark.parametrize("style", ["festive", "minimalist"])
def test_a_single_product_is_drawn_large_in_festive_and_minimalist_too(style: str):
    image = draw(line("Mug", 1, product_shot(RED)), style=style)

    left, top, right, bottom = pixels_near(image, RED, 40).getbbox()
    assert max(right - left, bottom - top) > SIZE * 0.3
