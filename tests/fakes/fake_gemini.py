"""A fake Gemini REST server on loopback that records what it receives and answers from a script.

It speaks the generateContent wire format of both the Gemini API
(POST /v1beta/models/M:generateContent) and Vertex AI
(POST /v1beta1/projects/P/locations/L/publishers/google/models/M:generateContent).
Point the real google-genai SDK at it with GOOGLE_GEMINI_BASE_URL / GOOGLE_VERTEX_BASE_URL=fake.base_url
(works for a service in a subprocess too) or HttpOptions(base_url=fake.base_url).

    with FakeGemini() as fake:                       # answers every call with a small PNG
        fake.script(error(429), error(503))          # the next two calls fail, then images again
        fake.model_gone("gemini-old")                # that model always answers 404 NOT_FOUND
        fake.limit_sizes("gemini-lite", "1K")        # other imageSize values: 400 "... not supported"
        fake.offer_models("gemini-a", "gemini-b")    # what GET /v1beta/models lists
        ...
        fake.requests[0].model, fake.requests[0].inline_images()
        fake.hold(); ...; fake.in_flight == 8; fake.release()   # model calls wait at the fake until released
        fake.max_in_flight                           # most calls answered at the same time so far
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_LIST_PATH = re.compile(r"^/(?P<version>[^/]+)/models/?$")
_PATH = re.compile(
    r"^/(?P<version>[^/]+)/(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/(?P<publisher>[^/]+)/)?"
    r"models/(?P<model>[^/:]+):(?P<action>[A-Za-z]+)$"
)
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def sample_png(color: tuple[int, int, int] = (200, 60, 90), size: int = 64) -> bytes:
    """A small valid PNG, the default generated image."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, "PNG")
    return out.getvalue()


@dataclasses.dataclass(frozen=True)
class Answer:
    """One scripted answer: an HTTP status and JSON body, optionally after a delay, or a dropped connection."""

    status: int = 200
    body: dict[str, Any] | None = None
    delay: float = 0.0
    drop: bool = False
    raw: bytes | None = None  # sent instead of the JSON body, e.g. a proxy's HTML page


def image(
    data: bytes | None = None,
    mime_type: str = "image/png",
    *,
    text: str | None = "Here is the picture of your cart.",
    usage: tuple[int, int, int] | None = (1500, 1290, 2790),
    mime_key: str = "mimeType",
    thought_image: bytes | None = None,
) -> Answer:
    """A successful answer holding one inline image (and a text part before it, as real answers often do)."""
    parts: list[dict[str, Any]] = []
    if thought_image is not None:
        parts.append({"inlineData": {mime_key: mime_type, "data": _b64(thought_image)}, "thought": True})
    if text is not None:
        parts.append({"text": text})
    parts.append({"inlineData": {mime_key: mime_type, "data": _b64(data if data is not None else sample_png())}})
    return Answer(200, _response({"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}, usage))


def finish(reason: str, *, text: str | None = None, message: str | None = None) -> Answer:
    """A 200 answer whose candidate stopped without an image, e.g. finish("IMAGE_SAFETY")."""
    candidate: dict[str, Any] = {"finishReason": reason}
    if text is not None:
        candidate["content"] = {"role": "model", "parts": [{"text": text}]}
    if message is not None:
        candidate["finishMessage"] = message
    return Answer(200, _response(candidate, (1500, 0, 1500)))


def blocked(reason: str = "SAFETY") -> Answer:
    """A 200 answer with no candidates because the prompt itself was blocked (promptFeedback.blockReason)."""
    return Answer(
        200,
        {"promptFeedback": {"blockReason": reason}, "usageMetadata": {"promptTokenCount": 1500, "totalTokenCount": 1500}},
    )


def error(code: int, message: str | None = None, *, status: str | None = None, retry_delay: str | None = None) -> Answer:
    """An error answer in Google's format: {"error": {"code", "message", "status"}}."""
    body: dict[str, Any] = {
        "error": {
            "code": code,
            "message": message or f"fake error {code}",
            "status": status or _STATUS_NAMES.get(code, "UNKNOWN"),
        }
    }
    if retry_delay is not None:
        body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
    return Answer(code, body)


def unsupported(option: str = "Image size 2K") -> Answer:
    """A 400 saying the model lacks an option, as Google answers a model asked for a size it cannot make."""
    return error(400, f"{option} is not supported by this model.")


def slow(delay: float, then: Answer | None = None) -> Answer:
    """`then` (an image by default) after `delay` seconds; the server cuts the wait short when stopped."""
    answer = then or image()
    return dataclasses.replace(answer, delay=delay)


def garbage(status: int = 200) -> Answer:
    """An answer that is not JSON at all, as a misconfigured proxy might send."""
    return Answer(status, raw=b"<html><body>Not the Gemini API</body></html>")


def dropped() -> Answer:
    """Closes the connection without answering: a transport error for the client."""
    return Answer(drop=True)


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """What one call carried: HTTP method, path, headers (lower-case names) and the JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def _match(self) -> re.Match[str] | None:
        return _PATH.match(self.path.split("?", 1)[0])

    @property
    def model(self) -> str | None:
        """The model id from the path."""
        match = self._match
        return match["model"] if match else None

    @property
    def api_version(self) -> str | None:
        """The first path segment, e.g. v1beta or v1beta1."""
        match = self._match
        return match["version"] if match else None

    @property
    def parts(self) -> list[dict[str, Any]]:
        """Every part of every content, in order."""
        if not isinstance(self.body, dict):
            return []
        return [part for content in self.body.get("contents", []) for part in content.get("parts", [])]

    def texts(self) -> list[str]:
        """The text parts, in order."""
        return [part["text"] for part in self.parts if "text" in part]

    def inline_images(self) -> list[tuple[str, bytes]]:
        """(mime type, bytes) of every inline part; accepts inlineData/inline_data and mimeType/mime_type."""
        found = []
        for part in self.parts:
            inline = part.get("inlineData") or part.get("inline_data")
            if inline is not None:
                mime = inline.get("mimeType") or inline.get("mime_type") or ""
                found.append((mime, _b64decode(inline.get("data", ""))))
        return found

    @property
    def generation_config(self) -> dict[str, Any]:
        """The generationConfig object (empty when absent)."""
        return (self.body or {}).get("generationConfig", {}) if isinstance(self.body, dict) else {}


class FakeGemini:
    """The server. Answers come from the script (in order), else from the default (an image)."""

    def __init__(self, default: Answer | None = None) -> None:
        self._lock = threading.Lock()
        self._default = default or image()
        self._script: list[Answer] = []
        self._gone: set[str] = set()
        self._sizes: dict[str, set[str]] = {}
        self._offered: list[str] = []
        self._list_answer: Answer | None = None  # set by refuse_listing()
        self._requests: list[RecordedRequest] = []
        self._list_requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._open = threading.Event()  # cleared by hold(): calls wait until release()
        self._open.set()
        self._in_flight = 0
        self._max_in_flight = 0
        self._quota: tuple[int, float] | None = None  # (calls, window seconds) answered before 429s
        self._granted: collections.deque[float] = collections.deque()  # answered calls inside the window
        self._arrivals: list[float] = []  # monotonic time of every generateContent call
        self._rate_limited: list[tuple[float, float]] = []  # (monotonic time, retry delay) of each 429 given
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval keeps stop() quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-gemini", daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"

    # --- scripting -------------------------------------------------------------------------------

    def script(self, *answers: Answer) -> None:
        """Queues answers for the next calls (after any already queued)."""
        with self._lock:
            self._script.extend(answers)

    def set_default(self, answer: Answer) -> None:
        """The answer once the script is used up."""
        with self._lock:
            self._default = answer

    def model_gone(self, *models: str) -> None:
        """These models answer 404 NOT_FOUND to every call, as a shut-down model does."""
        with self._lock:
            self._gone.update(models)

    def limit_sizes(self, model: str, *sizes: str) -> None:
        """The model answers 400 "... is not supported" when asked for an imageSize other than these."""
        with self._lock:
            self._sizes[model] = set(sizes)

    def enforce_quota(self, calls: int, window_seconds: float = 60.0) -> None:
        """Beyond `calls` generateContent calls in any `window_seconds`, answers 429 with RetryInfo, as
        Gemini does past a project's requests-per-minute: its retryDelay is when the window has room again."""
        with self._lock:
            self._quota = (calls, window_seconds)

    @property
    def rate_limited(self) -> int:
        """How many calls got a 429 from enforce_quota."""
        with self._lock:
            return len(self._rate_limited)

    @property
    def rate_limited_at(self) -> list[tuple[float, float]]:
        """When each 429 was given (time.monotonic()) and the retry delay it named."""
        with self._lock:
            return list(self._rate_limited)

    @property
    def arrivals(self) -> list[float]:
        """When each generateContent call arrived (time.monotonic())."""
        with self._lock:
            return list(self._arrivals)

    def most_calls_within(self, seconds: float) -> int:
        """The most generateContent calls that arrived within any `seconds` (calls per minute, say)."""
        with self._lock:
            times = list(self._arrivals)
        most, start = 0, 0
        for end, arrival in enumerate(times):
            while arrival - times[start] >= seconds:
                start += 1
            most = max(most, end - start + 1)
        return most

    def offer_models(self, *models: str) -> None:
        """The model ids GET /{version}/models lists (as models/ID, with generateContent)."""
        with self._lock:
            self._offered = list(models)

    def refuse_listing(self, answer: Answer) -> None:
        """GET /{version}/models answers this (an error) instead of the offered models."""
        with self._lock:
            self._list_answer = answer

    # --- what it saw ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every generateContent (and unrouted) request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def list_requests(self) -> list[RecordedRequest]:
        """The model-listing calls received so far."""
        with self._lock:
            return list(self._list_requests)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Polls until `count` requests arrived (for callers in another thread or process)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.requests
            if len(seen) >= count:
                return seen
            time.sleep(0.01)
        raise AssertionError(f"expected {count} requests to the fake Gemini, saw {len(self.requests)}")

    @property
    def in_flight(self) -> int:
        """Model calls received and not yet answered (a model listing is not one)."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most model calls that were open at the same time since the start (or the last clear())."""
        with self._lock:
            return self._max_in_flight

    def hold(self) -> None:
        """From now on, model calls wait (unanswered) until release(); a model listing is still answered."""
        self._open.clear()

    def release(self) -> None:
        """Lets held calls, and later ones, be answered."""
        self._open.set()

    def clear(self) -> None:
        """Forgets recorded requests and the script."""
        with self._lock:
            self._requests.clear()
            self._list_requests.clear()
            self._script.clear()
            self._max_in_flight = self._in_flight
            self._arrivals.clear()

    # --- lifecycle ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stops serving; slow answers in progress end at once."""
        self._stopping.set()
        self._open.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeGemini:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- serving -----------------------------------------------------------------------------------

    def _next_answer(self, request: RecordedRequest) -> Answer:
        with self._lock:
            if request.method == "GET" and _LIST_PATH.match(request.path.split("?", 1)[0]):
                self._list_requests.append(request)
                if self._list_answer is not None:
                    return self._list_answer
                models = [
                    {"name": f"models/{model}", "supportedActions": ["generateContent", "countTokens"]}
                    for model in self._offered
                ]
                return Answer(200, {"models": models})
            self._requests.append(request)
            match = request._match
            if match is None or request.method != "POST":
                return error(404, f"fake Gemini: no route for {request.method} {request.path}")
            if not isinstance(request.body, dict):
                return error(400, "Invalid JSON payload received.")
            if match["model"] in self._gone:
                version = match["version"]
                return error(
                    404,
                    f"models/{match['model']} is not found for API version {version}, or is not supported for "
                    "generateContent. Call ListModels to see the list of available models and their supported methods.",
                )
            now = time.monotonic()
            self._arrivals.append(now)
            if self._quota is not None:
                calls, window = self._quota
                while self._granted and self._granted[0] <= now - window:
                    self._granted.popleft()
                if len(self._granted) >= calls:
                    wait = self._granted[0] + window - now
                    self._rate_limited.append((now, wait))
                    return error(429, "Resource has been exhausted (e.g. check quota).", retry_delay=f"{wait:.3f}s")
                self._granted.append(now)
            allowed = self._sizes.get(match["model"])
            size = request.generation_config.get("imageConfig", {}).get("imageSize") or "1K"
            if allowed is not None and size not in allowed:
                return unsupported(f"Image size {size}")
            if self._script:
                return self._script.pop(0)
            return self._default

    def _opened(self, change: int) -> None:
        with self._lock:
            self._in_flight += change
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                self._serve()

            def do_GET(self) -> None:  # noqa: N802
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                recorded = RecordedRequest(
                    method=self.command,
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                )
                answer = fake._next_answer(recorded)
                if recorded.method == "GET" and _LIST_PATH.match(recorded.path.split("?", 1)[0]):
                    # The service lists models once at start: held, it would pass for a drawing in flight.
                    self._answer(answer)
                    return
                fake._opened(+1)
                try:
                    fake._open.wait()
                    self._answer(answer)
                finally:
                    fake._opened(-1)

            def _answer(self, answer: Answer) -> None:
                if answer.delay and fake._stopping.wait(answer.delay):
                    self.close_connection = True
                    return
                if answer.drop:
                    self.close_connection = True
                    return
                if answer.raw is not None:
                    payload, content_type = answer.raw, "text/html; charset=UTF-8"
                else:
                    payload = json.dumps(answer.body if answer.body is not None else {}).encode()
                    content_type = "application/json; charset=UTF-8"
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (its timeout) before the slow answer came.
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server signature)
                pass

        return Handler


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    """Decodes standard or URL-safe base64 (the SDK sends URL-safe), padded or not, as Google does."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _response(candidate: dict[str, Any], usage: tuple[int, int, int] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "candidates": [{**candidate, "index": 0}],
        "modelVersion": "fake-model",
        "responseId": "fake-response",
    }
    if usage is not None:
        prompt, candidates, total = usage
        body["usageMetadata"] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates,
            "totalTokenCount": total,
        }
    return body
