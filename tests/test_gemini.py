"""The Gemini generator through the real google-genai SDK, against a fake Gemini REST server on loopback."""

from __future__ import annotations

import dataclasses
import io
import logging
import threading

import google.oauth2.credentials
import pytest
from PIL import Image

from imagegen.domain import CartLine, GenerationInput, Picture, Product
from imagegen.errors import GenerationFailed, ModelUnavailable
from imagegen.generators.gemini import (
    GeminiMetrics,
    GeminiSetupError,
    RetryPolicy,
    SpendMeter,
    build_gemini_generator,
)
from imagegen.settings import Settings
from imagegen.styles import resolve_style
from tests.service import free_port, wait_for
from tests.fakes.fake_gemini import FakeGemini, blocked, dropped, error, finish, garbage, image, sample_png, slow

KEY = "AIzaFAKE-test-key-0123456789"
FAST_RETRY = RetryPolicy(initial_delay=0.01, max_delay=0.05)
SDK_ENV = (
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_VERTEX_BASE_URL",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_GENAI_HTTP_CLIENT",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
)


class RecordingMetrics(GeminiMetrics):
    """Keeps what the generator reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.token_counts: list[tuple[str, int, int, int]] = []

    def tokens(self, model: str, prompt: int, candidates: int, total: int) -> None:
        self.token_counts.append((model, prompt, candidates, total))

    def call(self, model: str, outcome: str) -> None:
        self.calls.append((model, outcome))


_built: list = []


@pytest.fixture(autouse=True)
def _clean_sdk_environment(monkeypatch):
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    yield
    while _built:
        _built.pop().close()


@pytest.fixture
def fake(monkeypatch):
    with FakeGemini() as server:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.base_url)
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", server.base_url)
        yield server


def _settings(**overrides) -> Settings:
    values = dict(
        gemini_api_key=KEY,
        gemini_models=("gemini-3.1-flash-image",),
        gemini_timeout_seconds=5.0,
        gemini_total_timeout_seconds=10.0,
        gemini_max_input_images=6,
    )
    values.update(overrides)
    return Settings(**values)


def _generator(metrics=None, **overrides):
    generator = build_gemini_generator(_settings(**overrides).gemini, metrics=metrics, retry=FAST_RETRY)
    _built.append(generator)
    return generator


def _png(color: tuple[int, int, int]) -> Picture:
    return Picture(sample_png(color, 48), "image/png")


def _line(name: str, quantity: int = 1, *, color=(10, 120, 200), picture: bool = True) -> CartLine:
    product = Product(
        id=name.lower().replace(" ", "-"),
        name=name,
        description=f"The {name.lower()} from our catalog.",
        categories=("accessories",),
    )
    return CartLine(product, quantity, _png(color) if picture else None)


def _request(*lines: CartLine, background: Picture | None = None, style: str = "rustic") -> GenerationInput:
    return GenerationInput(lines=lines or (_line("Mug"),), style=resolve_style(style), background=background)


def _no_progress(_fraction: float) -> None:
    pass


# --- the request ---------------------------------------------------------------------------------


def test_generation_sends_pictures_prompt_and_config_to_the_first_model(fake):
    mug, hat = _line("Mug", 2, color=(200, 0, 0)), _line("Hat", color=(0, 200, 0))
    background = Picture(sample_png((0, 0, 200), 80), "image/png")
    generator = _generator(image_aspect_ratio="4:3")

    generator.generate(_request(mug, hat, background=background), _no_progress)

    (seen,) = fake.requests
    assert seen.path == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert seen.headers["x-goog-api-key"] == KEY
    assert "IMAGE" in seen.generation_config["responseModalities"]
    assert seen.generation_config["imageConfig"]["aspectRatio"] == "4:3"
    images = seen.inline_images()
    assert images == [
        ("image/png", mug.picture.data),
        ("image/png", hat.picture.data),
        ("image/png", background.data),
    ]
    prompt = seen.texts()[0]
    assert "1. Mug | quantity 2" in prompt and "2. Hat | quantity 1" in prompt
    assert " ".join(resolve_style("rustic").prompt.split()) in prompt
    assert "shopper's own background" in prompt
    assert "Reference picture for product 1: Mug." in seen.texts()


def test_generated_image_is_returned_as_a_picture(fake):
    produced = sample_png((1, 2, 3), 32)
    fake.script(image(produced, "image/png"))

    picture = _generator().generate(_request(), _no_progress)

    assert picture == Picture(produced, "image/png")


def test_answer_spelling_mime_type_in_snake_case_is_accepted(fake):
    produced = sample_png((9, 9, 9), 16)
    fake.script(image(produced, mime_key="mime_type"))

    assert _generator().generate(_request(), _no_progress).data == produced


def test_draft_thought_images_are_not_the_answer(fake):
    final = sample_png((50, 50, 50), 16)
    fake.script(image(final, thought_image=sample_png((255, 255, 255), 16)))

    assert _generator().generate(_request(), _no_progress).data == final


def test_progress_goes_from_start_to_done(fake):
    seen: list[float] = []

    _generator().generate(_request(), seen.append)

    assert seen == sorted(seen)
    assert seen[0] < 0.2 and seen[-1] == 1.0


def test_larger_image_size_asks_for_2k(fake):
    _generator().generate(GenerationInput(lines=(_line("Mug"),), style=resolve_style("modern"), size=2048), _no_progress)

    assert fake.requests[0].generation_config["imageConfig"]["imageSize"] == "2K"


def test_products_without_picture_are_named_but_send_no_image(fake):
    _generator().generate(_request(_line("Mug"), _line("Watch", picture=False)), _no_progress)

    seen = fake.requests[0]
    assert len(seen.inline_images()) == 1
    assert "2. Watch" in seen.texts()[0]
    assert "No picture is available for product 2" in seen.texts()[0]


def test_more_pictures_than_the_limit_are_combined_into_reference_sheets(fake):
    names = ["Mug", "Hat", "Watch", "Loafers", "Candle", "Jar", "Tank Top", "Sunglasses"]
    lines = [_line(name, color=(30 * i, 100, 200 - 20 * i)) for i, name in enumerate(names)]

    _generator(gemini_max_input_images=3).generate(_request(*lines), _no_progress)

    seen = fake.requests[0]
    images = seen.inline_images()
    assert 1 <= len(images) <= 3
    assert all(mime == "image/jpeg" for mime, _ in images)
    for _, data in images:
        assert Image.open(io.BytesIO(data)).width > 300  # a grid, not one product picture
    prompt = seen.texts()[0]
    assert "reference sheets" in prompt
    for number, name in enumerate(names, 1):
        assert f"{number}. {name} | quantity 1" in prompt
    captions = " ".join(text for text in seen.texts()[1:] if text.startswith("Reference sheet"))
    assert all(str(number) in captions for number in range(1, len(names) + 1))


def test_background_takes_one_of_the_image_slots(fake):
    background = Picture(sample_png((0, 0, 0), 40), "image/png")

    _generator(gemini_max_input_images=2).generate(
        _request(_line("Mug"), _line("Hat"), background=background), _no_progress
    )

    images = fake.requests[0].inline_images()
    assert len(images) == 2
    assert images[0][0] == "image/jpeg"  # both products on one sheet
    assert images[1] == ("image/png", background.data)


def test_unreadable_product_picture_is_dropped_and_the_product_described(fake):
    broken = CartLine(Product("x", "Lamp", "A lamp."), 1, Picture(b"not an image", "image/gif"))

    _generator().generate(_request(_line("Mug"), broken), _no_progress)

    seen = fake.requests[0]
    assert len(seen.inline_images()) == 1
    assert "No picture is available for product 2" in seen.texts()[0]


# --- answers without an image ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("IMAGE_SAFETY", "safety filter"),
        ("IMAGE_PROHIBITED_CONTENT", "does not draw this kind of content"),
        ("IMAGE_RECITATION", "too close to existing protected content"),
        ("NO_IMAGE", "answered without a picture"),
        ("IMAGE_OTHER", "could not make a picture"),
        ("SAFETY", "safety filter"),
    ],
)
def test_answer_without_image_fails_with_a_readable_reason(fake, caplog, reason, expected):
    fake.script(finish(reason, text="I can't draw that."))

    with caplog.at_level(logging.WARNING, logger="imagegen"), pytest.raises(GenerationFailed) as failure:
        _generator().generate(_request(), _no_progress)

    assert expected in str(failure.value)
    assert reason not in str(failure.value)
    assert any(getattr(record, "finish_reason", None) == reason for record in caplog.records)
    assert len(fake.requests) == 1


def test_blocked_prompt_fails_with_a_safety_message(fake, caplog):
    fake.script(blocked("PROHIBITED_CONTENT"))

    with caplog.at_level(logging.WARNING, logger="imagegen"), pytest.raises(GenerationFailed) as failure:
        _generator().generate(_request(), _no_progress)

    assert "does not draw this kind of content" in str(failure.value)
    assert any(getattr(record, "block_reason", None) == "PROHIBITED_CONTENT" for record in caplog.records)


def test_answer_that_is_not_json_still_ends_in_generation_failed(fake):
    fake.script(garbage())

    with pytest.raises(GenerationFailed, match="unexpected error"):
        _generator().generate(_request(), _no_progress)


def test_unreadable_generated_image_fails(fake):
    fake.script(image(b"garbage bytes", "image/png"))

    with pytest.raises(GenerationFailed, match="could not be read"):
        _generator().generate(_request(), _no_progress)


# --- the model chain ------------------------------------------------------------------------------


def test_gone_model_falls_back_to_the_next_and_is_remembered(fake, caplog):
    fake.model_gone("gemini-old-image")
    generator = _generator(gemini_models=("gemini-old-image", "gemini-new-image"))

    with caplog.at_level(logging.WARNING, logger="imagegen"):
        generator.generate(_request(), _no_progress)
        generator.generate(_request(), _no_progress)

    assert [seen.model for seen in fake.requests] == ["gemini-old-image", "gemini-new-image", "gemini-new-image"]
    warnings = [record for record in caplog.records if getattr(record, "model", None) == "gemini-old-image"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_gone_model_is_warned_once_under_concurrent_generations(fake, caplog):
    fake.model_gone("gemini-old-image")
    generator = _generator(gemini_models=("gemini-old-image", "gemini-new-image"))
    failures: list[BaseException] = []

    def run() -> None:
        try:
            generator.generate(_request(), _no_progress)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            failures.append(exc)

    with caplog.at_level(logging.WARNING, logger="imagegen"):
        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert failures == []
    assert generator.gone_models == {"gemini-old-image"}
    gone_warnings = [r for r in caplog.records if getattr(r, "model", None) == "gemini-old-image"]
    assert len(gone_warnings) == 1


def test_exhausted_chain_tells_the_shopper_plainly_and_the_log_names_the_models_and_the_setting(fake, caplog):
    fake.model_gone("gemini-a", "gemini-b")
    generator = _generator(gemini_models=("gemini-a", "gemini-b"))

    with caplog.at_level(logging.ERROR), pytest.raises(ModelUnavailable) as failure:
        generator.generate(_request(), _no_progress)

    assert str(failure.value) == "The image service is unavailable right now. Please try again later."
    # The start's model listing (a thread of its own) may log its warning about the chain meanwhile.
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR and "chain" in r.getMessage()]
    assert "GEMINI_MODEL" in record.getMessage() and record.models == ["gemini-a", "gemini-b"]
    with pytest.raises(ModelUnavailable):
        generator.generate(_request(), _no_progress)
    assert len(fake.requests) == 2  # the second generation did not call the gone models again


def test_a_400_saying_an_option_is_not_supported_moves_to_the_next_model(fake):
    metrics = RecordingMetrics()
    fake.script(error(400, "Image size 2K is not supported by this model."))
    generator = _generator(metrics, gemini_models=("gemini-a", "gemini-b"))

    generator.generate(_request(), _no_progress)

    assert [r.model for r in fake.requests] == ["gemini-a", "gemini-b"]
    assert metrics.calls == [("gemini-a", "unsupported"), ("gemini-b", "image")]
    generator.generate(_request(), _no_progress)  # not marked gone: the next generation asks it again
    assert fake.requests[-1].model == "gemini-a"


def test_each_model_is_asked_for_a_size_it_makes(fake):
    fake.limit_sizes("gemini-3.1-flash-lite-image", "1K")
    generator = _generator(gemini_models=("gemini-nano-banana-2.1", "gemini-3.1-flash-lite-image"), image_size=2048)
    fake.model_gone("gemini-nano-banana-2.1")

    generator.generate(dataclasses.replace(_request(), size=2048), _no_progress)

    sizes = [(r.model, r.generation_config["imageConfig"].get("imageSize")) for r in fake.requests]
    assert sizes == [("gemini-nano-banana-2.1", "2K"), ("gemini-3.1-flash-lite-image", "1K")]


def test_each_model_gets_no_more_input_images_than_it_takes(fake):
    fake.model_gone("gemini-nano-banana-2.1")
    generator = _generator(gemini_models=("gemini-nano-banana-2.1", "gemini-3.1-flash-lite-image"),
                           gemini_max_input_images=14)
    lines = [_line(f"Product {n}", color=(20 * n, 90, 160)) for n in range(1, 9)]

    generator.generate(_request(*lines), _no_progress)

    nano, lite = fake.requests
    assert len(nano.inline_images()) == 8  # one a product: it takes 14
    assert 1 <= len(lite.inline_images()) <= 6  # the lite model's limit: reference sheets instead
    assert any("Reference sheet" in text for text in lite.texts())


def test_an_unknown_model_is_not_sent_a_size_option(fake):
    _generator(gemini_models=("gemini-custom",)).generate(dataclasses.replace(_request(), size=4096), _no_progress)

    assert "imageSize" not in fake.requests[0].generation_config["imageConfig"]


def test_spend_is_computed_from_usage_metadata_and_the_model_price(fake):
    spent = []

    class Meter(SpendMeter):
        def record(self, model, usd):
            spent.append((model, usd))

    fake.script(image(usage=(2000, 1120, 3120)))
    generator = build_gemini_generator(
        _settings(gemini_models=("gemini-nano-banana-2.1",)).gemini, spend=Meter(), retry=FAST_RETRY
    )
    _built.append(generator)
    generator.generate(_request(), _no_progress)

    ((model, usd),) = spent
    assert model == "gemini-nano-banana-2.1"
    assert usd == pytest.approx((2000 * 0.50 + 1120 * 60.0) / 1_000_000)


def test_the_models_the_key_cannot_use_are_logged_once_at_start(fake, caplog):
    fake.offer_models("gemini-nano-banana-2.1", "gemini-2.0-flash")
    with caplog.at_level(logging.INFO):
        _generator(gemini_models=("gemini-nano-banana-2.1", "gemini-3.1-flash-lite-image"))
        (record,) = wait_for(lambda: [r for r in caplog.records if "not offered" in r.getMessage()], 10)

    assert record.missing == ["gemini-3.1-flash-lite-image"]
    assert len(fake.list_requests) == 1


def test_a_failed_model_listing_is_logged_and_does_not_stop_the_generator(monkeypatch, caplog):
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with caplog.at_level(logging.INFO):
        generator = _generator()
        wait_for(lambda: any("could not be listed" in r.getMessage() for r in caplog.records), 20)

    assert generator.models == ("gemini-3.1-flash-image",)


# --- faults ---------------------------------------------------------------------------------------


def test_rate_limit_and_unavailable_are_retried_until_an_image_comes(fake):
    metrics = RecordingMetrics()
    fake.script(error(429), error(503), error(500))

    picture = _generator(metrics).generate(_request(), _no_progress)

    assert picture.mime_type == "image/png"
    assert len(fake.requests) == 4
    assert [outcome for _, outcome in metrics.calls] == ["rate_limited", "server_error", "server_error", "image"]


def test_dropped_connection_is_retried(fake):
    fake.script(dropped())

    _generator().generate(_request(), _no_progress)

    assert len(fake.requests) == 2


def test_retries_stop_at_the_total_time_bound(fake):
    fake.set_default(error(429, "Resource has been exhausted (e.g. check quota)."))
    generator = _generator(gemini_timeout_seconds=1.0, gemini_total_timeout_seconds=0.5)

    with pytest.raises(GenerationFailed, match="busy"):
        generator.generate(_request(), _no_progress)

    assert len(fake.requests) >= 2


def test_server_retry_delay_beyond_the_time_bound_fails_without_waiting(fake):
    fake.set_default(error(429, retry_delay="3600s"))

    with pytest.raises(GenerationFailed, match="busy"):
        _generator().generate(_request(), _no_progress)

    assert len(fake.requests) == 1


def test_slow_answers_time_out(fake):
    metrics = RecordingMetrics()
    fake.set_default(slow(30))
    generator = _generator(metrics, gemini_timeout_seconds=0.2, gemini_total_timeout_seconds=0.6)

    with pytest.raises(GenerationFailed, match="took too long"):
        generator.generate(_request(), _no_progress)

    assert metrics.calls and all(outcome == "timeout" for _, outcome in metrics.calls)


def test_other_client_errors_fail_at_once_with_a_plain_message_and_the_detail_in_the_log(fake, caplog):
    metrics = RecordingMetrics()
    fake.script(error(400, "Request contains an invalid argument: contents.parts[3].inline_data"))

    with caplog.at_level(logging.ERROR), pytest.raises(GenerationFailed) as failure:
        _generator(metrics).generate(_request(), _no_progress)

    assert str(failure.value) == "The image service could not make this picture. Please try again later."
    assert any("invalid argument" in getattr(r, "detail", "") for r in caplog.records)
    assert len(fake.requests) == 1
    assert metrics.calls == [("gemini-3.1-flash-image", "client_error")]


def test_key_never_appears_in_messages_logs_or_reprs(fake, caplog):
    fake.script(error(400, f"API key not valid: {KEY}"), error(503, f"backend saw key {KEY}"))
    settings = _settings()

    with caplog.at_level(logging.DEBUG):
        generator = build_gemini_generator(settings.gemini, retry=FAST_RETRY)
        with pytest.raises(GenerationFailed) as failure:
            generator.generate(_request(), _no_progress)
        fake.set_default(error(503, f"backend saw key {KEY}"))
        with pytest.raises(GenerationFailed) as second:
            build_gemini_generator(_settings(gemini_total_timeout_seconds=0.3).gemini, retry=FAST_RETRY).generate(
                _request(), _no_progress
            )

    assert fake.requests[0].headers["x-goog-api-key"] == KEY  # it was sent, where it belongs
    assert KEY not in str(failure.value) and "API key" not in str(failure.value)
    assert KEY not in str(second.value)
    assert KEY not in caplog.text
    assert all(KEY not in str(record.__dict__) for record in caplog.records)
    assert KEY not in repr(generator) and KEY not in repr(settings)


# --- metrics and logs ------------------------------------------------------------------------------


def test_token_usage_is_counted_and_logged(fake, caplog):
    metrics = RecordingMetrics()
    fake.script(image(usage=(1800, 1290, 3090)))

    with caplog.at_level(logging.INFO, logger="imagegen"):
        _generator(metrics).generate(_request(), _no_progress)

    assert metrics.token_counts == [("gemini-3.1-flash-image", 1800, 1290, 3090)]
    assert any(getattr(record, "total_tokens", None) == 3090 for record in caplog.records)


# --- Vertex AI ------------------------------------------------------------------------------------


def test_vertex_mode_calls_the_vertex_path_with_a_bearer_token(fake):
    settings = _settings(gemini_api_key="", use_vertexai=True, project_id="shop-project", location="europe-west4")
    credentials = google.oauth2.credentials.Credentials(token="vertex-token")

    generator = build_gemini_generator(settings.gemini, credentials=credentials, retry=FAST_RETRY)
    generator.generate(_request(), _no_progress)

    (seen,) = fake.requests
    assert seen.path == (
        "/v1beta1/projects/shop-project/locations/europe-west4/publishers/google/models/"
        "gemini-3.1-flash-image:generateContent"
    )
    assert seen.headers["authorization"] == "Bearer vertex-token"
    assert "x-goog-api-key" not in seen.headers
    assert len(seen.inline_images()) == 1


def test_building_without_any_credential_is_a_setup_error():
    with pytest.raises(GeminiSetupError, match="GEMINI_API_KEY"):
        build_gemini_generator(Settings().gemini)


def test_start_log_names_the_mode_and_the_model_chain_but_not_the_key(fake, caplog):
    with caplog.at_level(logging.INFO, logger="imagegen"):
        _generator(gemini_models=("gemini-a", "gemini-b"))

    (ready,) = [record for record in caplog.records if record.getMessage() == "gemini generator ready"]
    assert ready.mode == "gemini-api"
    assert ready.models == ["gemini-a", "gemini-b"]
    assert KEY not in str(ready.__dict__)


def test_api_version_stays_pinned_whatever_the_environment_says(fake, monkeypatch):
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1")

    _generator().generate(_request(), _no_progress)

    assert fake.requests[0].api_version == "v1beta"


# --- CPU slots ------------------------------------------------------------------------------------


def test_cpu_steps_hold_a_cpu_slot_and_the_model_call_does_not(fake):
    slot = threading.BoundedSemaphore(1)
    generator = build_gemini_generator(_settings().gemini, retry=FAST_RETRY, cpu_slots=slot)
    _built.append(generator)
    fake.hold()
    drawing = threading.Thread(target=generator.generate, args=(_request(_line("Mug"), _line("Hat")), _no_progress))
    drawing.start()
    fake.wait_for_requests(1)
    assert slot.acquire(timeout=10)  # free while the call waits on the model
    slot.release()
    fake.release()
    drawing.join(20)
    assert not drawing.is_alive()


def test_picture_work_before_and_after_the_call_runs_inside_the_cpu_slot(fake):
    seen: list[tuple[str, int]] = []

    class RecordingSlot:
        def __enter__(self):
            seen.append(("enter", len(fake.requests)))

        def __exit__(self, *exc_info):
            seen.append(("exit", len(fake.requests)))

    generator = build_gemini_generator(_settings().gemini, retry=FAST_RETRY, cpu_slots=RecordingSlot())
    _built.append(generator)
    generator.generate(_request(_line("Mug"), _line("Hat")), _no_progress)
    assert seen == [("enter", 0), ("exit", 0), ("enter", 1), ("exit", 1)]
