"""The words sent to the image model: one deterministic prompt per cart, and captions for each picture."""

from __future__ import annotations

from collections.abc import Sequence

from imagegen.domain import CartLine, GenerationInput

# Catalog descriptions can be long; the model needs the gist, and a bounded prompt keeps cost predictable.
MAX_DESCRIPTION_CHARS = 240
MAX_NAME_CHARS = 80
# Above this many of one product, an exact count becomes unreadable clutter: ask for a group instead.
MAX_EXACT_QUANTITY = 6


def build_prompt(request: GenerationInput, *, reference_sheet: bool) -> str:
    """Returns the text prompt for one cart picture; the same request always gives the same text."""
    lines = request.lines
    pictured = [number for number, line in enumerate(lines, 1) if line.picture is not None]
    unpictured = [number for number, line in enumerate(lines, 1) if line.picture is None]
    style = request.style

    paragraphs = [
        "Create one photorealistic picture of the products in a shopper's cart for an online boutique.",
        f"Style: {style.label}. {_sentence(style.prompt)}",
        "The cart holds these products (number, name, quantity, categories, description):\n"
        + "\n".join(_product_line(number, line) for number, line in enumerate(lines, 1)),
        "Show every listed product, and only these products. " + _quantity_rule(lines),
    ]
    if pictured:
        if reference_sheet:
            paragraphs.append(
                "The product pictures follow this text as reference sheets: grids of tiles where every tile "
                "is labelled with its product number from the list above. Use the sheets only as references; "
                "do not reproduce the grid, the tiles or the labels."
            )
        else:
            paragraphs.append(
                "The product pictures follow this text, each introduced by a caption that names its product "
                "number from the list above."
            )
        paragraphs.append(
            "Keep every product faithful to its reference picture: the same shape, proportions, colours, "
            "materials, patterns, labels and logos. Do not restyle, redesign or replace the products; "
            "the style applies to the scene, the lighting and the composition only."
        )
    if unpictured:
        numbers = _numbers(unpictured)
        paragraphs.append(
            f"No picture is available for product{'s' if len(unpictured) > 1 else ''} {numbers}: "
            "draw it plausibly from its name and description."
        )
    if request.background is not None:
        paragraphs.append(
            "The last picture is the shopper's own background. Place the products naturally in that scene, "
            "matching its perspective, scale and lighting, and keep the background recognisable."
        )
    else:
        paragraphs.append("Compose a background that suits the style.")
    paragraphs.append(
        "Arrange the products as an attractive group, all clearly visible and in focus. "
        "Do not add captions, prices, price tags, watermarks or any other text."
    )
    return "\n\n".join(paragraphs)


def picture_caption(number: int, line: CartLine) -> str:
    """Caption sent just before one product's reference picture."""
    return f"Reference picture for product {number}: {_clean(line.product.name, MAX_NAME_CHARS)}."


def sheet_caption(index: int, total: int, numbers: Sequence[int]) -> str:
    """Caption sent just before one reference sheet, naming the products whose tiles it holds."""
    return f"Reference sheet {index} of {total}, with the pictures of products {_numbers(numbers)}."


def background_caption() -> str:
    """Caption sent just before the shopper's background picture."""
    return "The shopper's background picture:"


def tile_label(number: int, line: CartLine) -> str:
    """Label drawn under a product's tile on a reference sheet."""
    return f"{number}. {_clean(line.product.name, MAX_NAME_CHARS)}"


def _product_line(number: int, line: CartLine) -> str:
    product = line.product
    parts = [f"{number}. {_clean(product.name, MAX_NAME_CHARS)}", f"quantity {line.quantity}"]
    categories = [_clean(category, 40) for category in product.categories if category.strip()]
    if categories:
        parts.append("categories: " + ", ".join(categories))
    description = _clean(product.description, MAX_DESCRIPTION_CHARS)
    if description:
        parts.append(description)
    return " | ".join(parts)


def _quantity_rule(lines: Sequence[CartLine]) -> str:
    many = [number for number, line in enumerate(lines, 1) if line.quantity > MAX_EXACT_QUANTITY]
    rule = "Show each product as many times as its quantity"
    if many:
        return (
            f"{rule}, up to {MAX_EXACT_QUANTITY}; for product{'s' if len(many) > 1 else ''} {_numbers(many)}, "
            "show a generous group or stack that reads as a large quantity."
        )
    return rule + "."


def _sentence(text: str) -> str:
    """The style's own description (ours, so not cut), ending with one full stop."""
    flat = " ".join(text.split())
    return flat if flat.endswith((".", "!")) else flat + "."


def _numbers(numbers: Sequence[int]) -> str:
    """1 -> '1'; 1,2 -> '1 and 2'; 1,2,3 -> '1, 2 and 3'."""
    text = [str(number) for number in numbers]
    if len(text) <= 1:
        return "".join(text)
    return ", ".join(text[:-1]) + " and " + text[-1]


def _clean(text: str, limit: int) -> str:
    """Collapses whitespace (catalog text may hold newlines) and cuts at a word boundary."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut.rstrip(" ,.;:") + "…"
