"""Style presets as data, in one place: what each style means to the collage and to Gemini."""

from __future__ import annotations

import dataclasses

from imagegen.errors import InvalidArgument


@dataclasses.dataclass(frozen=True)
class Style:
    """A named look for the cart picture."""

    name: str
    label: str
    prompt: str  # how the style is described to an image model


STYLES: dict[str, Style] = {
    style.name: style
    for style in (
        Style("modern", "Modern", "a clean modern studio shot with soft shadows and a bold gradient backdrop"),
        Style("vintage", "Vintage", "a warm vintage photograph on aged paper tones with film grain"),
        Style("minimalist", "Minimalist", "a minimalist composition with generous white space and one accent colour"),
        Style("playful", "Playful", "a playful, colourful scene with confetti shapes and bright pastel colours"),
        Style("luxury", "Luxury", "a luxurious dark scene with gold accents and dramatic lighting"),
        Style("rustic", "Rustic", "a rustic scene on a wooden table with natural light"),
        Style("festive", "Festive", "a festive holiday scene with warm lights and gift-wrap colours"),
    )
}

DEFAULT_STYLE = "modern"


def resolve_style(value: str) -> Style:
    """Returns the preset named by value (case-insensitive; empty means DEFAULT_STYLE)."""
    key = value.strip().lower() or DEFAULT_STYLE
    style = STYLES.get(key)
    if style is None:
        known = ", ".join(STYLES)
        raise InvalidArgument("style_preference", f"unknown style {value!r}; choose one of: {known}")
    return style
