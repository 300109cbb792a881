"""The Kubernetes manifests, the Kustomize component and the Helm template: valid, and in step with the code."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagegen.settings import Settings
from tests.k8s_tools import assert_valid, helm_lint, helm_template, kustomize_build, load_docs, shop_overlay

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


def render_chart(**settings: Any) -> list[dict[str, Any]]:
    """`helm template` of the chart for values.yaml plus --set overrides (dots written as __)."""
    return helm_template(**settings)


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


def render_overlay(tmp: Path, *components: str) -> list[dict[str, Any]]:
    """`kustomize build` of an overlay shaped like the shop's kustomize/ (base + components/...)."""
    return kustomize_build(shop_overlay(tmp, {"frontend.yaml": FRONTEND}, list(components)))


@pytest.fixture(scope="module")
def rendered_component(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """kustomize's rendering of the shop-like overlay with the image-generation component."""
    return render_overlay(tmp_path_factory.mktemp("kustomize"), "image-generation")


@pytest.fixture(scope="module")
def plain() -> list[dict[str, Any]]:
    """The documents of kubernetes-manifests/imagegenerationservice.yaml."""
    return load_docs(PLAIN.read_text())


@pytest.fixture(scope="module")
def chart() -> list[dict[str, Any]]:
    """`helm template --set imageGenerationService.create=true` of the chart."""
    return render_chart(imageGenerationService__create=True)


# The brief's install command (the seed README's Helm section) and the README's, as an operator runs them.
SEED_FLAGS = {"imageGenerationService__create": True, "imageGenerationService__gcsBucket": "your-bucket",
              "imageGenerationService__projectId": "your-project", "imageGenerationService__geminiApiKey": "your-api-key"}
README_SHELL = {"IMAGE": "us-central1-docker.pkg.dev/my-project/images/imagegenerationservice:v0.1.0",
                "GSA": "imagegenerationservice@my-project.iam.gserviceaccount.com", "BUCKET": "my-project-cart-images",
                "PROJECT_ID": "my-project"}


def readme_helm_flags() -> dict[str, str]:
    """The --set pairs of the README's `helm upgrade --install` command, its shell variables filled in."""
    text = README.read_text()
    command = re.search(r"^helm upgrade --install .*?(?<!\\)\n", text, flags=re.MULTILINE | re.DOTALL)
    assert command, "README.md has no `helm upgrade --install` command"
    pairs = re.findall(r"--set (\S+?)=(\S+)", command.group(0))
    assert pairs, command.group(0)
    fill = lambda value: re.sub(r"\$(\w+)", lambda m: README_SHELL[m.group(1)], value)  # noqa: E731
    return {key.replace(".", "__"): fill(value) for key, value in pairs}


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


# ---------------------------------------------------------------------------------------------------
# Real helm and kustomize, as an operator runs them.


@pytest.mark.parametrize("flags", [{}, SEED_FLAGS, "readme", {"imageGenerationService__create": True,
                                                            "imageGenerationService__monitoring__create": True,
                                                            "networkPolicies__create": True}],
                         ids=["defaults", "seed-install", "readme-install", "monitoring-and-policies"])
def test_helm_lint_passes_strictly(flags: dict[str, Any] | str) -> None:
    output = helm_lint(**(readme_helm_flags() if flags == "readme" else flags))
    assert "1 chart(s) linted, 0 chart(s) failed" in output


def test_the_seed_install_command_renders_valid_objects_with_the_key_in_a_secret() -> None:
    docs = render_chart(**SEED_FLAGS)
    assert_valid(docs)
    env = env_of(server(find(docs, "Deployment")))
    assert (env["GCS_BUCKET"]["value"], env["PROJECT_ID"]["value"]) == ("your-bucket", "your-project")
    ref = env["GEMINI_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert find(docs, "Secret", ref["name"])["stringData"] == {ref["key"]: "your-api-key"}


def test_the_readme_install_command_renders_what_it_says() -> None:
    docs = render_chart(**readme_helm_flags())
    assert_valid(docs)
    assert all(d["metadata"].get("namespace") == "shop" for d in docs)
    deployment = find(docs, "Deployment")
    env = {name: entry.get("value") for name, entry in env_of(server(deployment)).items()}
    assert server(deployment)["image"] == README_SHELL["IMAGE"]
    assert env["GEMINI_API_KEY_SECRET"] == "projects/my-project/secrets/gemini-api-key/versions/latest"
    assert Settings.from_env(env).gcs_bucket == README_SHELL["BUCKET"]
    annotations = find(docs, "ServiceAccount")["metadata"]["annotations"]
    assert annotations == {"iam.gke.io/gcp-service-account": README_SHELL["GSA"]}


def test_the_chart_scrapes_the_side_port_and_carries_the_alert_rules_when_asked() -> None:
    docs = render_chart(imageGenerationService__create=True, imageGenerationService__monitoring__create=True)
    assert_valid(docs)
    monitoring = find(docs, "PodMonitoring")
    assert monitoring["spec"]["selector"]["matchLabels"] == find(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert monitoring["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    ports = {p["name"]: p["containerPort"] for p in server(find(docs, "Deployment"))["ports"]}
    assert ports["http"] == 8081  # the side port: /healthz, /metrics
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.rules.yaml").read_text())
    assert find(docs, "Rules", f"{NAME}-alerts")["spec"] == rules
    assert not [d for d in render_chart(imageGenerationService__create=True) if d["kind"] in ("PodMonitoring", "Rules")]


def test_the_overlay_with_every_component_builds_into_valid_objects(tmp_path: Path) -> None:
    docs = render_overlay(tmp_path, "image-generation", "image-generation-network-policies",
                          "image-generation-monitoring")
    assert_valid(docs)
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert f"PodMonitoring/{NAME}" in kinds and f"Rules/{NAME}-alerts" in kinds
    assert f"NetworkPolicy/cartservice-admits-{NAME}" in kinds
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.rules.yaml").read_text())
    assert find(docs, "Rules", f"{NAME}-alerts")["spec"] == rules
    chart = render_chart(imageGenerationService__create=True, imageGenerationService__monitoring__create=True)
    assert find(docs, "PodMonitoring")["spec"] == find(chart, "PodMonitoring")["spec"]


def test_an_unknown_field_fails_validation(plain: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(find(plain, "Deployment"))
    server(deployment)["readinesProbe"] = {"grpc": {"port": 8080}}  # a typo the API server would refuse
    with pytest.raises(pytest.fail.Exception, match="readinesProbe"):
        assert_valid([deployment])
    monitoring = copy.deepcopy(find(render_chart(imageGenerationService__create=True,
                                                 imageGenerationService__monitoring__create=True), "PodMonitoring"))
    monitoring["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(pytest.fail.Exception, match="intervall"):
        assert_valid([monitoring])
