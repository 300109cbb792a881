"""Service settings: read once from the environment at start, validated, frozen."""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

# The Gemini model chain tried in order (checked 2026-11-30 against Google's Gemini API changelog):
# gemini-nano-banana-2.1 is GA since 2026-10-06; gemini-3.1-flash-lite-image (GA 2026-06-30, 1K only) is
# the cheaper fallback. gemini-3.1-flash-image was deprecated on 2026-10-06 and is left out.
DEFAULT_GEMINI_MODELS = ("gemini-nano-banana-2.1", "gemini-3.1-flash-lite-image")

GENERATORS = ("auto", "gemini", "collage")
COLLAGE_FORMATS = ("jpeg", "webp", "png")
URL_MODES = ("public", "signed")
BUDGET_ACTIONS = ("collage", "fail")
FALLBACKS = ("collage", "none")
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


class SettingsError(ValueError):
    """One or more environment variables hold a value the service cannot use."""


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """The gRPC and HTTP ports, the side port's bounds, shutdown and logging."""

    port: int = 8080
    http_port: int = 8081
    http_idle_timeout_seconds: int = 10
    http_max_connections: int = 10_000
    shutdown_grace_seconds: float = 20.0
    shutdown_status_seconds: float = 3.0
    log_level: str = "INFO"


@dataclasses.dataclass(frozen=True)
class ShopSettings:
    """The shop's peers: cart, catalog and the frontend serving product pictures."""

    cart_service_addr: str = "cartservice:7070"
    product_catalog_service_addr: str = "productcatalogservice:3550"
    product_image_base_url: str = "http://frontend:80"
    peer_timeout_seconds: float = 5.0


@dataclasses.dataclass(frozen=True)
class GeminiSettings:
    """The Gemini generator: credentials, model chain, time bounds, picture shape."""

    gemini_api_key: str = dataclasses.field(default="", repr=False)
    gemini_api_key_secret: str = ""
    gemini_models: tuple[str, ...] = DEFAULT_GEMINI_MODELS
    gemini_timeout_seconds: float = 60.0
    gemini_total_timeout_seconds: float = 180.0
    gemini_max_input_images: int = 6
    image_aspect_ratio: str = "1:1"
    use_vertexai: bool = False
    project_id: str = ""
    location: str = "global"
    gemini_max_concurrent_calls: int = 0
    gemini_max_calls_per_minute: int = 0


@dataclasses.dataclass(frozen=True)
class GcsSettings:
    """The Cloud Storage image store."""

    gcs_bucket: str = ""
    project_id: str = ""
    image_url_mode: str = "public"
    image_url_ttl_seconds: int = 3600
    store_timeout_seconds: float = 30.0


@dataclasses.dataclass(frozen=True)
class LocalStoreSettings:
    """The local directory image store and the base of the URLs it issues."""

    image_store_dir: str = "/tmp/imagegenservice/images"
    image_store_max_bytes: int = 512 * 1024 * 1024
    public_base_url: str = "http://localhost:8081"


@dataclasses.dataclass(frozen=True)
class StateSettings:
    """The state replicas share: Redis (when set) and the status store's bounds."""

    redis_addr: str = ""
    redis_timeout_seconds: float = 1.0
    status_max_entries: int = 10_000
    status_ttl_seconds: int = 3600
    generation_lease_seconds: float = 15.0
    generation_max_attempts: int = 3


@dataclasses.dataclass(frozen=True)
class CostGuardSettings:
    """The per-shopper rate limit, the model's daily budget and what stands in for the model."""

    rate_limit_per_user: int = 60
    rate_limit_window_seconds: int = 600
    gemini_daily_budget_usd: float = 20.0
    budget_exceeded_action: str = "collage"
    gemini_fallback: str = "none"


@dataclasses.dataclass(frozen=True)
class UploadSettings:
    """How much an uploaded background may weigh and measure, and the memory decoding it may take."""

    max_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    background_max_side: int = 2048
    upload_decode_max_bytes: int = 256 * 1024 * 1024


_G = TypeVar("_G")


def _group(kind: type[_G], settings: Settings) -> _G:
    """The part of settings one adapter reads, as its own small frozen object."""
    return kind(**{field.name: getattr(settings, field.name) for field in dataclasses.fields(kind)})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every knob of the service; see the configuration table in README.md.

    Each adapter is handed only its own part (server, shop, gemini, gcs, local_store, state, cost_guard,
    uploads: small frozen objects with the same field names); capacity.py derives the concurrency limits.
    """

    # Ports and peers.
    port: int = 8080
    http_port: int = 8081
    cart_service_addr: str = "cartservice:7070"
    product_catalog_service_addr: str = "productcatalogservice:3550"
    product_image_base_url: str = "http://frontend:80"
    peer_timeout_seconds: float = 5.0
    # Generation.
    image_generator: str = "auto"
    image_size: int = 1024
    status_max_entries: int = 10_000
    status_ttl_seconds: int = 3600
    shutdown_grace_seconds: float = 20.0
    # Image store.
    image_store_dir: str = "/tmp/imagegenservice/images"
    image_store_max_bytes: int = 512 * 1024 * 1024
    public_base_url: str = "http://localhost:8081"
    gcs_bucket: str = ""
    project_id: str = ""
    image_url_mode: str = "public"
    image_url_ttl_seconds: int = 3600
    store_timeout_seconds: float = 30.0
    # Uploads.
    max_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    background_max_side: int = 2048
    upload_concurrency: int = 2
    # Gemini.
    gemini_api_key: str = dataclasses.field(default="", repr=False)
    gemini_api_key_secret: str = ""
    gemini_models: tuple[str, ...] = DEFAULT_GEMINI_MODELS
    gemini_timeout_seconds: float = 60.0
    gemini_total_timeout_seconds: float = 180.0
    gemini_max_input_images: int = 6
    image_aspect_ratio: str = "1:1"
    use_vertexai: bool = False
    location: str = "global"
    gemini_max_concurrent_calls: int = 0  # all replicas together; 0: none beyond MODEL_CONCURRENCY each
    gemini_max_calls_per_minute: int = 0  # all replicas together; 0: none
    # Concurrency and admission: how each is used is in capacity.py.
    model_concurrency: int = 32
    cpu_concurrency: int = 0  # 0: the number of cores this process may run on
    generation_queue_limit: int = 256
    generation_max_wait_seconds: float = 90.0
    deprecated: tuple[str, ...] = ()  # deprecated variables that were set, for a warning at start
    # Shared state for replicas (empty: in-process state, one replica).
    redis_addr: str = ""
    # Operations: tracing in the shop's convention, and the cost guard.
    enable_tracing: bool = False
    collector_service_addr: str = ""
    otel_service_name: str = "imagegenerationservice"
    rate_limit_per_user: int = 60
    rate_limit_window_seconds: int = 600
    gemini_daily_budget_usd: float = 20.0
    budget_exceeded_action: str = "collage"
    gemini_fallback: str = "none"
    redis_timeout_seconds: float = 1.0
    generation_lease_seconds: float = 15.0
    generation_max_attempts: int = 3
    # Logging.
    log_level: str = "INFO"
    # Admission at the gate, the side port's timeouts, decoding memory, shutdown.
    generate_max_inflight: int = 256
    rpc_reserve_threads: int = 16
    upload_decode_max_bytes: int = 256 * 1024 * 1024
    http_idle_timeout_seconds: int = 10
    http_max_connections: int = 10_000
    shutdown_status_seconds: float = 3.0
    # Offline collage: how its pictures are encoded (jpeg and webp are small enough for phones).
    collage_format: str = "jpeg"

    @property
    def server(self) -> ServerSettings:
        """The ports, the side port's bounds, shutdown and logging."""
        return _group(ServerSettings, self)

    @property
    def shop(self) -> ShopSettings:
        """The shop's peers."""
        return _group(ShopSettings, self)

    @property
    def gemini(self) -> GeminiSettings:
        """The Gemini generator's part."""
        return _group(GeminiSettings, self)

    @property
    def gcs(self) -> GcsSettings:
        """The Cloud Storage store's part."""
        return _group(GcsSettings, self)

    @property
    def local_store(self) -> LocalStoreSettings:
        """The local store's part."""
        return _group(LocalStoreSettings, self)

    @property
    def state(self) -> StateSettings:
        """The shared state's part."""
        return _group(StateSettings, self)

    @property
    def cost_guard(self) -> CostGuardSettings:
        """The rate limit, the daily budget and the fallback."""
        return _group(CostGuardSettings, self)

    @property
    def uploads(self) -> UploadSettings:
        """The uploaded backgrounds' bounds."""
        return _group(UploadSettings, self)

    @property
    def gemini_configured(self) -> bool:
        """True when any Gemini credential (key, secret, or Vertex AI) is configured."""
        return bool(self.gemini_api_key or self.gemini_api_key_secret or self.use_vertexai)

    @property
    def generator(self) -> str:
        """The generator in use: IMAGE_GENERATOR, with auto resolved."""
        if self.image_generator != "auto":
            return self.image_generator
        return "gemini" if self.gemini_configured else "collage"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Builds settings from environment variables; raises SettingsError naming every bad one."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        http_port = reader.integer("HTTP_PORT", cls.http_port, 1, 65535)
        values: dict[str, Any] = dict(
            port=reader.integer("PORT", cls.port, 1, 65535),
            http_port=http_port,
            cart_service_addr=reader.address("CART_SERVICE_ADDR", cls.cart_service_addr),
            product_catalog_service_addr=reader.address(
                "PRODUCT_CATALOG_SERVICE_ADDR", cls.product_catalog_service_addr
            ),
            product_image_base_url=reader.url("PRODUCT_IMAGE_BASE_URL", cls.product_image_base_url),
            peer_timeout_seconds=reader.number("PEER_TIMEOUT_SECONDS", cls.peer_timeout_seconds, 0.1, 300),
            image_generator=reader.choice("IMAGE_GENERATOR", cls.image_generator, GENERATORS),
            image_size=reader.integer("IMAGE_SIZE", cls.image_size, 256, 4096),
            status_max_entries=reader.integer("STATUS_MAX_ENTRIES", cls.status_max_entries, 10, 10_000_000),
            status_ttl_seconds=reader.integer("STATUS_TTL_SECONDS", cls.status_ttl_seconds, 10, 7 * 86400),
            shutdown_grace_seconds=reader.number("SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds, 0, 3600),
            image_store_dir=reader.text("IMAGE_STORE_DIR", cls.image_store_dir),
            image_store_max_bytes=reader.integer("IMAGE_STORE_MAX_BYTES", cls.image_store_max_bytes, 0, 2**50),
            public_base_url=reader.url("PUBLIC_BASE_URL", f"http://localhost:{http_port}", allow_path=True),
            gcs_bucket=reader.text("GCS_BUCKET", ""),
            project_id=reader.text("PROJECT_ID", ""),
            image_url_mode=reader.choice("IMAGE_URL_MODE", cls.image_url_mode, URL_MODES),
            image_url_ttl_seconds=reader.integer("IMAGE_URL_TTL", cls.image_url_ttl_seconds, 60, 7 * 86400),
            store_timeout_seconds=reader.number("STORE_TIMEOUT_SECONDS", cls.store_timeout_seconds, 1, 600),
            max_upload_bytes=reader.integer("MAX_UPLOAD_BYTES", cls.max_upload_bytes, 1024, 64 * 1024 * 1024),
            max_image_pixels=reader.integer("MAX_IMAGE_PIXELS", cls.max_image_pixels, 10_000, 89_478_485),  # Pillow's bomb limit
            background_max_side=reader.integer("BACKGROUND_MAX_SIDE", cls.background_max_side, 256, 8192),
            upload_concurrency=reader.integer("UPLOAD_CONCURRENCY", cls.upload_concurrency, 1, 64),
            gemini_api_key=reader.text("GEMINI_API_KEY", ""),
            gemini_api_key_secret=reader.secret_name("GEMINI_API_KEY_SECRET"),
            gemini_models=reader.models("GEMINI_MODEL", DEFAULT_GEMINI_MODELS),
            gemini_timeout_seconds=reader.number("GEMINI_TIMEOUT_SECONDS", cls.gemini_timeout_seconds, 1, 600),
            gemini_total_timeout_seconds=reader.number(
                "GEMINI_TOTAL_TIMEOUT_SECONDS", cls.gemini_total_timeout_seconds, 1, 3600
            ),
            gemini_max_input_images=reader.integer("GEMINI_MAX_INPUT_IMAGES", cls.gemini_max_input_images, 1, 14),
            image_aspect_ratio=reader.choice("IMAGE_ASPECT_RATIO", cls.image_aspect_ratio, ASPECT_RATIOS),
            use_vertexai=reader.boolean("GOOGLE_GENAI_USE_VERTEXAI", False),
            location=reader.text("LOCATION", cls.location) or cls.location,
            gemini_max_concurrent_calls=reader.integer("GEMINI_MAX_CONCURRENT_CALLS", 0, 0, 100_000),
            gemini_max_calls_per_minute=reader.integer("GEMINI_MAX_CALLS_PER_MINUTE", 0, 0, 10_000_000),
            model_concurrency=reader.integer("MODEL_CONCURRENCY", cls.model_concurrency, 1, 1024),
            # GENERATION_WORKERS and GENERATION_QUEUE_SIZE are the deprecated names of these two.
            cpu_concurrency=reader.integer(
                "CPU_CONCURRENCY", reader.integer("GENERATION_WORKERS", cls.cpu_concurrency, 1, 64), 0, 256
            ),
            generation_queue_limit=reader.integer(
                "GENERATION_QUEUE_LIMIT", reader.integer("GENERATION_QUEUE_SIZE", cls.generation_queue_limit, 0, 100_000),
                0, 100_000,
            ),
            generation_max_wait_seconds=reader.number(
                "GENERATION_MAX_WAIT_SECONDS", cls.generation_max_wait_seconds, 1, 3600
            ),
            deprecated=tuple(name for name in ("GENERATION_WORKERS", "GENERATION_QUEUE_SIZE") if reader.text(name, "")),
            redis_addr=reader.address("REDIS_ADDR", ""),
            enable_tracing=reader.boolean("ENABLE_TRACING", False),
            collector_service_addr=reader.address("COLLECTOR_SERVICE_ADDR", ""),
            otel_service_name=reader.text("OTEL_SERVICE_NAME", cls.otel_service_name),
            rate_limit_per_user=reader.integer("RATE_LIMIT_PER_USER", cls.rate_limit_per_user, 0, 1_000_000),
            rate_limit_window_seconds=reader.integer(
                "RATE_LIMIT_WINDOW_SECONDS", cls.rate_limit_window_seconds, 1, 7 * 86400
            ),
            gemini_daily_budget_usd=reader.number("GEMINI_DAILY_BUDGET_USD", cls.gemini_daily_budget_usd, 0, 1e9),
            budget_exceeded_action=reader.choice("BUDGET_EXCEEDED_ACTION", cls.budget_exceeded_action, BUDGET_ACTIONS),
            gemini_fallback=reader.choice("GEMINI_FALLBACK", cls.gemini_fallback, FALLBACKS),
            redis_timeout_seconds=reader.number("REDIS_TIMEOUT_SECONDS", cls.redis_timeout_seconds, 0.05, 30),
            generation_lease_seconds=reader.number("GENERATION_LEASE_SECONDS", cls.generation_lease_seconds, 1, 600),
            generation_max_attempts=reader.integer("GENERATION_MAX_ATTEMPTS", cls.generation_max_attempts, 1, 100),
            log_level=reader.choice("LOG_LEVEL", cls.log_level, ("DEBUG", "INFO", "WARNING", "ERROR"), upper=True),
            # Hardening.
            generate_max_inflight=reader.integer("GENERATE_MAX_INFLIGHT", cls.generate_max_inflight, 1, 4096),
            rpc_reserve_threads=reader.integer("RPC_RESERVE_THREADS", cls.rpc_reserve_threads, 2, 1024),
            upload_decode_max_bytes=reader.integer(
                "UPLOAD_DECODE_MAX_BYTES", cls.upload_decode_max_bytes, 16 * 1024 * 1024, 2**40
            ),
            http_idle_timeout_seconds=reader.integer(
                "HTTP_IDLE_TIMEOUT_SECONDS", cls.http_idle_timeout_seconds, 1, 3600
            ),
            http_max_connections=reader.integer("HTTP_MAX_CONNECTIONS", cls.http_max_connections, 10, 100_000),
            shutdown_status_seconds=reader.number("SHUTDOWN_STATUS_SECONDS", cls.shutdown_status_seconds, 0, 600),
            # Offline collage.
            collage_format=reader.choice("COLLAGE_FORMAT", cls.collage_format, COLLAGE_FORMATS),
        )
        settings = cls(**values)
        reader.check(settings)
        if reader.problems:
            raise SettingsError("invalid configuration: " + "; ".join(reader.problems))
        return settings


class _Reader:
    """Reads typed values from the environment, collecting every problem instead of stopping at one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _parse(self, name: str, default: Any, parse: Callable[[str], Any], expected: str) -> Any:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problems.append(f"{name} must be {expected}, got {raw!r}")
            return default

    def text(self, name: str, default: str) -> str:
        raw = self._raw(name)
        return default if raw is None else raw

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        def parse(raw: str) -> int:
            value = int(raw)
            if not low <= value <= high:
                raise ValueError
            return value

        return self._parse(name, default, parse, f"a whole number from {low} to {high}")

    def number(self, name: str, default: float, low: float, high: float) -> float:
        def parse(raw: str) -> float:
            value = float(raw)
            if not low <= value <= high:
                raise ValueError
            return value

        return self._parse(name, default, parse, f"a number from {low:g} to {high:g}")

    def choice(self, name: str, default: str, choices: tuple[str, ...], upper: bool = False) -> str:
        def parse(raw: str) -> str:
            value = raw.upper() if upper else raw.lower()
            if value not in choices:
                raise ValueError
            return value

        return self._parse(name, default, parse, "one of " + ", ".join(choices))

    def boolean(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError

        return self._parse(name, default, parse, "true or false")

    def url(self, name: str, default: str, allow_path: bool = False) -> str:
        def parse(raw: str) -> str:
            parts = urllib.parse.urlsplit(raw)
            # A path alone ("/cart/image") is a URL on the page's own origin: the frontend kit's image route.
            on_page_origin = allow_path and raw.startswith("/") and not raw.startswith("//") and not parts.netloc
            if not on_page_origin and (parts.scheme not in ("http", "https") or not parts.netloc):
                raise ValueError
            return raw.rstrip("/")

        expected = "an http:// or https:// URL" + (" or a path starting with /" if allow_path else "")
        return self._parse(name, default, parse, expected)

    def address(self, name: str, default: str) -> str:
        def parse(raw: str) -> str:
            host, sep, port = raw.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError
            return raw

        return self._parse(name, default, parse, "host:port")

    def models(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        def parse(raw: str) -> tuple[str, ...]:
            chain = tuple(model.strip() for model in raw.split(",") if model.strip())
            if not chain or any(any(c.isspace() for c in model) for model in chain):
                raise ValueError
            return chain

        return self._parse(name, default, parse, "a model id or a comma-separated list of model ids")

    def secret_name(self, name: str) -> str:
        def parse(raw: str) -> str:
            parts = raw.split("/")
            if len(parts) != 6 or parts[0] != "projects" or parts[2] != "secrets" or parts[4] != "versions":
                raise ValueError
            if not all(parts[i] for i in (1, 3, 5)):
                raise ValueError
            return raw

        return self._parse(name, "", parse, "a secret version like projects/P/secrets/S/versions/latest")

    def check(self, settings: Settings) -> None:
        """Cross-field rules."""
        if settings.image_generator == "gemini" and not settings.gemini_configured:
            self.problems.append(
                "IMAGE_GENERATOR=gemini needs GEMINI_API_KEY, GEMINI_API_KEY_SECRET or GOOGLE_GENAI_USE_VERTEXAI=true"
            )
        if settings.use_vertexai and settings.generator == "gemini" and not settings.project_id:
            self.problems.append("GOOGLE_GENAI_USE_VERTEXAI=true needs PROJECT_ID")
        if settings.enable_tracing and not settings.collector_service_addr:
            self.problems.append("ENABLE_TRACING=1 needs COLLECTOR_SERVICE_ADDR (e.g. opentelemetrycollector:4317)")
        if settings.gemini_total_timeout_seconds < settings.gemini_timeout_seconds:
            self.problems.append("GEMINI_TOTAL_TIMEOUT_SECONDS must not be less than GEMINI_TIMEOUT_SECONDS")
        if settings.redis_addr and not settings.gcs_bucket:
            # Each replica's local store holds only its own images: a shopper polling another one
            # would get a URL that replica cannot serve.
            self.problems.append(
                "REDIS_ADDR (several replicas) needs GCS_BUCKET: the local image store is not shared between replicas"
            )
