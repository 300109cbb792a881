"""The prompt module: deterministic text built from the cart, the style and what pictures come along."""

from __future__ import annotations

import pytest

from imagegen import prompt
from imagegen.domain import CartLine, GenerationInput, Picture, Product
from imagegen.styles import resolve_style

pytestmark = pytest.mark.fast  # in memory: no servers, no processes

PNG = Picture(b"\x89PNG fake", "image/png")


def _line(name: str, quantity: int = 1, *, picture: bool = True, description: str = "", categories=()) -> CartLine:
    product = Product(id=name.lower().replace(" ", "-"), name=name, description=description, categories=categories)
    return CartLine(product, quantity, PNG if picture else None)


def _request(*lines: CartLine, style: str = "vintage", background: Picture | None = None) -> GenerationInput:
    return GenerationInput(lines=lines, style=resolve_style(style), background=background)


def test_same_cart_gives_the_same_prompt():
    request = _request(_line("Mug", 2, description="A ceramic mug."), _line("Sunglasses"))
    assert prompt.build_prompt(request, reference_sheet=False) == prompt.build_prompt(request, reference_sheet=False)


def test_prompt_names_every_product_with_quantity_categories_and_description():
    request = _request(
        _line("Mug", 2, description="A simple mug with a mustard interior.", categories=("kitchen",)),
        _line("Tank Top", 1, description="Perfectly cropped cotton tank.", categories=("clothing", "tops")),
    )
    text = prompt.build_prompt(request, reference_sheet=False)
    assert "1. Mug | quantity 2 | categories: kitchen | A simple mug with a mustard interior." in text
    assert "2. Tank Top | quantity 1 | categories: clothing, tops | Perfectly cropped cotton tank." in text


def test_prompt_carries_the_style_description():
    text = prompt.build_prompt(_request(_line("Mug"), style="luxury"), reference_sheet=False)
    assert "Style: Luxury. " + " ".join(resolve_style("luxury").prompt.split()) in text


def test_prompt_asks_to_keep_products_faithful_to_their_pictures():
    text = prompt.build_prompt(_request(_line("Mug")), reference_sheet=False)
    assert "faithful to its reference picture" in text
    assert "caption that names its product number" in text


def test_prompt_asks_to_show_quantities():
    text = prompt.build_prompt(_request(_line("Mug", 3)), reference_sheet=False)
    assert "as many times as its quantity" in text


def test_large_quantities_become_a_group():
    text = prompt.build_prompt(_request(_line("Mug", 2), _line("Candle", 40)), reference_sheet=False)
    assert f"up to {prompt.MAX_EXACT_QUANTITY}; for product 2, show a generous group" in text


def test_products_without_a_picture_are_still_named_and_flagged():
    text = prompt.build_prompt(
        _request(_line("Mug"), _line("Loafers", picture=False), _line("Watch", picture=False)),
        reference_sheet=False,
    )
    assert "2. Loafers" in text and "3. Watch" in text
    assert "No picture is available for products 2 and 3" in text


def test_cart_without_any_picture_has_no_reference_instructions():
    text = prompt.build_prompt(_request(_line("Mug", picture=False)), reference_sheet=False)
    assert "reference picture" not in text
    assert "No picture is available for product 1:" in text


def test_background_is_used_when_present():
    with_background = prompt.build_prompt(_request(_line("Mug"), background=PNG), reference_sheet=False)
    without = prompt.build_prompt(_request(_line("Mug")), reference_sheet=False)
    assert "The last picture is the shopper's own background" in with_background
    assert "shopper's own background" not in without
    assert "Compose a background that suits the style." in without


def test_reference_sheet_prompt_explains_the_labelled_tiles():
    text = prompt.build_prompt(_request(_line("Mug"), _line("Hat")), reference_sheet=True)
    assert "reference sheets" in text
    assert "labelled with its product number" in text
    assert "do not reproduce the grid" in text


def test_catalog_text_is_flattened_and_bounded():
    long_description = "Soft\n\ncotton   " + "word " * 200
    text = prompt.build_prompt(_request(_line("Tank\nTop", description=long_description)), reference_sheet=False)
    product_line = next(line for line in text.splitlines() if line.startswith("1. "))
    assert product_line.startswith("1. Tank Top | quantity 1 | Soft cotton word")
    assert product_line.endswith("…")
    assert len(product_line) < prompt.MAX_DESCRIPTION_CHARS + 60


def test_captions_name_products_and_sheets():
    assert prompt.picture_caption(2, _line("Mug")) == "Reference picture for product 2: Mug."
    assert prompt.sheet_caption(1, 2, (1, 2, 3)) == "Reference sheet 1 of 2, with the pictures of products 1, 2 and 3."
    assert prompt.tile_label(4, _line("Sunglasses")) == "4. Sunglasses"
    assert prompt.background_caption() == "The shopper's background picture:"
