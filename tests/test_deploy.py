"""The Kubernetes manifests, the Kustomize component and the Helm template: valid, and in step with the code."""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from imagegen.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PLAIN = ROOT / "kubernetes-manifests" / "imagegenerationservice.yaml"
PLAIN_POLICY = ROOT / "kubernetes-manifests" / "imagegenerationservice-networkpolicy.yaml"
COMPONENT = ROOT / "kustomize" / "components" / "image-generation"
PEERS_COMPONENT = ROOT / "kustomize" / "components" / "image-generation-network-policies"
CHART = ROOT / "helm-chart"
TEMPLATE = CHART / "templates" / "imagegenerationservice.yaml"
SETTINGS = ROOT / "imagegen" / "settings.py"
README = ROOT / "README.md"

NAME = "imagegenerationservice"
# The Kubernetes version the manifests are validated against (GKE's regular channel or older).
K8S_VERSION = "1.32"
# Read by the Google SDKs the service uses, not by Settings; operators may set them too.
SDK_ENV = {
    "GOOGLE_GEMINI_BASE_URL", "GOOGLE_VERTEX_BASE_URL", "STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"
}
FRONTEND_PATCH = {"IMAGE_GENERATION_SERVICE_ADDR": "imagegenerationservice:8080", "ENABLE_IMAGE_GENERATION": "true"}


# ---------------------------------------------------------------------------------------------------
# Reading the sources of truth.


def service_env_names() -> set[str]:
    """The environment variables Settings.from_env reads: the first argument of every reader.*() call."""
    tree = ast.parse(SETTINGS.read_text())
    from_env = next(
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "from_env"
    )
    names = {
        node.args[0].value
        for node in ast.walk(from_env)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "reader"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }
    assert "PORT" in names, "could not find the reader.*() calls in Settings.from_env"
    return names


def readme_config_names() -> set[str]:
    """Names in the README's configuration table (rows that start with | `NAME` |)."""
    if not README.exists():
        pytest.fail("README.md is missing: it needs the configuration table (rows like | `PORT` | ...)")
    return set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", README.read_text(), flags=re.MULTILINE))


def load_docs(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a manifest stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str = NAME) -> dict[str, Any]:
    """The one document of this kind and name."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def server(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Deployment's `server` container."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "server")


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The container's env entries by name."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def assert_valid(docs: list[dict[str, Any]]) -> None:
    """Every document validates against the Kubernetes schema in strict mode (no unknown fields)."""
    assert docs, "no documents to validate"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {error.message}")


# ---------------------------------------------------------------------------------------------------
# Helm without helm: a renderer for exactly the template constructs the chart uses
# (if/else/end, whitespace trimming, .Values/.Release/.Chart, quote, default, toYaml, nindent, not).

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)


def _go_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _operand(token: str, context: dict[str, Any]) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if token.isdigit():
        return int(token)
    if not token.startswith("."):
        raise AssertionError(f"template construct not supported by the test renderer: {token!r}")
    value: Any = context
    for key in token[1:].split("."):
        if not isinstance(value, dict) or key not in value:
            pytest.fail(f"the template reads {token}, which values.yaml does not define")
        value = value[key]
    return value


def _evaluate(expression: str, context: dict[str, Any]) -> Any:
    first, *stages = (stage.strip() for stage in expression.split("|"))
    function, *args = first.split()
    if function == "toYaml":
        value: Any = yaml.safe_dump(_operand(args[0], context), default_flow_style=False, sort_keys=False).rstrip("\n")
    elif function == "not":
        value = not _operand(args[0], context)
    else:
        value = _operand(first, context)
    for stage in stages:
        function, *args = stage.split()
        if function == "quote":
            value = json.dumps(_go_string(value))
        elif function == "default":
            value = value or _operand(args[0], context)
        elif function == "nindent":
            value = "\n" + textwrap.indent(_go_string(value), " " * int(args[0]))
        else:
            raise AssertionError(f"template function not supported by the test renderer: {function}")
    return value


def render_template(text: str, context: dict[str, Any]) -> str:
    """Renders a Go template the way helm would, for the constructs listed above."""
    tokens: list[tuple[str, str]] = []
    position, trim_next = 0, False
    for match in _ACTION.finditer(text):
        chunk = text[position : match.start()]
        chunk = chunk.lstrip() if trim_next else chunk
        tokens.append(("text", chunk.rstrip() if match.group(1) else chunk))
        tokens.append(("action", match.group(2)))
        position, trim_next = match.end(), bool(match.group(3))
    tail = text[position:]
    tokens.append(("text", tail.lstrip() if trim_next else tail))

    out: list[str] = []
    # Each frame: (this branch is emitting, some branch of this if has been taken).
    frames: list[tuple[bool, bool]] = []
    emitting = True
    for kind, body in tokens:
        if kind == "text":
            if emitting:
                out.append(body)
        elif body.startswith("if "):
            taken = emitting and bool(_evaluate(body[3:], context))
            frames.append((emitting, taken))
            emitting = taken
        elif body == "else":
            outer, taken = frames[-1]
            emitting = outer and not taken
        elif body == "end":
            emitting, _ = frames.pop()
        elif emitting:
            out.append(_go_string(_evaluate(body, context)))
    assert not frames, "unbalanced if/end in the template"
    return "".join(out)


def render_chart(**settings: Any) -> list[dict[str, Any]]:
    """The chart's documents for values.yaml plus --set style overrides (dots become __)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for dotted, value in settings.items():
        *path, leaf = dotted.split("__")
        node = values
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = value
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    context = {
        "Values": values,
        "Release": {"Name": "online-boutique", "Namespace": "shop"},
        "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
    }
    return load_docs(render_template(TEMPLATE.read_text(), context))


# ---------------------------------------------------------------------------------------------------
# Kustomize: the component applied to an overlay holding a minimal frontend.

FRONTEND = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
spec:
  selector:
    matchLabels:
      app: frontend
  template:
    metadata:
      labels:
        app: frontend
    spec:
      containers:
      - name: server
        image: frontend
        env:
        - name: PORT
          value: "8080"
      - name: sidecar
        image: sidecar
"""


def render_component_in_python(frontend: str) -> list[dict[str, Any]]:
    """What kustomize makes of the overlay, for machines without kubectl: the component's resources plus
    its strategic-merge patches of containers' env lists (the only kind of patch the component uses)."""
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    docs = load_docs(frontend)
    for resource in kustomization["resources"]:
        docs += load_docs((COMPONENT / resource).read_text())
    for entry in kustomization.get("patches", []):
        patch = yaml.safe_load(entry["patch"])
        target = find(docs, patch["kind"], patch["metadata"]["name"])
        containers = {c["name"]: c for c in target["spec"]["template"]["spec"]["containers"]}
        for patched in patch["spec"]["template"]["spec"]["containers"]:
            assert set(patched) == {"name", "env"}, "the Python renderer only merges env lists"
            env = containers[patched["name"]].setdefault("env", [])
            for variable in patched["env"]:
                env[:] = [e for e in env if e["name"] != variable["name"]] + [variable]
    return docs


def kustomize_command() -> list[str] | None:
    """`kubectl kustomize` or `kustomize build`, whichever exists; None where neither does."""
    if shutil.which("kubectl"):
        return [shutil.which("kubectl"), "kustomize"]
    if shutil.which("kustomize"):
        return [shutil.which("kustomize"), "build"]
    return None


def render_component_with_kustomize(command: list[str], tmp: Path) -> list[dict[str, Any]]:
    """The command's rendering of an overlay holding FRONTEND and the component."""
    # kustomize refuses absolute component paths, so the component is copied next to the overlay.
    shutil.copytree(COMPONENT, tmp / "components" / "image-generation")
    overlay = tmp / "overlay"
    overlay.mkdir()
    (overlay / "frontend.yaml").write_text(FRONTEND)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n- frontend.yaml\ncomponents:\n- ../components/image-generation\n"
    )
    result = subprocess.run([*command, str(overlay)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr}"
    return load_docs(result.stdout)


def normalised(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of the documents sorted by kind and name, with env lists sorted by name."""
    docs = copy.deepcopy(sorted(docs, key=lambda d: (d["kind"], d["metadata"]["name"])))
    for doc in docs:
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            container.get("env", []).sort(key=lambda e: e["name"])  # merge order is not meaningful
    return docs


GOLDEN = ROOT / "tests" / "data" / "component-rendered.yaml"
GOLDEN_HEADER = """\
# `kubectl kustomize` of an overlay holding tests/test_deploy.py's FRONTEND plus
# kustomize/components/image-generation, normalised (documents by kind/name, env lists by name).
# Regenerate with kubectl (or kustomize) on PATH after changing the component:
#   UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_deploy.py -k golden
"""


@pytest.fixture(scope="module")
def kustomized(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]] | None:
    """kubectl's (or kustomize's) rendering of the overlay; None where neither binary exists (none is in this
    project's package registries)."""
    command = kustomize_command()
    if command is None:
        return None
    return render_component_with_kustomize(command, tmp_path_factory.mktemp("kustomize"))


@pytest.fixture(scope="module")
def golden(kustomized: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The golden rendering; rewritten from kubectl first when UPDATE_GOLDEN=1."""
    if os.environ.get("UPDATE_GOLDEN") == "1":
        if kustomized is None:
            pytest.fail("UPDATE_GOLDEN=1 needs kubectl or kustomize on PATH: the golden file comes from kustomize")
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(GOLDEN_HEADER + yaml.safe_dump_all(normalised(kustomized), sort_keys=True))
    return load_docs(GOLDEN.read_text())


@pytest.fixture(scope="module")
def rendered_component(kustomized: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """kubectl's rendering of the overlay; where no binary exists, the Python rendering, which
    test_python_rendering_matches_golden holds to what kubectl produced."""
    if kustomized is None:
        print("kubectl/kustomize not found: rendering the component in Python")
        return render_component_in_python(FRONTEND)
    return kustomized


def test_python_rendering_matches_golden(golden: list[dict[str, Any]]) -> None:
    assert normalised(render_component_in_python(FRONTEND)) == golden


def test_rendered_component_matches_golden(
    rendered_component: list[dict[str, Any]], golden: list[dict[str, Any]]
) -> None:
    assert normalised(rendered_component) == golden


@pytest.fixture(scope="module")
def plain() -> list[dict[str, Any]]:
    """The documents of kubernetes-manifests/imagegenerationservice.yaml."""
    return load_docs(PLAIN.read_text())


@pytest.fixture(scope="module")
def chart() -> list[dict[str, Any]]:
    """The chart rendered with values.yaml and create=true, as `--set imageGenerationService.create=true`."""
    return render_chart(imageGenerationService__create=True)


# ---------------------------------------------------------------------------------------------------
# Every rendition validates.


def test_plain_manifest_validates_strictly(plain: list[dict[str, Any]]) -> None:
    assert [d["kind"] for d in plain] == ["ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"]
    assert_valid(plain)


def test_component_resources_are_the_plain_manifest() -> None:
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert kustomization["kind"] == "Component"
    assert kustomization["resources"] == [PLAIN.name, PLAIN_POLICY.name]
    for resource in kustomization["resources"]:
        original = PLAIN.parent / resource
        assert (COMPONENT / resource).read_text() == original.read_text(), (
            f"{COMPONENT / resource} differs from {original}: copy the plain manifest over it"
        )


def test_rendered_component_validates_strictly(rendered_component: list[dict[str, Any]]) -> None:
    assert sorted(f"{d['kind']}/{d['metadata']['name']}" for d in rendered_component) == [
        "Deployment/frontend",
        f"Deployment/{NAME}",
        f"NetworkPolicy/{NAME}",
        f"PodDisruptionBudget/{NAME}",
        f"Service/{NAME}",
        f"ServiceAccount/{NAME}",
    ]
    assert_valid(rendered_component)


def test_component_adds_image_generation_env_to_frontend_server(rendered_component: list[dict[str, Any]]) -> None:
    frontend = find(rendered_component, "Deployment", "frontend")
    env = {name: entry.get("value") for name, entry in env_of(server(frontend)).items()}
    assert env == {"PORT": "8080", **FRONTEND_PATCH}
    sidecar = next(c for c in frontend["spec"]["template"]["spec"]["containers"] if c["name"] == "sidecar")
    assert "env" not in sidecar


def test_component_service_is_the_plain_manifest(
    rendered_component: list[dict[str, Any]], plain: list[dict[str, Any]]
) -> None:
    for kind in ("ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"):
        assert find(rendered_component, kind) == find(plain, kind)


def test_component_patch_points_frontend_at_the_service(plain: list[dict[str, Any]]) -> None:
    service = find(plain, "Service")
    grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert FRONTEND_PATCH["IMAGE_GENERATION_SERVICE_ADDR"] == f"{service['metadata']['name']}:{grpc_port}"


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "imageGenerationService__geminiApiKey": "test-key-123",
            "imageGenerationService__gcpServiceAccount": "imagegen@my-project.iam.gserviceaccount.com",
            "imageGenerationService__gcsBucket": "my-bucket",
            "imageGenerationService__projectId": "my-project",
            "imageGenerationService__useVertexai": True,
            "networkPolicies__create": True,
            "seccompProfile__enable": True,
        },
        {"securityContext__enable": False, "images__tag": "v9.9.9"},
    ],
    ids=["defaults", "everything-on", "no-pod-security-context"],
)
def test_chart_renders_strictly_valid_manifests(overrides: dict[str, Any]) -> None:
    assert_valid(render_chart(imageGenerationService__create=True, **overrides))


def test_chart_renders_nothing_unless_created() -> None:
    assert render_chart() == []


# ---------------------------------------------------------------------------------------------------
# The Helm template agrees with the plain manifest.


def test_chart_deployment_agrees_with_plain_manifest(
    chart: list[dict[str, Any]], plain: list[dict[str, Any]]
) -> None:
    ours, theirs = copy.deepcopy(find(chart, "Deployment")), copy.deepcopy(find(plain, "Deployment"))
    ours_pod, theirs_pod = ours["spec"]["template"], theirs["spec"]["template"]
    ours_server, theirs_server = server(ours), server(theirs)
    # Image references differ by design (bare name for skaffold vs registry/name:tag); compared below.
    for container in (ours_server, theirs_server):
        container.pop("image")
    assert ours_server == theirs_server  # ports, env (names and default values), probes, security, resources
    for pod in (ours_pod, theirs_pod):
        pod["spec"].pop("containers")
    assert ours_pod == theirs_pod  # labels, service account, grace period, pod security context, volumes
    assert ours["spec"]["selector"] == theirs["spec"]["selector"]


def test_chart_service_and_account_agree_with_plain_manifest(
    chart: list[dict[str, Any]], plain: list[dict[str, Any]]
) -> None:
    assert find(chart, "Service")["spec"] == find(plain, "Service")["spec"]
    assert find(chart, "ServiceAccount")["metadata"]["name"] == find(plain, "ServiceAccount")["metadata"]["name"]
    assert find(chart, "PodDisruptionBudget")["spec"] == find(plain, "PodDisruptionBudget")["spec"]
    assert find(chart, "Deployment")["spec"]["replicas"] == find(plain, "Deployment")["spec"]["replicas"]


def test_chart_scales_out_with_redis_and_a_bucket() -> None:
    docs = render_chart(imageGenerationService__create=True, imageGenerationService__replicas=3,
                        imageGenerationService__redisAddr="redis-cart:6379", imageGenerationService__gcsBucket="b",
                        imageGenerationService__modelConcurrency=64)
    deployment = find(docs, "Deployment")
    env = {name: entry.get("value") for name, entry in env_of(server(deployment)).items()}
    assert deployment["spec"]["replicas"] == 3
    settings = Settings.from_env(env)
    assert (settings.redis_addr, settings.gcs_bucket, settings.model_concurrency) == ("redis-cart:6379", "b", 64)


def test_chart_image_follows_the_shop_convention(chart: list[dict[str, Any]], plain: list[dict[str, Any]]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    image = server(find(chart, "Deployment"))["image"]
    assert image == f"{values['images']['repository']}/{server(find(plain, 'Deployment'))['image']}:{app_version}"
    tagged = render_chart(imageGenerationService__create=True, images__tag="v1.2.3")
    assert server(find(tagged, "Deployment"))["image"].endswith(f"/{NAME}:v1.2.3")
    own = "europe-docker.pkg.dev/p/r/imagegenerationservice:abc"
    overridden = render_chart(imageGenerationService__create=True, imageGenerationService__image=own)
    assert server(find(overridden, "Deployment"))["image"] == own


def test_chart_values_reach_the_service_env() -> None:
    docs = render_chart(
        imageGenerationService__create=True,
        imageGenerationService__gcsBucket="my-bucket",
        imageGenerationService__projectId="my-project",
        imageGenerationService__imageUrlMode="signed",
        imageGenerationService__geminiApiKeySecret="projects/p/secrets/gemini/versions/latest",
        imageGenerationService__useVertexai=True,
    )
    env = {name: entry.get("value") for name, entry in env_of(server(find(docs, "Deployment"))).items()}
    assert env["GCS_BUCKET"] == "my-bucket"
    assert env["PROJECT_ID"] == "my-project"
    assert env["IMAGE_URL_MODE"] == "signed"
    assert env["GEMINI_API_KEY_SECRET"] == "projects/p/secrets/gemini/versions/latest"
    assert env["GOOGLE_GENAI_USE_VERTEXAI"] == "true"
    assert Settings.from_env(env).gcs_bucket == "my-bucket"


def test_chart_puts_the_gemini_key_in_the_secret_the_env_reads() -> None:
    docs = render_chart(imageGenerationService__create=True, imageGenerationService__geminiApiKey="k-123")
    ref = env_of(server(find(docs, "Deployment")))["GEMINI_API_KEY"]["valueFrom"]["secretKeyRef"]
    secret = find(docs, "Secret", ref["name"])
    assert secret["stringData"] == {ref["key"]: "k-123"}


def test_chart_makes_no_secret_without_a_key(chart: list[dict[str, Any]]) -> None:
    assert [d for d in chart if d["kind"] == "Secret"] == []


def test_chart_annotates_the_account_for_workload_identity(chart: list[dict[str, Any]]) -> None:
    email = "imagegen@my-project.iam.gserviceaccount.com"
    docs = render_chart(imageGenerationService__create=True, imageGenerationService__gcpServiceAccount=email)
    assert find(docs, "ServiceAccount")["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": email}
    assert "annotations" not in find(chart, "ServiceAccount")["metadata"]


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    """The service's own NetworkPolicy (kubernetes-manifests/imagegenerationservice-networkpolicy.yaml)."""
    (document,) = load_docs(PLAIN_POLICY.read_text())
    return document


def test_the_network_policy_validates_and_selects_the_service(policy: dict[str, Any], plain: list[dict[str, Any]]) -> None:
    assert_valid([policy])
    labels = find(plain, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"] == labels
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_the_network_policy_admits_only_the_frontend(policy: dict[str, Any], plain: list[dict[str, Any]]) -> None:
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app": "frontend"}}}]
    ports = sorted(p["port"] for p in find(plain, "Service")["spec"]["ports"])
    assert sorted(p["port"] for p in rule["ports"]) == ports == [8080, 8081]


def _egress_to(policy: dict[str, Any]) -> set[tuple[str, int]]:
    """(app label or CIDR or 'any', port) pairs the policy lets the service reach."""
    reached = set()
    for rule in policy["spec"]["egress"]:
        peers = [next(iter(p["podSelector"]["matchLabels"].values())) if "podSelector" in p else p["ipBlock"]["cidr"]
                 for p in rule.get("to", [])] or ["any"]
        reached |= {(peer, port["port"]) for peer in peers for port in rule["ports"]}
    return reached


def test_the_network_policy_lets_the_service_reach_its_peers(policy: dict[str, Any], plain: list[dict[str, Any]]) -> None:
    env = {name: entry.get("value") for name, entry in env_of(server(find(plain, "Deployment"))).items()}
    reached = _egress_to(policy)
    for variable in ("CART_SERVICE_ADDR", "PRODUCT_CATALOG_SERVICE_ADDR"):
        host, port = env[variable].rsplit(":", 1)
        assert (host, int(port)) in reached, f"{variable}={env[variable]} is not reachable"
    assert env["PRODUCT_IMAGE_BASE_URL"] == "http://frontend:80"
    assert ("frontend", 8080) in reached  # the frontend Service's port 80 is its pods' 8080
    assert {("any", 53), ("any", 6379), ("any", 4317), ("0.0.0.0/0", 443), ("169.254.169.254/32", 80)} <= reached


def test_the_chart_renders_the_same_network_policy(policy: dict[str, Any]) -> None:
    docs = render_chart(imageGenerationService__create=True, networkPolicies__create=True)
    assert find(docs, "NetworkPolicy")["spec"] == policy["spec"]
    assert_valid(docs)


def test_the_peers_component_admits_the_service_to_cart_catalog_and_redis(plain: list[dict[str, Any]]) -> None:
    kustomization = yaml.safe_load((PEERS_COMPONENT / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    docs = [doc for resource in kustomization["resources"] for doc in load_docs((PEERS_COMPONENT / resource).read_text())]
    assert_valid(docs)
    admitted = {}
    for doc in docs:
        assert doc["spec"]["policyTypes"] == ["Ingress"]  # additive: never restricts the peer's egress
        (rule,) = doc["spec"]["ingress"]
        assert rule["from"] == [{"podSelector": {"matchLabels": {"app": NAME}}}]
        admitted[doc["spec"]["podSelector"]["matchLabels"]["app"]] = [p["port"] for p in rule["ports"]]
    assert admitted == {"cartservice": [7070], "productcatalogservice": [3550], "redis-cart": [6379]}
    chart = render_chart(imageGenerationService__create=True, networkPolicies__create=True)
    for doc in docs:  # the chart adds the same policies when it creates the shop's
        assert find(chart, "NetworkPolicy", doc["metadata"]["name"])["spec"] == doc["spec"]


def test_chart_network_policy_admits_the_frontend_on_both_ports() -> None:
    docs = render_chart(imageGenerationService__create=True, networkPolicies__create=True)
    policy = find(docs, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app": NAME}
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app": "frontend"}}}]
    assert sorted(p["port"] for p in rule["ports"]) == [8080, 8081]


# ---------------------------------------------------------------------------------------------------
# The manifests agree with the service's code.


def deployments(plain: list[dict[str, Any]], chart: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The service's Deployment in every rendition that sets its env."""
    return [("plain manifest", find(plain, "Deployment")), ("helm chart", find(chart, "Deployment"))]


def test_every_env_var_the_manifests_set_is_read_by_the_service(
    plain: list[dict[str, Any]], chart: list[dict[str, Any]]
) -> None:
    allowed = service_env_names() | SDK_ENV
    for where, deployment in deployments(plain, chart):
        unknown = set(env_of(server(deployment))) - allowed
        assert not unknown, f"the {where} sets variables the service never reads: {sorted(unknown)}"


def test_manifest_env_values_are_accepted_by_the_service(plain: list[dict[str, Any]]) -> None:
    entries = env_of(server(find(plain, "Deployment"))).values()
    env = {entry["name"]: entry["value"] for entry in entries if "value" in entry}
    settings = Settings.from_env(env)
    assert (settings.port, settings.http_port) == (8080, 8081)
    assert settings.generator == "collage"  # no Gemini credential in the placeholders


def test_every_setting_the_service_reads_is_in_the_readme_table() -> None:
    missing = service_env_names() - readme_config_names()
    assert not missing, f"README.md's configuration table lacks rows for: {sorted(missing)}"


def test_peers_are_the_shop_cluster_addresses(plain: list[dict[str, Any]]) -> None:
    env = env_of(server(find(plain, "Deployment")))
    assert env["CART_SERVICE_ADDR"]["value"] == "cartservice:7070"
    assert env["PRODUCT_CATALOG_SERVICE_ADDR"]["value"] == "productcatalogservice:3550"
    assert env["PRODUCT_IMAGE_BASE_URL"]["value"] == "http://frontend:80"


def test_gemini_key_comes_from_an_optional_secret(plain: list[dict[str, Any]]) -> None:
    entry = env_of(server(find(plain, "Deployment")))["GEMINI_API_KEY"]
    assert "value" not in entry
    assert entry["valueFrom"]["secretKeyRef"]["optional"] is True


def test_termination_grace_outlasts_the_shutdown_grace(
    plain: list[dict[str, Any]], chart: list[dict[str, Any]]
) -> None:
    for where, deployment in deployments(plain, chart):
        env = env_of(server(deployment))
        shutdown = float(env["SHUTDOWN_GRACE_SECONDS"]["value"]) if "SHUTDOWN_GRACE_SECONDS" in env else (
            Settings.shutdown_grace_seconds
        )
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > shutdown, f"{where}: terminationGracePeriodSeconds {grace} <= shutdown grace {shutdown}"


def test_probes_are_native_grpc_on_the_service_port(plain: list[dict[str, Any]], chart: list[dict[str, Any]]) -> None:
    for _, deployment in deployments(plain, chart):
        container = server(deployment)
        port = int(env_of(container)["PORT"]["value"])
        assert {"name": "grpc", "containerPort": port} in container["ports"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}


def test_service_exposes_grpc_and_metrics_ports(plain: list[dict[str, Any]]) -> None:
    deployment, service = find(plain, "Deployment"), find(plain, "Service")
    env = env_of(server(deployment))
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    grpc_port, http_port = int(env["PORT"]["value"]), int(env["HTTP_PORT"]["value"])
    assert ports == {"grpc": (grpc_port, grpc_port), "http": (http_port, http_port)}


def test_security_context_follows_the_shop(plain: list[dict[str, Any]], chart: list[dict[str, Any]]) -> None:
    for _, deployment in deployments(plain, chart):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"] == {"fsGroup": 1000, "runAsGroup": 1000, "runAsNonRoot": True, "runAsUser": 1000}
        assert server(deployment)["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
        }


def test_the_only_writable_path_is_on_an_empty_dir(plain: list[dict[str, Any]]) -> None:
    deployment = find(plain, "Deployment")
    container = server(deployment)
    store_dir = env_of(container)["IMAGE_STORE_DIR"]["value"]
    empty_dirs = {v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "emptyDir" in v}
    mounts = [m["mountPath"] for m in container["volumeMounts"] if m["name"] in empty_dirs]
    assert any(Path(store_dir).is_relative_to(mount) for mount in mounts), (store_dir, mounts)


def test_service_account_carries_the_workload_identity_placeholder(plain: list[dict[str, Any]]) -> None:
    account = find(plain, "ServiceAccount")
    assert find(plain, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")


def test_resources_match_the_chart_defaults(plain: list[dict[str, Any]]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert server(find(plain, "Deployment"))["resources"] == values["imageGenerationService"]["resources"]
