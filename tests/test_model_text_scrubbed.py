"""The text of a Gemini answer without an image reaches the log with the API key scrubbed, over the real SDK."""

from __future__ import annotations

import pytest

from genproto import imagegeneration_pb2 as pb
from tests.fakes.fake_gemini import FakeGemini, finish

API_KEY = "AIzaFAKE-text-key-never-logged-0123456789"


@pytest.fixture
def fake_gemini():
    with FakeGemini() as fake:
        yield fake


@pytest.mark.parametrize("text", [
    f"I cannot draw this. Your key {API_KEY} was received.",
    "x" * 490 + f" {API_KEY} and more",  # the key straddles the point where the logged text is cut
], ids=["short", "cut-through-the-key"])
def test_a_key_echoed_in_the_models_text_is_scrubbed_from_the_log(make_service, fake_gemini, text):
    service = make_service({"IMAGE_GENERATOR": "gemini", "GEMINI_API_KEY": API_KEY, "GEMINI_MODEL": "gemini-m",
                            "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url})
    fake_gemini.set_default(finish("NO_IMAGE", text=text))
    answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
        cart_items=[pb.CartItem(product_id="6E92ZMYYFZ", quantity=1)]), timeout=10)
    assert service.wait_finished(answer.generation_id)[0].status == "failed"
    (record,) = [r for r in service.log_records() if r["message"] == "gemini answered without an image"]
    assert fake_gemini.requests[-1].headers["x-goog-api-key"] == API_KEY  # the key was in play
    assert API_KEY[:12] not in service.logs()
    assert "[redact" in record["text"]  # the marker itself may be cut
