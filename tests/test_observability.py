"""JSON logs with ids, and the metrics exposition."""

import io
import json
import logging

import pytest

from imagegen.observability import Metrics, bound, configure_logging

pytestmark = pytest.mark.fast  # in memory: no servers, no processes


def test_log_lines_are_json_in_the_shops_shape_with_bound_ids():
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    log = logging.getLogger("imagegen.test")
    with bound(request_id="r-1", generation_id="g-1"):
        log.info("hello", extra={"style": "vintage"})
    log.warning("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["severity"] == "INFO" and first["name"] == "imagegen.test" and first["message"] == "hello"
    assert first["timestamp"]
    assert (first["request_id"], first["generation_id"], first["style"]) == ("r-1", "g-1", "vintage")
    assert second["severity"] == "WARNING" and "request_id" not in second


def test_metrics_exposition_has_the_documented_families():
    metrics = Metrics()
    metrics.generations.labels(outcome="completed", style="modern", generator="collage").inc()
    metrics.uploads.labels(outcome="invalid").inc()
    metrics.latency.labels(generator="collage", outcome="completed").observe(0.3)
    metrics.tokens("gemini-x", prompt=10, candidates=1290, total=1300)
    metrics.call("gemini-x", "ok")
    body, content_type = metrics.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'imagegen_generations_total{generator="collage",outcome="completed",style="modern"} 1.0' in text
    assert 'imagegen_uploads_total{outcome="invalid"} 1.0' in text
    assert 'imagegen_gemini_tokens_total{kind="candidates",model="gemini-x"} 1290.0' in text
    assert 'imagegen_gemini_calls_total{model="gemini-x",outcome="ok"} 1.0' in text
    assert "imagegen_generation_duration_seconds_bucket" in text


def test_log_lines_inside_a_span_carry_its_trace_and_span_ids():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    log = logging.getLogger("imagegen.test")
    with TracerProvider().get_tracer("test").start_as_current_span("work") as span:
        log.info("inside")
    log.info("outside")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["trace_id"] == trace.format_trace_id(context.trace_id)
    assert inside["span_id"] == trace.format_span_id(context.span_id)
    assert "trace_id" not in outside
