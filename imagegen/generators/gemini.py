"""The Gemini generator: one google-genai generate_content call with the cart's own product pictures."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import re
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import google.auth
import httpx2
from google import genai
from google.auth import exceptions as auth_exceptions
from google.genai import errors as genai_errors
from google.genai import types
from opentelemetry import trace

from imagegen import prompt as prompts
from imagegen import refsheet
from imagegen.domain import CartLine, GenerationInput, Picture, Progress
from imagegen.errors import GenerationFailed, ModelUnavailable
from imagegen.image_models import ImageModel, image_model
from imagegen.quota import GeminiQuota
from imagegen.gemini_key import read_secret
from imagegen.settings import GeminiSettings

logger = logging.getLogger(__name__)

# Pinned so an SDK upgrade cannot move us: Google documents generateContent under v1beta for the Gemini
# API (the 3.x SDK would default to v1), and Vertex AI serves the image models under v1beta1.
GEMINI_API_VERSION = "v1beta"
VERTEX_API_VERSION = "v1beta1"
VERTEX_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# The model accepts these directly; anything else is re-encoded as PNG first.
ACCEPTED_INPUT_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
STORABLE_OUTPUT_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
MIN_ATTEMPT_SECONDS = 0.05  # below this an attempt cannot succeed; stop instead
LIST_MODELS_TIMEOUT_SECONDS = 10.0
# A 400 whose message says this is about an option the model lacks (e.g. "2K and 4K not supported"):
# another model of the chain may have it.
_UNSUPPORTED = re.compile(r"not supported|unsupported|does not support", re.IGNORECASE)

_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx2.TransportError,)
try:  # GOOGLE_GENAI_HTTP_CLIENT=httpx makes the SDK use plain httpx instead of httpx2.
    import httpx

    _TRANSPORT_ERRORS += (httpx.TransportError,)
except ImportError:  # pragma: no cover - httpx is optional
    pass

# Shopper-facing reasons for an answer without an image; the technical reason goes to the log.
_SAFETY = "The picture could not be made: the image model's safety filter blocked it. Try another style or background."
_PROHIBITED = (
    "The picture could not be made: the image model does not draw this kind of content. "
    "Try another style or background."
)
_RECITATION = (
    "The picture could not be made: it came out too close to existing protected content. "
    "Try another style or background."
)
_NO_IMAGE = "The image model answered without a picture this time. Please try again."
_OTHER = "The image model could not make a picture this time. Please try again."
_NO_IMAGE_REASONS = {
    "IMAGE_SAFETY": _SAFETY,
    "SAFETY": _SAFETY,
    "IMAGE_PROHIBITED_CONTENT": _PROHIBITED,
    "PROHIBITED_CONTENT": _PROHIBITED,
    "BLOCKLIST": _PROHIBITED,
    "SPII": _PROHIBITED,
    "IMAGE_RECITATION": _RECITATION,
    "RECITATION": _RECITATION,
    "NO_IMAGE": _NO_IMAGE,
    "IMAGE_OTHER": _OTHER,
}
_BLOCKED_PROMPT = {
    "SAFETY": "The picture could not be made: the image model's safety filter blocked the request. "
    "Try another style or background.",
    "IMAGE_SAFETY": "The picture could not be made: the image model's safety filter blocked the request. "
    "Try another style or background.",
    "PROHIBITED_CONTENT": _PROHIBITED,
    "BLOCKLIST": _PROHIBITED,
}
_BLOCKED_OTHER = "The picture could not be made: the image model refused the request. Try another style or background."
_BUSY = "The image service is busy right now. Please try again in a few minutes."
_UNAVAILABLE = "The image service is unavailable right now. Please try again later."
_TOO_SLOW = "The image service took too long to answer. Please try again."
_UNEXPECTED = "The picture could not be made because of an unexpected error. Please try again."
_REJECTED = "The image service could not make this picture. Please try again later."


class GeminiSetupError(RuntimeError):
    """Gemini cannot be used as configured (raised at start, never during a generation)."""


class GeminiMetrics:
    """What the generator reports for cost and health; these no-op methods are also the default."""

    def tokens(self, model: str, prompt: int, candidates: int, total: int) -> None:
        """Token usage of one answered call."""

    def call(self, model: str, outcome: str) -> None:
        """One HTTP call and how it ended: see CALL_OUTCOMES."""

    def served(self, model: str) -> None:
        """One image delivered, and the model that drew it."""


class SpendMeter:
    """Where each call's cost goes (limits.DailyBudget); this no-op is the default."""

    def record(self, model: str, usd: float) -> None:
        """Adds one call's cost in dollars."""


# Outcomes passed to GeminiMetrics.call, one per HTTP attempt.
CALL_OUTCOMES = (
    "image",  # 200 with an image
    "no_image",  # 200 without an image (safety, recitation, blocked prompt...)
    "model_gone",  # 404: the model is skipped from now on
    "rate_limited",  # 429
    "server_error",  # 408 or 5xx
    "unsupported",  # 400 saying the model does not support an option: the next model is tried
    "client_error",  # other 4xx: not retried
    "timeout",  # per-call timeout
    "transport_error",  # connection refused, reset, dropped
    "auth_error",  # Vertex credentials could not be refreshed
)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter between attempts; the total time is bounded separately."""

    initial_delay: float = 1.0
    max_delay: float = 16.0
    multiplier: float = 2.0
    jitter: float = 0.5  # the fraction of each delay that is random

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (retry - 1))
        return base * (1.0 - self.jitter * rng.random())


class _ModelGone(Exception):
    """The model answered 404: it no longer exists for this API."""


class _ModelCannot(Exception):
    """The model answered 400 that it does not support something asked: try the next model."""


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not."""

    def __init__(self, kind: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class _Attachments:
    """The parts after the prompt, and the request as the prompt must describe it."""

    request: GenerationInput
    parts: list[types.Part]
    reference_sheet: bool


class GeminiGenerator:
    """Draws the cart with a Gemini image model, falling back along the model chain when a model is gone.

    Retries are our own loop rather than the SDK's HttpRetryOptions: the loop bounds the total time
    (GEMINI_TOTAL_TIMEOUT_SECONDS) across attempts and shortens the last attempt's timeout to fit, honours
    the server's RetryInfo delay, records each attempt's outcome in metrics, and maps every failure to a
    shopper-readable message.
    """

    name = "gemini"

    def __init__(
        self,
        client: genai.Client,
        settings: GeminiSettings,
        *,
        secret: str = "",
        metrics: GeminiMetrics | None = None,
        spend: SpendMeter | None = None,
        retry: RetryPolicy | None = None,
        cpu_slots: contextlib.AbstractContextManager | None = None,
        quota: GeminiQuota | None = None,
    ) -> None:
        if not settings.gemini_models:
            raise GeminiSetupError("GEMINI_MODEL names no model")
        self._client = client
        self.models = tuple(settings.gemini_models)
        self._aspect_ratio = settings.image_aspect_ratio
        self._timeout = settings.gemini_timeout_seconds
        self._total_timeout = settings.gemini_total_timeout_seconds
        self._max_input_images = max(1, settings.gemini_max_input_images)
        self.mode = "vertex-ai" if settings.use_vertexai else "gemini-api"
        self._metrics = metrics or GeminiMetrics()
        self._spend = spend or SpendMeter()
        self._retry = retry or RetryPolicy()
        self._secret = secret  # only to scrub it from any text we log or raise
        self._rng = random.Random()  # the retry delays' jitter
        self._gone: set[str] = set()
        self._gone_lock = threading.Lock()
        # Converting pictures and building reference sheets hold a core; the model call does not.
        self._cpu_slots = cpu_slots or contextlib.nullcontext()
        self._quota = quota  # the shop-wide limits; each attempt takes a slot of it

    def __repr__(self) -> str:
        return f"GeminiGenerator(mode={self.mode!r}, models={self.models!r})"

    @property
    def gone_models(self) -> frozenset[str]:
        """Models that answered 404 since this generator was built."""
        with self._gone_lock:
            return frozenset(self._gone)

    def close(self) -> None:
        """Releases the SDK's HTTP connections."""
        self._client.close()

    def generate(self, request: GenerationInput, progress: Progress) -> Picture:
        """Draws the cart; raises GenerationFailed with a shopper-readable message on any failure."""
        try:
            return self._generate(request, progress)
        except GenerationFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever happens, the generation must end failed, not stuck
            logger.error(
                "gemini generation failed unexpectedly",
                extra={"error": self._scrub("".join(traceback.format_exception(exc)))},
            )
            raise GenerationFailed(_UNEXPECTED) from None

    def _generate(self, request: GenerationInput, progress: Progress) -> Picture:
        progress(0.05)
        contents: dict[int, list[types.Part]] = {}  # by input image slots: models differ in how many they take

        def contents_for(model: ImageModel) -> list[types.Part]:
            slots = min(self._max_input_images, model.max_input_images)
            if slots not in contents:
                with self._cpu_slots:  # picture conversion and reference sheets are CPU work
                    attachments = self._attachments(request, slots)
                text = prompts.build_prompt(attachments.request, reference_sheet=attachments.reference_sheet)
                contents[slots] = [types.Part.from_text(text=text), *attachments.parts]
            return contents[slots]

        contents_for(image_model(self.models[0]))  # before any call: an unreadable picture costs nothing
        progress(0.1)
        response, model = self._call_chain(contents_for, request.size)
        progress(0.9)
        with self._cpu_slots:
            picture = self._picture(response, model)
        self._metrics.served(model)
        trace.get_current_span().set_attribute("imagegen.model", model)
        progress(1.0)
        return picture

    # --- the request ---------------------------------------------------------------------------

    def _attachments(self, request: GenerationInput, max_input_images: int) -> _Attachments:
        """Product pictures as inline parts, combined into reference sheets when there are too many."""
        lines = [self._usable(number, line) for number, line in enumerate(request.lines, 1)]
        background = self._usable_background(request.background)
        request = dataclasses.replace(request, lines=tuple(lines), background=background)
        pictured = [(number, line, line.picture) for number, line in enumerate(lines, 1) if line.picture is not None]
        # The background takes one of the inline image slots, but products always keep at least one.
        slots = max(1, max_input_images - (1 if background is not None else 0))
        parts: list[types.Part] = []
        reference_sheet = len(pictured) > slots
        if reference_sheet:
            tiles = [refsheet.Tile(number, prompts.tile_label(number, line), picture) for number, line, picture in pictured]
            sheets = refsheet.build_reference_sheets(tiles, slots)
            for index, sheet in enumerate(sheets, 1):
                parts.append(types.Part.from_text(text=prompts.sheet_caption(index, len(sheets), sheet.numbers)))
                parts.append(_inline(sheet.picture))
            logger.info(
                "product pictures combined into reference sheets",
                extra={"pictures": len(pictured), "sheets": len(sheets), "slots": slots},
            )
        else:
            for number, line, picture in pictured:
                parts.append(types.Part.from_text(text=prompts.picture_caption(number, line)))
                parts.append(_inline(picture))
        if background is not None:
            parts.append(types.Part.from_text(text=prompts.background_caption()))
            parts.append(_inline(background))
        return _Attachments(request, parts, reference_sheet)

    def _usable(self, number: int, line: CartLine) -> CartLine:
        """The line with a picture the model accepts, or without one (the prompt then names it only)."""
        picture = line.picture
        if picture is None:
            return line
        if picture.mime_type in ACCEPTED_INPUT_TYPES and refsheet.decodable(picture):
            return line
        converted = refsheet.to_png(picture)
        if converted is None:
            logger.warning(
                "product picture unreadable; product is described in words only",
                extra={"product_id": line.product.id, "product_number": number, "mime_type": picture.mime_type},
            )
        return dataclasses.replace(line, picture=converted)

    def _usable_background(self, background: Picture | None) -> Picture | None:
        if background is None or background.mime_type in ACCEPTED_INPUT_TYPES:
            return background
        converted = refsheet.to_png(background)
        if converted is None:
            raise GenerationFailed("The background picture could not be read. Please upload another one.")
        return converted

    def _config(self, model: ImageModel, size: int, timeout: float) -> types.GenerateContentConfig:
        # The output size this model makes closest to IMAGE_SIZE (the lite model makes 1K only).
        image_config = types.ImageConfig(aspect_ratio=self._aspect_ratio, image_size=model.output_size(size))
        return types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=image_config,
            # One HTTP call per attempt: no automatic continuation or function calling behind our back.
            automatic_continuation=False,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            http_options=types.HttpOptions(timeout=max(1, int(timeout * 1000))),
        )

    # --- calling ---------------------------------------------------------------------------------

    def _call_chain(
        self, contents_for: Callable[[ImageModel], list[types.Part]], size: int
    ) -> tuple[types.GenerateContentResponse, str]:
        """Tries the models in order, skipping gone ones; the whole chain shares one time budget."""
        deadline = time.monotonic() + self._total_timeout
        for model in self.models:
            if model in self.gone_models:
                continue
            capabilities = image_model(model)
            try:
                return self._call_with_retries(capabilities, contents_for(capabilities), size, deadline), model
            except _ModelGone:
                self._mark_gone(model)
            except _ModelCannot as failure:
                logger.warning(
                    "gemini model does not support the request; trying the next model",
                    extra={"model": model, "detail": str(failure)},
                )
        logger.error(
            "no model of the chain could take the request (update GEMINI_MODEL)",
            extra={"models": list(self.models), "gone": sorted(self.gone_models)},
        )
        raise ModelUnavailable(_UNAVAILABLE)

    def _mark_gone(self, model: str) -> None:
        with self._gone_lock:
            first = model not in self._gone
            self._gone.add(model)
        if first:
            logger.warning(
                "gemini model not found; skipping it from now on (update GEMINI_MODEL)",
                extra={"model": model, "models": list(self.models)},
            )

    def _call_with_retries(
        self, model: ImageModel, contents: list[types.Part], size: int, deadline: float
    ) -> types.GenerateContentResponse:
        retry = 0
        last_kind = ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining < MIN_ATTEMPT_SECONDS:
                # A backoff that overslept the budget: the shopper hears what the model last said, if anything.
                raise ModelUnavailable(_exhausted_message(last_kind) if last_kind else _TOO_SLOW)
            try:
                return self._attempt_in_quota(model, contents, size, deadline)
            except _Retryable as failure:
                last_kind = failure.kind
                retry += 1
                delay = self._retry.delay(retry, self._rng)
                if failure.retry_after is not None:
                    delay = max(delay, failure.retry_after)
                if self._quota is not None and failure.kind == "rate_limited":
                    delay = 0.0  # the shop-wide pause holds the next attempt, and every other replica's
                gives_up = delay + MIN_ATTEMPT_SECONDS >= deadline - time.monotonic()
                logger.warning(
                    "gemini call failed; giving up" if gives_up else "gemini call failed; retrying",
                    extra={"model": model.id, "attempt": retry, "kind": failure.kind, "detail": str(failure)},
                )
                if gives_up:
                    raise ModelUnavailable(_exhausted_message(failure.kind)) from None
                time.sleep(delay)

    def _attempt_in_quota(
        self, model: ImageModel, contents: list[types.Part], size: int, deadline: float
    ) -> types.GenerateContentResponse:
        """One attempt, sent once the shop-wide quota allows it; its outcome goes back to the quota."""
        if self._quota is None:
            return self._attempt(model, contents, size, min(self._timeout, deadline - time.monotonic()))
        with self._quota.call(model.id, max(0.0, deadline - time.monotonic() - MIN_ATTEMPT_SECONDS)) as slot:
            try:
                return self._attempt(model, contents, size, min(self._timeout, deadline - time.monotonic()))
            except _Retryable as failure:
                if failure.kind == "rate_limited":
                    slot.rate_limited(failure.retry_after)
                else:
                    slot.error()
                raise

    def _attempt(
        self, capabilities: ImageModel, contents: list[types.Part], size: int, timeout: float
    ) -> types.GenerateContentResponse:
        """One HTTP call; sorts its failure into gone, unsupported, retryable or final."""
        model = capabilities.id
        try:
            response = self._client.models.generate_content(
                model=model, contents=contents, config=self._config(capabilities, size, timeout)
            )
        except genai_errors.APIError as exc:
            detail = self._scrub(_shorten(f"{exc.code} {exc.status}: {exc.message}", 500))
            if exc.code == 404:
                self._metrics.call(model, "model_gone")
                raise _ModelGone(model) from None
            if exc.code == 400 and _UNSUPPORTED.search(str(exc.message or "")):
                self._metrics.call(model, "unsupported")
                raise _ModelCannot(detail) from None
            if exc.code in RETRYABLE_STATUS:
                kind = "rate_limited" if exc.code == 429 else "server_error"
                self._metrics.call(model, kind)
                raise _Retryable(kind, detail, _retry_delay(exc.details)) from None
            self._metrics.call(model, "client_error")
            # Google's own text (it may name the key's project or echo request fields) goes to the log only.
            logger.error("gemini rejected the request", extra={"model": model, "detail": detail})
            if exc.code in (401, 403):  # a key or permission problem: the model is unusable until fixed
                raise ModelUnavailable(_UNAVAILABLE) from None
            raise GenerationFailed(_REJECTED) from None
        except _TRANSPORT_ERRORS as exc:
            timed_out = isinstance(exc, httpx2.TimeoutException) or type(exc).__name__.endswith("Timeout")
            kind = "timeout" if timed_out else "transport_error"
            self._metrics.call(model, kind)
            raise _Retryable(kind, self._scrub(f"{type(exc).__name__}: {exc}")) from None
        except auth_exceptions.TransportError as exc:
            # The token endpoint (the GKE metadata server under Workload Identity) did not answer: transient.
            self._metrics.call(model, "transport_error")
            raise _Retryable("transport_error", self._scrub(f"credentials refresh: {type(exc).__name__}")) from None
        except auth_exceptions.GoogleAuthError as exc:
            self._metrics.call(model, "auth_error")
            logger.error(
                "gemini credentials could not be used",
                extra={"model": model, "detail": self._scrub(f"{type(exc).__name__}: {exc}")},
            )
            raise ModelUnavailable(_UNAVAILABLE) from None
        self._record_usage(capabilities, size, response)
        return response

    # --- the response ----------------------------------------------------------------------------

    def _record_usage(self, model: ImageModel, size: int, response: types.GenerateContentResponse) -> None:
        usage = response.usage_metadata
        prompt = (usage.prompt_token_count or 0) if usage else 0
        candidates = (usage.candidates_token_count or 0) if usage else 0
        thoughts = (usage.thoughts_token_count or 0) if usage else 0
        total = (usage.total_token_count or 0) if usage else 0
        self._metrics.tokens(model.id, prompt, candidates, total)
        if prompt or candidates or thoughts:
            usd = model.cost_usd(prompt, candidates + thoughts)  # thinking is billed as output
        else:
            # No usage reported: charge one image at the list price, so spend is never undercounted to zero.
            usd = model.image_cost_usd(model.output_size(size)) if response.candidates else 0.0
        self._spend.record(model.id, usd)
        logger.info(
            "gemini tokens",
            extra={
                "model": model.id,
                "model_version": response.model_version or "",
                "prompt_tokens": prompt,
                "candidates_tokens": candidates,
                "thoughts_tokens": thoughts,
                "total_tokens": total,
                "usd": round(usd, 6),
            },
        )

    # --- start-up check --------------------------------------------------------------------------

    def check_models_in_background(self, timeout_seconds: float = LIST_MODELS_TIMEOUT_SECONDS) -> threading.Thread:
        """Lists the models this key can use (one bounded call, off the start path); logs chain ids missing."""
        thread = threading.Thread(
            target=self._check_models, args=(timeout_seconds,), name="gemini-list-models", daemon=True
        )
        thread.start()
        return thread

    def _check_models(self, timeout_seconds: float) -> None:
        try:
            pager = self._client.models.list(
                config=types.ListModelsConfig(
                    page_size=1000, http_options=types.HttpOptions(timeout=max(1, int(timeout_seconds * 1000)))
                )
            )
            offered = {(model.name or "").rsplit("/", 1)[-1] for model in pager.page}  # one page: one call
        except Exception as exc:  # noqa: BLE001 - a check only: the service runs whatever happens here
            logger.warning(
                "gemini models could not be listed; the chain is not checked",
                extra={"detail": self._scrub(_shorten(f"{type(exc).__name__}: {exc}", 300))},
            )
            return
        missing = [model for model in self.models if model not in offered]
        if missing:
            logger.warning(
                "gemini models of the chain are not offered to this key (update GEMINI_MODEL)",
                extra={"missing": missing, "models": list(self.models), "offered": len(offered)},
            )
        else:
            logger.info("gemini models of the chain are all offered", extra={"models": list(self.models)})

    def _picture(self, response: types.GenerateContentResponse, model: str) -> Picture:
        """The first inline image of the answer, or GenerationFailed saying why there is none."""
        candidate = response.candidates[0] if response.candidates else None
        parts = (candidate.content.parts or []) if candidate and candidate.content else []
        images = [
            (part, part.inline_data.data, part.inline_data.mime_type or "image/png")
            for part in parts
            if part.inline_data and part.inline_data.data and _is_image(part)
        ]
        # Thinking models may also return draft images marked as thoughts; the answer is the first other one.
        final = [image for image in images if not image[0].thought] or images
        if final:
            _, data, mime_type = final[0]
            self._metrics.call(model, "image")
            return _storable(Picture(data, mime_type))

        self._metrics.call(model, "no_image")
        feedback = response.prompt_feedback
        block_reason = _enum_name(feedback.block_reason) if feedback and feedback.block_reason else ""
        finish_reason = _enum_name(candidate.finish_reason) if candidate and candidate.finish_reason else ""
        logger.warning(
            "gemini answered without an image",
            extra={
                "model": model,
                "finish_reason": finish_reason,
                "finish_message": self._scrub((candidate.finish_message or "") if candidate else ""),
                "block_reason": block_reason,
                "block_message": self._scrub((feedback.block_reason_message or "") if feedback else ""),
                # Scrubbed before shortening, so that a cut cannot leave a prefix of the key behind.
                "text": _shorten(self._scrub(" ".join(part.text for part in parts if part.text)), 500),
            },
        )
        if block_reason:
            raise GenerationFailed(_BLOCKED_PROMPT.get(block_reason, _BLOCKED_OTHER))
        raise GenerationFailed(_NO_IMAGE_REASONS.get(finish_reason, _OTHER))

    def _scrub(self, text: str) -> str:
        """Removes the API key from text headed for a log line or an error."""
        return text.replace(self._secret, "[redacted]") if self._secret else text


def build_gemini_generator(
    settings: GeminiSettings,
    *,
    metrics: GeminiMetrics | None = None,
    spend: SpendMeter | None = None,
    secret_client: Any = None,
    credentials: Any = None,
    base_url: str | None = None,
    retry: RetryPolicy | None = None,
    cpu_slots: contextlib.AbstractContextManager | None = None,
    quota: GeminiQuota | None = None,
) -> GeminiGenerator:
    """Builds the generator at start: resolves the key (or Vertex credentials) and the SDK client.

    Raises SecretError when GEMINI_API_KEY_SECRET cannot be read, GeminiSetupError for anything else.
    base_url is for tests only; otherwise the SDK honours GOOGLE_GEMINI_BASE_URL / GOOGLE_VERTEX_BASE_URL.
    """
    http_options = types.HttpOptions(
        api_version=VERTEX_API_VERSION if settings.use_vertexai else GEMINI_API_VERSION,
        base_url=base_url,
        timeout=max(1, int(settings.gemini_timeout_seconds * 1000)),
    )
    secret = ""
    if settings.use_vertexai:
        if settings.gemini_api_key or settings.gemini_api_key_secret:
            logger.warning("GOOGLE_GENAI_USE_VERTEXAI=true: GEMINI_API_KEY and GEMINI_API_KEY_SECRET are ignored")
        if not settings.project_id:
            raise GeminiSetupError("GOOGLE_GENAI_USE_VERTEXAI=true needs PROJECT_ID")
        injected = credentials
        if credentials is None:
            try:
                credentials, _ = google.auth.default(scopes=list(VERTEX_SCOPES))
            except auth_exceptions.GoogleAuthError as exc:
                raise GeminiSetupError(
                    "Vertex AI mode found no Google credentials (on GKE, bind the Kubernetes service account to "
                    f"a Google service account with Workload Identity): {type(exc).__name__}"
                ) from exc
        try:
            client = genai.Client(
                vertexai=True,
                project=settings.project_id,
                location=settings.location,
                credentials=credentials,
                http_options=http_options,
            )
        except ValueError as exc:
            raise GeminiSetupError(f"Vertex AI client could not be built: {exc}") from exc
        credential_source = "google-auth default credentials" if injected is None else "injected credentials"
    else:
        if settings.gemini_api_key:
            secret, credential_source = settings.gemini_api_key, "GEMINI_API_KEY"
        elif settings.gemini_api_key_secret:
            secret = read_secret(settings.gemini_api_key_secret, secret_client)
            credential_source = f"secret {settings.gemini_api_key_secret}"
        else:
            raise GeminiSetupError(
                "Gemini needs GEMINI_API_KEY, GEMINI_API_KEY_SECRET or GOOGLE_GENAI_USE_VERTEXAI=true"
            )
        try:
            client = genai.Client(vertexai=False, api_key=secret, http_options=http_options)
        except ValueError as exc:
            raise GeminiSetupError(f"Gemini client could not be built: {str(exc).replace(secret, '[redacted]')}") from None
    generator = GeminiGenerator(
        client, settings, secret=secret, metrics=metrics, spend=spend, retry=retry, cpu_slots=cpu_slots, quota=quota,
    )
    if not settings.use_vertexai:  # Vertex AI lists publisher models differently; its chain is not checked
        generator.check_models_in_background()
    logger.info(
        "gemini generator ready",
        extra={
            "mode": generator.mode,
            "models": list(generator.models),
            "credentials": credential_source,
            "location": settings.location if settings.use_vertexai else "",
        },
    )
    return generator


def _inline(picture: Picture) -> types.Part:
    return types.Part.from_bytes(data=picture.data, mime_type=picture.mime_type)


def _is_image(part: types.Part) -> bool:
    mime = (part.inline_data.mime_type if part.inline_data else None) or ""
    return mime.startswith("image/") or mime == ""


def _storable(picture: Picture) -> Picture:
    """The picture in a type the image store serves; other types are re-encoded as PNG."""
    if picture.mime_type in STORABLE_OUTPUT_TYPES and refsheet.decodable(picture):
        return picture
    converted = refsheet.to_png(picture)
    if converted is None:
        raise GenerationFailed("The image model returned a picture that could not be read. Please try again.")
    return converted


def _retry_delay(details: Any) -> float | None:
    """The server's RetryInfo delay ("12s" or "1.5s") from an error body, when it sent one."""
    try:
        entries = details.get("error", {}).get("details", []) if isinstance(details, dict) else []
        for entry in entries:
            if isinstance(entry, dict) and str(entry.get("@type", "")).endswith("google.rpc.RetryInfo"):
                match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", str(entry.get("retryDelay", "")))
                if match:
                    return float(match.group(1))
    except (AttributeError, TypeError):
        return None
    return None


def _exhausted_message(kind: str) -> str:
    if kind == "rate_limited":
        return _BUSY
    if kind == "timeout":
        return _TOO_SLOW
    return _UNAVAILABLE


def _enum_name(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
