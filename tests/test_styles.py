"""Style presets: names shoppers send, what each style tells an image model, and how distinct they are."""

from __future__ import annotations

import pytest

from imagegen.errors import InvalidArgument
from imagegen.styles import DEFAULT_STYLE, STYLES, Style, resolve_style

pytestmark = pytest.mark.fast  # in memory: no servers, no processes

REQUIRED = ("modern", "vintage", "minimalist", "playful", "luxury", "rustic", "festive")


def test_the_shop_styles_are_all_offered():
    assert set(REQUIRED) <= set(STYLES)


def test_each_preset_is_filed_under_its_own_name():
    assert all(key == style.name for key, style in STYLES.items())


def test_the_default_style_is_modern():
    assert DEFAULT_STYLE == "modern"
    assert resolve_style("").name == "modern"
    assert resolve_style("   ").name == "modern"


@pytest.mark.parametrize("value", ["LUXURY", "Luxury", " luxury ", "lUxUrY"])
def test_styles_resolve_case_insensitively(value: str):
    assert resolve_style(value) is STYLES["luxury"]


def test_an_unknown_style_names_the_field_and_the_choices():
    with pytest.raises(InvalidArgument) as caught:
        resolve_style("baroque")

    assert caught.value.field == "style_preference"
    assert "baroque" in str(caught.value)
    assert all(name in caught.value.problem for name in REQUIRED)


@pytest.mark.parametrize("name", sorted(STYLES))
def test_each_style_describes_a_scene_for_an_image_model(name: str):
    style = STYLES[name]

    assert style.label
    assert 80 <= len(style.prompt) <= 600
    assert 1 <= style.prompt.count(". ") + 1 <= 3  # one to three sentences
    assert "light" in style.prompt.lower()  # lighting is part of every description


def test_prompts_are_all_different():
    assert len({style.prompt for style in STYLES.values()}) == len(STYLES)


def test_styles_differ_in_layout_and_treatment_not_only_colour():
    looks = [style.look for style in STYLES.values()]

    assert len({look.frame for look in looks}) == len(looks)
    assert len({look.backdrop for look in looks}) == len(looks)
    assert len({look.title for look in looks}) == len(looks)
    assert len({look.layout for look in looks}) >= 3


def test_a_style_built_from_name_label_and_prompt_gets_a_default_look():
    style = Style("custom", "Custom", "a custom scene in soft light")

    assert style.look.frame and style.look.backdrop
