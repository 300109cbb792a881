"""The deployment tools the tests run for real: helm, kustomize (built by `make tools` into .tools/bin), and
schema validation of every rendered object (kubernetes-validate for Kubernetes' own kinds, the CRDs'
own OpenAPI schemas for Managed Service for Prometheus' kinds)."""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools" / "bin"
CHART = ROOT / "helm-chart"
COMPONENTS = ROOT / "kustomize" / "components"
CRDS = ROOT / "tests" / "data" / "crds"
# The oldest Kubernetes minor GKE still serves, and the newest kubernetes-validate bundles.
K8S_VERSIONS = ("1.32", "1.37")
RELEASE, NAMESPACE = "online-boutique", "shop"


def tool(name: str) -> str:
    """The path of a tool `make tools` built; a clear failure where it has not run."""
    path = TOOLS / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make tools` (what `make test` does first)")
    return str(path)


def run(*command: str, cwd: Path | None = None) -> str:
    """Runs a tool and returns its stdout; its stderr in the failure otherwise."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert result.returncode == 0, f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
    return result.stdout


def load_docs(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a manifest stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _set_flags(settings: dict[str, Any]) -> list[str]:
    flags = []
    for dotted, value in settings.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        flags += ["--set-string" if isinstance(value, str) else "--set", f"{dotted.replace('__', '.')}={text}"]
    return flags


def helm_template(**settings: Any) -> list[dict[str, Any]]:
    """`helm template` of the chart with --set overrides (dots written as __), as the README runs it."""
    return load_docs(run(tool("helm"), "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                         *_set_flags(settings)))


def helm_lint(**settings: Any) -> str:
    """`helm lint --strict` of the chart with these overrides; its output."""
    return run(tool("helm"), "lint", "--strict", str(CHART), *_set_flags(settings))


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """`kustomize build` of an overlay."""
    return load_docs(run(tool("kustomize"), "build", str(directory)))


def shop_overlay(tmp: Path, base: dict[str, str], components: list[str]) -> Path:
    """The shop's layout: kustomize/base (these files) and kustomize/components/NAME (ours, copied), under an
    overlay kustomization listing `base` and the components, as the shop's kustomize/kustomization.yaml does."""
    root = tmp / "kustomize"
    (root / "base").mkdir(parents=True)
    for name, text in base.items():
        (root / "base" / name).write_text(text)
    (root / "base" / "kustomization.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": sorted(base)}))
    for component in components:
        shutil.copytree(COMPONENTS / component, root / "components" / component)
    (root / "kustomization.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["base"],
         "components": [f"components/{c}" for c in components]}, sort_keys=False))
    return root


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the CRD's openAPIV3Schema made strict (unknown fields refused, as the API
    server's strict field validation does)."""
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            schemas[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = schema
    return schemas


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        if (schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


def assert_valid(docs: list[dict[str, Any]]) -> None:
    """Every document validates in strict mode against its kind's schema, for every version in K8S_VERSIONS."""
    assert docs, "no documents to validate"
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        crd = _crd_schemas().get((doc.get("apiVersion"), doc.get("kind")))
        if crd is not None:
            try:
                jsonschema.validate(doc, crd)
            except jsonschema.ValidationError as error:
                pytest.fail(f"{where}: {'.'.join(str(p) for p in error.absolute_path)}: {error.message}")
            kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]},
                                         K8S_VERSIONS[-1], strict=True)  # the ObjectMeta part
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{where} (Kubernetes {version}): {'.'.join(str(p) for p in error.path)}: {error.message}")
