"""Settings: defaults, parsing, validation messages, and the auto generator choice."""

import pytest

from imagegen.settings import DEFAULT_GEMINI_MODELS, Settings, SettingsError


def test_defaults_match_the_documented_ones():
    settings = Settings.from_env({})
    assert settings.port == 8080
    assert settings.http_port == 8081
    assert settings.cart_service_addr == "cartservice:7070"
    assert settings.product_catalog_service_addr == "productcatalogservice:3550"
    assert settings.product_image_base_url == "http://frontend:80"
    assert settings.public_base_url == "http://localhost:8081"
    assert settings.image_generator == "auto"
    assert settings.generator == "collage"
    assert settings.gemini_models == DEFAULT_GEMINI_MODELS


def test_public_base_url_follows_http_port():
    assert Settings.from_env({"HTTP_PORT": "9000"}).public_base_url == "http://localhost:9000"


def test_auto_picks_gemini_with_any_credential():
    assert Settings.from_env({"GEMINI_API_KEY": "k"}).generator == "gemini"
    assert Settings.from_env({"GEMINI_API_KEY_SECRET": "projects/p/secrets/s/versions/latest"}).generator == "gemini"
    assert Settings.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "true", "PROJECT_ID": "p"}).generator == "gemini"
    assert Settings.from_env({"GEMINI_API_KEY": "k", "IMAGE_GENERATOR": "collage"}).generator == "collage"


def test_model_chain_is_comma_separated():
    assert Settings.from_env({"GEMINI_MODEL": " a-1 , b-2 "}).gemini_models == ("a-1", "b-2")


def test_every_bad_value_is_named_in_one_error():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"PORT": "eighty", "IMAGE_GENERATOR": "dalle", "PUBLIC_BASE_URL": "ftp://x",
                           "CART_SERVICE_ADDR": "nohostport"})
    message = str(caught.value)
    for name in ("PORT", "IMAGE_GENERATOR", "PUBLIC_BASE_URL", "CART_SERVICE_ADDR"):
        assert name in message


def test_gemini_without_credentials_is_refused():
    with pytest.raises(SettingsError, match="IMAGE_GENERATOR=gemini needs"):
        Settings.from_env({"IMAGE_GENERATOR": "gemini"})


def test_bad_secret_name_is_refused():
    with pytest.raises(SettingsError, match="GEMINI_API_KEY_SECRET"):
        Settings.from_env({"GEMINI_API_KEY_SECRET": "my-secret"})


def test_api_key_is_not_in_repr():
    settings = Settings.from_env({"GEMINI_API_KEY": "AIza-super-secret"})
    assert "AIza-super-secret" not in repr(settings)


def test_bad_api_key_value_never_echoed():
    # Keys are free text; but neighbours' errors must not carry the key either.
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"GEMINI_API_KEY": "AIza-super-secret", "PORT": "x"})
    assert "AIza-super-secret" not in str(caught.value)


def test_the_collage_format_defaults_to_jpeg_and_takes_webp_or_png():
    assert Settings.from_env({}).collage_format == "jpeg"
    assert Settings.from_env({"COLLAGE_FORMAT": "WebP"}).collage_format == "webp"
    assert Settings.from_env({"COLLAGE_FORMAT": "png"}).collage_format == "png"


def test_an_unknown_collage_format_is_refused_by_name():
    with pytest.raises(SettingsError, match="COLLAGE_FORMAT"):
        Settings.from_env({"COLLAGE_FORMAT": "gif"})
