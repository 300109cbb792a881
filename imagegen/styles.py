"""Style presets as data, in one place: what each style means to the collage and to Gemini."""

from __future__ import annotations

import dataclasses
from typing import Literal

from imagegen.errors import InvalidArgument

# Names the collage generator knows how to draw; each is a small painter in generators/collage.py.
Backdrop = Literal["gradient", "paper", "studio", "confetti", "velvet", "wood", "bokeh"]
Layout = Literal["grid", "scatter", "shelves"]
Frame = Literal["panel", "polaroid", "floating", "sticker", "niche", "shelf", "ornament"]
Title = Literal["bold", "ruled", "split", "sticker", "engraved", "chalkboard", "sparkle"]


@dataclasses.dataclass(frozen=True)
class Palette:
    """The colours of a look, as CSS hex strings."""

    backdrop: tuple[str, ...] = ("#f4f5f9", "#e6e8f0")  # stops or tones the backdrop painter uses
    ink: str = "#1d1f2b"  # title and text drawn on the backdrop
    muted: str = "#6b6f80"  # secondary text on the backdrop
    card: str = "#ffffff"  # card, print or frame fill
    card_ink: str = "#1d1f2b"  # text on cards
    accent: str = "#5b5bd6"  # badges, rules, highlights
    accent_ink: str = "#ffffff"  # text on the accent colour
    shadow: str = "#14122b"  # shadow colour (drawn translucent)
    swatches: tuple[str, ...] = ("#dfe3f5", "#f5e1dc", "#dcefe6", "#f3ecd6")  # per-product tints
    scrim: str = "#14122b"  # laid over an uploaded background so products stay readable
    scrim_opacity: float = 0.45


@dataclasses.dataclass(frozen=True)
class Look:
    """How the offline collage draws a style: backdrop, layout, frames, type and texture."""

    backdrop: Backdrop = "gradient"
    layout: Layout = "grid"
    frame: Frame = "panel"
    title: Title = "bold"
    palette: Palette = Palette()
    uppercase: bool = False  # names and titles in capitals
    tracking: float = 0.0  # extra letter spacing, as a fraction of the font size
    tilt: float = 0.0  # largest card rotation in degrees (scatter layouts)
    grain: float = 0.0  # film grain strength, 0..1
    vignette: float = 0.0  # darkening of the corners, 0..1
    sepia: float = 0.0  # how far product pictures are toned towards sepia, 0..1


@dataclasses.dataclass(frozen=True)
class Style:
    """A named look for the cart picture."""

    name: str
    label: str
    prompt: str  # how the style is described to an image model
    look: Look = Look()  # how the offline collage draws it


STYLES: dict[str, Style] = {
    style.name: style
    for style in (
        Style(
            "modern",
            "Modern",
            "A crisp contemporary studio shot: the products arranged in a clean, balanced grid on a seamless "
            "backdrop with a bold indigo-to-coral gradient. Soft diffused key light from the upper left, gentle "
            "contact shadows and subtle reflections give it a polished, premium online-shop feel.",
            Look(
                backdrop="gradient",
                layout="grid",
                frame="panel",
                title="bold",
                palette=Palette(
                    backdrop=("#2b2f8f", "#6a3fb5", "#ff7a8a"),
                    ink="#ffffff",
                    muted="#e4e0ff",
                    card="#ffffff",
                    card_ink="#1b1d33",
                    accent="#ff5d73",
                    accent_ink="#ffffff",
                    shadow="#120d3a",
                    swatches=("#eef0fb", "#f6eef7", "#edf6f5", "#f8f1ea"),
                    scrim="#15123a",
                    scrim_opacity=0.5,
                ),
            ),
        ),
        Style(
            "vintage",
            "Vintage",
            "A nostalgic 1970s photograph: the products laid out on a worn wooden desk among old postcards and "
            "yellowed paper, bathed in warm late-afternoon window light. Faded warm colours, soft focus towards "
            "the edges, visible film grain and a gentle vignette make it feel like a treasured print.",
            Look(
                backdrop="paper",
                layout="scatter",
                frame="polaroid",
                title="ruled",
                palette=Palette(
                    backdrop=("#efe2c4", "#d9c39a", "#8a6a3f"),
                    ink="#4a3423",
                    muted="#7a5f45",
                    card="#fbf6ea",
                    card_ink="#3f2c1e",
                    accent="#a8402f",
                    accent_ink="#fbf6ea",
                    shadow="#3b2613",
                    swatches=("#d9c7a3", "#c9b28a", "#d8b99a", "#bfb08f"),
                    scrim="#efe2c4",
                    scrim_opacity=0.5,
                ),
                tilt=5.0,
                grain=0.45,
                vignette=0.55,
                sepia=0.7,
            ),
        ),
        Style(
            "minimalist",
            "Minimalist",
            "A minimalist still life with generous negative space: the products spaced apart on a smooth, warm "
            "off-white surface against a matching seamless wall. Soft, even daylight with faint shadows, a "
            "restrained neutral palette with a single muted terracotta accent; calm and uncluttered.",
            Look(
                backdrop="studio",
                layout="grid",
                frame="floating",
                title="split",
                palette=Palette(
                    backdrop=("#f6f3ee", "#ebe6de"),
                    ink="#22211f",
                    muted="#8a857c",
                    card="#ffffff",
                    card_ink="#22211f",
                    accent="#c0623f",
                    accent_ink="#ffffff",
                    shadow="#3a3226",
                    swatches=("#e7e1d7", "#dcd6cc", "#e9dfd3", "#d9d9d4"),
                    scrim="#f6f3ee",
                    scrim_opacity=0.8,
                ),
                uppercase=True,
                tracking=0.14,
            ),
        ),
        Style(
            "playful",
            "Playful",
            "A cheerful, colourful flat-lay on a sunny pastel backdrop sprinkled with confetti, paper cut-out "
            "shapes and squiggles. Bright, even lighting with crisp graphic shadows, a candy palette of pink, "
            "mint, lemon and sky blue, and a fun, energetic arrangement with playful tilts.",
            Look(
                backdrop="confetti",
                layout="scatter",
                frame="sticker",
                title="sticker",
                palette=Palette(
                    backdrop=("#fff4dc", "#ffd6e0", "#c9f0e4", "#ffe27a", "#9fd3ff", "#ff8fab", "#7be0c3"),
                    ink="#2b2250",
                    muted="#5b4f8a",
                    card="#ffffff",
                    card_ink="#2b2250",
                    accent="#ff4f79",
                    accent_ink="#ffffff",
                    shadow="#2b2250",
                    swatches=("#ffd1dc", "#c8f2e1", "#fff0a6", "#cfe6ff", "#e4d4ff", "#ffd9b8"),
                    scrim="#fff4dc",
                    scrim_opacity=0.55,
                ),
                tilt=4.0,
            ),
        ),
        Style(
            "luxury",
            "Luxury",
            "An elegant high-end editorial shot on black velvet and polished dark marble, each product lit by a "
            "focused spotlight with a glossy reflection beneath it. Deep shadows, rich contrast and fine gold "
            "accents create an exclusive boutique-window mood.",
            Look(
                backdrop="velvet",
                layout="grid",
                frame="niche",
                title="engraved",
                palette=Palette(
                    backdrop=("#050506", "#1c1b22", "#2c2a31"),
                    ink="#e3c77d",
                    muted="#b9ad92",
                    card="#fbf6ec",
                    card_ink="#efe6cf",
                    accent="#d4af5a",
                    accent_ink="#141318",
                    shadow="#000000",
                    swatches=("#efe3c8", "#e9dcc9", "#eee6d6", "#e6d8bd"),
                    scrim="#060608",
                    scrim_opacity=0.68,
                ),
                uppercase=True,
                tracking=0.22,
                vignette=0.6,
            ),
        ),
        Style(
            "rustic",
            "Rustic",
            "A cosy farmhouse scene: the products displayed on weathered oak shelves against a rough plank wall, "
            "with linen and kraft-paper tags. Warm natural side light from a window, earthy browns and creams, "
            "soft shadows and a handmade, homely atmosphere.",
            Look(
                backdrop="wood",
                layout="shelves",
                frame="shelf",
                title="chalkboard",
                palette=Palette(
                    backdrop=("#ebe3d4", "#e2d6c2", "#f1ebdf", "#d8cab2"),
                    ink="#f3ead8",
                    muted="#dcd3bf",
                    card="#cfa774",
                    card_ink="#3b2616",
                    accent="#8a2f1f",
                    accent_ink="#f7eedd",
                    shadow="#3a2614",
                    swatches=("#e6d9c3", "#dccbb0", "#eadfcb", "#d9ccb6"),
                    scrim="#efe6d6",
                    scrim_opacity=0.62,
                ),
                vignette=0.25,
                grain=0.15,
            ),
        ),
        Style(
            "festive",
            "Festive",
            "A festive holiday scene with the products arranged like gifts among pine branches, red ribbons and "
            "gold baubles. Warm twinkling string lights and soft golden bokeh in the background, rich red, green "
            "and gold tones and a joyful, celebratory glow.",
            Look(
                backdrop="bokeh",
                layout="grid",
                frame="ornament",
                title="sparkle",
                palette=Palette(
                    backdrop=("#0f3b2a", "#06201a", "#ffcf6b", "#ff6b5b"),
                    ink="#fff3dc",
                    muted="#f2d9a6",
                    card="#fffaf0",
                    card_ink="#fff8ea",
                    accent="#c8202f",
                    accent_ink="#fff8ea",
                    shadow="#02120c",
                    swatches=("#fbe3c4", "#f6d5d5", "#dcebd9", "#f3e7c8"),
                    scrim="#07261b",
                    scrim_opacity=0.55,
                ),
                tracking=0.02,
            ),
        ),
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
