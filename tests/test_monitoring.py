"""Alarms an operator can use: the alert rules pass promtool's checks and unit tests, every copy of them is
the same, and every series the rules and the dashboard name is one the service really exposes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from genproto import imagegeneration_pb2 as pb
from imagegen.generators.gemini import CALL_OUTCOMES
from tests.fakes.fake_gemini import FakeGemini, error
from tests.k8s_tools import ROOT, run, tool

MONITORING = ROOT / "monitoring"
RULES = MONITORING / "alerts.rules.yaml"
DASHBOARD = MONITORING / "dashboard.json"
CHART_RULES = ROOT / "helm-chart" / "files" / "imagegenerationservice-alerts.rules.yaml"
COMPONENT_RULES = ROOT / "kustomize" / "components" / "image-generation-monitoring" / "imagegenerationservice-rules.yaml"
ALERTS = {"ImageGenerationFailureRatioHigh", "ImageGenerationQueueWaitHigh", "GeminiRateLimited",
          "GeminiBudgetAbove80Percent", "ImageGenerationSharedStateDown", "ImageGenerationNoHealthyReplica"}
# Written by the scraper (Prometheus, Managed Service for Prometheus), not by the service.
SCRAPER_SERIES = {"up"}
GENERATION_OUTCOMES = {"completed", "failed", "cached", "joined", "expired"}


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]]


def series_in(expr: str) -> set[str]:
    """Metric names an expression reads: identifiers followed by a selector, a range or nothing PromQL-ish."""
    names = set(re.findall(r"\b([a-z_][a-z0-9_]*)\s*(?=\{|\[|\)|$|\s*[><=/*])", expr))
    return {name for name in names if name.startswith("imagegen_") or name in SCRAPER_SERIES}


def test_promtool_checks_the_rules_file() -> None:
    assert "SUCCESS: 6 rules found" in run(tool("promtool"), "check", "rules", str(RULES))


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "alerts.test.yaml").read_text()))
    assert tested == ALERTS == {rule["alert"] for rule in rules()}
    assert "SUCCESS" in run(tool("promtool"), "test", "rules", "alerts.test.yaml", cwd=MONITORING)


def test_promtool_test_fails_when_a_threshold_moves(tmp_path: Path) -> None:
    (tmp_path / "alerts.rules.yaml").write_text(RULES.read_text().replace("> 0.1\n", "> 0.5\n"))
    (tmp_path / "alerts.test.yaml").write_text((MONITORING / "alerts.test.yaml").read_text())
    result = subprocess.run([tool("promtool"), "test", "rules", "alerts.test.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "ImageGenerationFailureRatioHigh" in result.stdout + result.stderr


def test_the_chart_and_the_component_carry_the_same_rules() -> None:
    assert CHART_RULES.read_text() == RULES.read_text()
    assert yaml.safe_load(COMPONENT_RULES.read_text())["spec"] == yaml.safe_load(RULES.read_text())


def test_the_dashboard_is_grafana_importable_and_its_queries_parse(tmp_path: Path) -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["title"] and board["uid"] and isinstance(board["schemaVersion"], int)
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    titles = " ".join(panel["title"] for panel in board["panels"]).lower()
    for subject in ("queue depth", "queue wait", "model calls in flight", "by outcome", "reason", "spend"):
        assert subject in titles
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"} and panel["targets"]
    # promtool parses PromQL only in rules files: every panel query as a recording rule.
    recorded = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{n}", "expr": expr} for n, expr in enumerate(dashboard_exprs())]}]}
    (tmp_path / "dashboard.rules.yaml").write_text(yaml.safe_dump(recorded))
    assert "SUCCESS" in run(tool("promtool"), "check", "rules", str(tmp_path / "dashboard.rules.yaml"))


def test_the_series_parser_finds_what_an_expression_reads() -> None:
    assert series_in('sum(rate(imagegen_generations_total{outcome="x"}[5m])) / max(imagegen_budget) > 0.8') == {
        "imagegen_generations_total", "imagegen_budget"}


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory, devstack) -> dict[str, set[tuple[str, ...]]]:
    """The service's own /metrics after a Gemini generation whose first model call answered 429: every
    series name it declares (a labelled counter declares its family before its first sample) -> the label
    sets of its samples."""
    from tests.conftest import peer_env
    from tests.service import ServiceProcess

    with FakeGemini() as fake:
        fake.script(error(429))
        env = {**peer_env(devstack), "IMAGE_GENERATOR": "gemini", "GEMINI_API_KEY": "AIzaFAKE-monitoring-test",
               "GOOGLE_GEMINI_BASE_URL": fake.base_url, "GEMINI_DAILY_BUDGET_USD": "5"}
        service = ServiceProcess(env, tmp_path_factory.mktemp("monitoring-service"))
        try:
            service.wait_serving()
            answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
                style_preference="modern", cart_items=[pb.CartItem(product_id="6E92ZMYYFZ", quantity=7)]), timeout=10)
            final, _ = service.wait_finished(answer.generation_id)
            assert final.status == "completed", final.error_message
            code, _, body = service.http_get(f"{service.http_base}/metrics")
        finally:
            service.close()
    assert code == 200
    seen: dict[str, set[tuple[str, ...]]] = {}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    for family in text_string_to_metric_families(body.decode()):
        for suffix in suffixes.get(family.type, ("",)):
            seen.setdefault(family.name + suffix, set())
        for sample in family.samples:
            seen.setdefault(sample.name, set()).add(tuple(sorted(f"{k}={v}" for k, v in sample.labels.items())))
    return seen


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_series_named_is_in_the_services_metrics(scraped: dict[str, set[tuple[str, ...]]], source: str) -> None:
    exprs = [rule["expr"] for rule in rules()] if source == "rules" else dashboard_exprs()
    named = set().union(*(series_in(expr) for expr in exprs)) - SCRAPER_SERIES
    assert len(named) >= 6
    missing = sorted(named - set(scraped))
    assert not missing, f"the {source} name series /metrics does not have: {missing}"


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_label_matched_is_one_the_service_writes(scraped: dict[str, set[tuple[str, ...]]], source: str) -> None:
    exprs = [rule["expr"] for rule in rules()] if source == "rules" else dashboard_exprs()
    known = {"imagegen_generations_total": GENERATION_OUTCOMES, "imagegen_gemini_calls_total": set(CALL_OUTCOMES)}
    for expr in exprs:
        for name, selector in re.findall(r"(imagegen_[a-z0-9_]+)\{([^}]*)\}", expr):
            for label, value in re.findall(r'(\w+)=~?"([^"]*)"', selector):
                if label == "job":
                    continue  # the scraper's label (the PodMonitoring's name)
                samples = scraped[name]
                assert any(pair.startswith(f"{label}=") for labels in samples for pair in labels), (name, label)
                assert set(value.split("|")) <= known[name], (name, label, value)
    assert any("outcome=rate_limited" in labels for labels in scraped["imagegen_gemini_calls_total"])
