"""The service's egress NetworkPolicy, in its three deploy forms, read with PyYAML and evaluated as a
Kubernetes network plugin would for a destination address and port."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MEMORYSTORE = "10.23.0.5"  # a private-services address, outside the cluster's pod range
POD = "10.52.1.7"  # an in-cluster pod (redis-cart, opentelemetrycollector)


def plain() -> dict[str, Any]:
    return _service_policy(yaml.safe_load_all((ROOT / "kubernetes-manifests/imagegenerationservice-networkpolicy.yaml").read_text()))


def kustomize() -> dict[str, Any]:
    path = ROOT / "kustomize/components/image-generation/imagegenerationservice-networkpolicy.yaml"
    return _service_policy(yaml.safe_load_all(path.read_text()))


def helm() -> dict[str, Any]:
    values = yaml.safe_load((ROOT / "helm-chart/values.yaml").read_text())

    def value(match: re.Match[str]) -> str:
        node: Any = values
        for key in match.group(1).split("."):
            node = node[key]
        return str(node)

    text = (ROOT / "helm-chart/templates/imagegenerationservice.yaml").read_text()
    documents = [doc for doc in text.split("\n---\n") if "kind: NetworkPolicy" in doc]
    # The policies hold value lookups only; the lines around them are template actions (if, end).
    rendered = [re.sub(r"\{\{ \.Values\.([\w.]+) \}\}", value, re.sub(r"(?m)^\s*\{\{-?.*\}\}\s*$", "", doc))
                .replace("{{ .Release.Namespace }}", "default") for doc in documents]
    return _service_policy(yaml.safe_load(doc) for doc in rendered)


def _service_policy(documents) -> dict[str, Any]:
    (policy,) = [doc for doc in documents if doc and doc["kind"] == "NetworkPolicy"
                 and doc["metadata"]["name"] == "imagegenerationservice"]
    return policy


def admits(policy: dict[str, Any], address: str, port: int, pod_labels: dict[str, str] | None = None) -> bool:
    """Whether some egress rule lets the service reach address:port (a pod with pod_labels, or outside)."""
    for rule in policy["spec"]["egress"]:
        if rule.get("ports") and not any(p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in rule["ports"]):
            continue
        peers = rule.get("to")
        if not peers:
            return True
        for peer in peers:
            block = peer.get("ipBlock")
            if block and ipaddress.ip_address(address) in ipaddress.ip_network(block["cidr"]) and not any(
                    ipaddress.ip_address(address) in ipaddress.ip_network(e) for e in block.get("except", [])):
                return True
            selector = peer.get("podSelector", {}).get("matchLabels")
            if pod_labels is not None and selector and selector.items() <= pod_labels.items():
                return True
    return False


FORMS = pytest.mark.parametrize("policy", [plain(), kustomize(), helm()], ids=["plain", "kustomize", "helm"])


@FORMS
def test_redis_outside_the_cluster_is_reachable_on_its_port(policy):
    assert admits(policy, MEMORYSTORE, 6379)


@FORMS
def test_redis_cart_in_the_cluster_stays_reachable(policy):
    assert admits(policy, POD, 6379, {"app": "redis-cart"})


@FORMS
def test_the_opentelemetry_collector_is_reachable_in_or_outside_the_cluster(policy):
    assert admits(policy, POD, 4317, {"app": "opentelemetrycollector"})
    assert admits(policy, MEMORYSTORE, 4317)


@FORMS
def test_other_ports_stay_closed(policy):
    for port in (22, 5432, 6380, 4318, 8080):
        assert not admits(policy, MEMORYSTORE, port), port
