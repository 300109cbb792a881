"""What each Gemini image model can do and what it costs, as data in one place.

Checked on 2026-11-30 against Google's Gemini API changelog (model ids, release dates, output sizes) and the
Gemini API pricing page as quoted in November 2026 (see README, "Model chain"). Figures marked "assumed" were
not published where we looked; correct them here when Google publishes them.
"""

from __future__ import annotations

import dataclasses

# Output tokens one image costs, by requested size (the 3.1 Flash Image family; Google's changelog).
IMAGE_TOKENS = {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520}


@dataclasses.dataclass(frozen=True)
class ImageModel:
    """One model's output sizes, input image limits and prices."""

    id: str
    output_sizes: tuple[str, ...]  # imageConfig.imageSize values the model accepts
    max_input_images: int
    usd_per_million_input_tokens: float
    usd_per_million_output_tokens: float  # image output (and thinking) tokens
    sends_image_size: bool = True  # False for models that must not be sent imageConfig.imageSize at all

    def output_size(self, pixels: int) -> str | None:
        """The imageSize to ask for a square of `pixels`: the wanted size, or the largest this model makes."""
        if not self.sends_image_size:
            return None
        wanted = "4K" if pixels > 2048 else "2K" if pixels > 1024 else "1K"
        order = ("1K", "2K", "4K")
        fitting = [size for size in order[: order.index(wanted) + 1] if size in self.output_sizes]
        return fitting[-1] if fitting else None

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        """Dollars for one call's token usage (usageMetadata)."""
        return (
            input_tokens * self.usd_per_million_input_tokens + output_tokens * self.usd_per_million_output_tokens
        ) / 1_000_000

    def image_cost_usd(self, size: str | None) -> float:
        """Dollars for one output image of the given size, when a call reported no usage."""
        return IMAGE_TOKENS.get(size or "1K", IMAGE_TOKENS["1K"]) * self.usd_per_million_output_tokens / 1_000_000


KNOWN_MODELS: dict[str, ImageModel] = {
    model.id: model
    for model in (
        # GA 2026-10-06: an update of Nano Banana 2, priced like 3.1 Flash Image (assumed), 1K/2K/4K.
        ImageModel("gemini-nano-banana-2.1", ("1K", "2K", "4K"), 14, 0.50, 60.0),
        # GA 2026-06-30: 1K only ("2K and 4K not supported"); half the Flash price (assumed); input limit assumed.
        ImageModel("gemini-3.1-flash-lite-image", ("1K",), 6, 0.25, 30.0),
        # Deprecated 2026-10-06 (no shutdown date announced): kept so an operator who names it is priced right.
        ImageModel("gemini-3.1-flash-image", ("1K", "2K", "4K"), 14, 0.50, 60.0),
    )
}


def image_model(model_id: str) -> ImageModel:
    """The model's capabilities; an unknown id gets conservative ones (no size option, the highest price)."""
    known = KNOWN_MODELS.get(model_id)
    if known is not None:
        return known
    return ImageModel(
        model_id,
        output_sizes=("1K",),
        max_input_images=6,
        usd_per_million_input_tokens=max(m.usd_per_million_input_tokens for m in KNOWN_MODELS.values()),
        usd_per_million_output_tokens=max(m.usd_per_million_output_tokens for m in KNOWN_MODELS.values()),
        sends_image_size=False,
    )
