"""Reading the Gemini key from Secret Manager, through the real client, against a gRPC peer on loopback."""

from __future__ import annotations

import pytest

from imagegen.domain import CartLine, GenerationInput, Product
from imagegen.generators.gemini import build_gemini_generator
from imagegen.gemini_key import SecretError, read_secret
from imagegen.settings import Settings
from imagegen.styles import resolve_style
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.secret_manager import FakeSecretManager

SECRET = "projects/shop/secrets/gemini-api-key/versions/latest"
VALUE = "AIzaSECRET-value-from-secret-manager"


@pytest.fixture
def peer():
    with FakeSecretManager({SECRET: VALUE + "\n"}) as server:
        yield server


def test_secret_value_is_read_and_stripped(peer):
    assert read_secret(SECRET, peer.client()) == VALUE
    assert peer.requests == [SECRET]


def test_missing_secret_is_a_clear_error_naming_it(peer):
    missing = "projects/shop/secrets/nope/versions/latest"

    with pytest.raises(SecretError) as failure:
        read_secret(missing, peer.client())

    assert missing in str(failure.value) and "not found" in str(failure.value)
    assert VALUE not in str(failure.value)


def test_denied_secret_says_which_role_is_missing(peer):
    peer.deny(SECRET)

    with pytest.raises(SecretError, match="secretAccessor") as failure:
        read_secret(SECRET, peer.client())

    assert VALUE not in str(failure.value)


def test_corrupted_payload_is_refused(peer):
    peer.set_secret(SECRET, VALUE, crc32c=12345)

    with pytest.raises(SecretError, match="checksum") as failure:
        read_secret(SECRET, peer.client())

    assert VALUE not in str(failure.value)


def test_payload_without_checksum_is_accepted(peer):
    peer.set_secret(SECRET, VALUE, crc32c=False)

    assert read_secret(SECRET, peer.client()) == VALUE


def test_empty_secret_is_an_error(peer):
    peer.set_secret(SECRET, "  \n")

    with pytest.raises(SecretError, match="empty"):
        read_secret(SECRET, peer.client())


def test_generator_uses_the_key_from_the_secret(peer, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with FakeGemini() as fake:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
        generator = build_gemini_generator(Settings(gemini_api_key_secret=SECRET).gemini, secret_client=peer.client())
        request = GenerationInput(lines=(CartLine(Product("m", "Mug"), 1),), style=resolve_style("modern"))

        generator.generate(request, lambda _fraction: None)
        generator.close()

        assert fake.requests[0].headers["x-goog-api-key"] == VALUE
    assert peer.requests == [SECRET]


def test_generator_start_fails_when_the_secret_is_missing(peer):
    missing = "projects/shop/secrets/gone/versions/3"

    with pytest.raises(SecretError, match="projects/shop/secrets/gone/versions/3"):
        build_gemini_generator(Settings(gemini_api_key_secret=missing).gemini, secret_client=peer.client())
