"""Settings: defaults, parsing, validation messages, and the auto generator choice."""

import dataclasses

import pytest

from imagegen.capacity import Capacity
from imagegen.settings import DEFAULT_GEMINI_MODELS, Settings, SettingsError

pytestmark = pytest.mark.fast  # in memory: no servers, no processes


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


def test_tracing_is_off_by_default_and_needs_a_collector_when_on():
    settings = Settings.from_env({})
    assert not settings.enable_tracing and settings.otel_service_name == "imagegenerationservice"
    with pytest.raises(SettingsError, match="COLLECTOR_SERVICE_ADDR"):
        Settings.from_env({"ENABLE_TRACING": "1"})
    on = Settings.from_env({"ENABLE_TRACING": "1", "COLLECTOR_SERVICE_ADDR": "opentelemetrycollector:4317"})
    assert on.enable_tracing and on.collector_service_addr == "opentelemetrycollector:4317"


def test_cost_guard_defaults_are_ones_a_shopper_never_meets():
    settings = Settings.from_env({})
    assert settings.rate_limit_per_user == 60 and settings.rate_limit_window_seconds == 600
    assert settings.gemini_daily_budget_usd == 20.0
    assert settings.budget_exceeded_action == "collage" and settings.gemini_fallback == "none"
    with pytest.raises(SettingsError, match="BUDGET_EXCEEDED_ACTION"):
        Settings.from_env({"BUDGET_EXCEEDED_ACTION": "panic"})


def test_concurrency_defaults_suit_a_model_behind_the_network():
    settings = Settings.from_env({})
    assert settings.model_concurrency == 32
    assert settings.generation_queue_limit == 256
    assert settings.generation_max_wait_seconds == 90
    assert settings.cpu_concurrency == 0 and Capacity.from_settings(settings).cpu >= 1
    assert settings.deprecated == ()


def test_old_pool_settings_still_work_and_are_reported_as_deprecated():
    settings = Settings.from_env({"GENERATION_WORKERS": "3", "GENERATION_QUEUE_SIZE": "7"})
    assert (Capacity.from_settings(settings).cpu, settings.generation_queue_limit) == (3, 7)
    assert settings.deprecated == ("GENERATION_WORKERS", "GENERATION_QUEUE_SIZE")
    newer = Settings.from_env({"GENERATION_WORKERS": "3", "CPU_CONCURRENCY": "5", "GENERATION_QUEUE_LIMIT": "500"})
    assert (Capacity.from_settings(newer).cpu, newer.generation_queue_limit) == (5, 500)


def test_redis_with_the_local_image_store_is_refused():
    with pytest.raises(SettingsError, match="REDIS_ADDR .* needs GCS_BUCKET"):
        Settings.from_env({"REDIS_ADDR": "redis-cart:6379"})
    settings = Settings.from_env({"REDIS_ADDR": "redis-cart:6379", "GCS_BUCKET": "images"})
    assert settings.redis_addr == "redis-cart:6379" and settings.generation_lease_seconds == 15


def test_hardening_defaults_and_the_rpc_pool_they_size():
    settings = Settings.from_env({})
    assert (settings.generate_max_inflight, settings.rpc_reserve_threads, settings.upload_concurrency) == (256, 16, 2)
    assert Capacity.from_settings(settings).rpc_threads == 256 + 2 + 16  # a thread for every admitted call, plus health and status
    assert settings.upload_decode_max_bytes == 256 * 1024 * 1024
    assert (settings.http_idle_timeout_seconds, settings.http_max_connections) == (10, 10_000)
    assert settings.shutdown_status_seconds == 3.0
    assert Capacity.from_settings(Settings.from_env({"GENERATE_MAX_INFLIGHT": "200", "RPC_RESERVE_THREADS": "4"})).rpc_threads == 206


def test_hardening_values_out_of_range_are_refused():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"GENERATE_MAX_INFLIGHT": "0", "RPC_RESERVE_THREADS": "1", "UPLOAD_DECODE_MAX_BYTES": "1000",
                           "HTTP_IDLE_TIMEOUT_SECONDS": "0.5", "HTTP_MAX_CONNECTIONS": "5", "SHUTDOWN_STATUS_SECONDS": "-1"})
    for name in ("GENERATE_MAX_INFLIGHT", "RPC_RESERVE_THREADS", "UPLOAD_DECODE_MAX_BYTES", "HTTP_IDLE_TIMEOUT_SECONDS",
                 "HTTP_MAX_CONNECTIONS", "SHUTDOWN_STATUS_SECONDS"):
        assert name in str(caught.value)


def test_the_collage_format_defaults_to_jpeg_and_takes_webp_or_png():
    assert Settings.from_env({}).collage_format == "jpeg"
    assert Settings.from_env({"COLLAGE_FORMAT": "WebP"}).collage_format == "webp"
    assert Settings.from_env({"COLLAGE_FORMAT": "png"}).collage_format == "png"


def test_an_unknown_collage_format_is_refused_by_name():
    with pytest.raises(SettingsError, match="COLLAGE_FORMAT"):
        Settings.from_env({"COLLAGE_FORMAT": "gif"})


def test_each_adapter_gets_its_own_part_with_the_same_names_and_defaults():
    settings = Settings.from_env({"CART_SERVICE_ADDR": "cart:1", "GEMINI_API_KEY": "AIza-not-a-real-key", "REDIS_TIMEOUT_SECONDS": "2"})
    parts = (settings.server, settings.shop, settings.gemini, settings.gcs, settings.local_store, settings.state,
             settings.cost_guard, settings.uploads)
    for part in parts:
        for field in dataclasses.fields(part):
            assert getattr(part, field.name) == getattr(settings, field.name)
    defaults = Settings()
    for part in (defaults.server, defaults.shop, defaults.gemini, defaults.gcs, defaults.local_store,
                 defaults.state, defaults.cost_guard, defaults.uploads):
        assert part == type(part)()  # a part's own defaults are the service's
    assert (settings.shop.cart_service_addr, settings.state.redis_timeout_seconds) == ("cart:1", 2.0)
    assert "AIza-not-a-real-key" not in repr(settings.gemini)  # the key stays out of logs


def test_no_setting_is_left_out_of_every_part_but_the_concurrency_and_generation_ones():
    grouped = {field.name for part in (Settings().server, Settings().shop, Settings().gemini, Settings().gcs,
                                       Settings().local_store, Settings().state, Settings().cost_guard,
                                       Settings().uploads) for field in dataclasses.fields(part)}
    rest = {field.name for field in dataclasses.fields(Settings)} - grouped
    assert rest == {"image_generator", "image_size", "collage_format", "enable_tracing", "collector_service_addr",
                    "otel_service_name", "model_concurrency", "cpu_concurrency", "generation_queue_limit",
                    "generation_max_wait_seconds", "generate_max_inflight", "rpc_reserve_threads",
                    "upload_concurrency", "deprecated"}
