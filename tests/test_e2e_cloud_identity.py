"""The service process on Google Cloud identities, end to end against local peers that speak the real wire.

No key file and no code path of our own for tests: the SDKs run as on GKE and are pointed at loopback
with their own switches. google-auth finds the Workload Identity metadata server through
GCE_METADATA_HOST / GCE_METADATA_IP; gRPC reaches secretmanager.googleapis.com:443 through `grpc_proxy`
(a CONNECT tunnel to a TLS peer whose CA GRPC_DEFAULT_SSL_ROOTS_FILE_PATH trusts); the storage SDK's
signBlob call to iamcredentials.googleapis.com goes through HTTPS_PROXY (trusting REQUESTS_CA_BUNDLE);
google-genai calls Vertex AI at GOOGLE_VERTEX_BASE_URL and the Gemini API at GOOGLE_GEMINI_BASE_URL.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from genproto import imagegeneration_pb2 as pb
from tests.conftest import peer_env
from tests.fakes.connect_tunnel import ConnectTunnel
from tests.fakes.fake_gemini import FakeGemini, sample_png
from tests.fakes.gcs_emulator import GcsEmulator, IamSignBlobFake, write_tls_files
from tests.fakes.metadata_server import FakeMetadataServer
from tests.fakes.secret_manager import FakeSecretManager
from tests.service import ServiceProcess, free_port, wait_for
from tests.test_gcs_store import verify_v4_signature

PROJECT = "boutique-prod"
EMAIL = f"imagegenerationservice@{PROJECT}.iam.gserviceaccount.com"
TOKEN = "ya29.workload-identity-token-never-logged"
SECRET = f"projects/{PROJECT}/secrets/gemini-api-key/versions/latest"
API_KEY = "AIzaFROM-SECRET-MANAGER-never-logged-42"
SECRET_MANAGER_HOST = "secretmanager.googleapis.com"
MUG, WATCH = "6E92ZMYYFZ", "1YMWWN1N4O"
# Lines that must never appear in a log: the key and the token.
SECRETS = (API_KEY, TOKEN)


def cart(product: str = MUG, quantity: int = 1) -> pb.GenerateCartImageRequest:
    return pb.GenerateCartImageRequest(style_preference="modern",
                                       cart_items=[pb.CartItem(product_id=product, quantity=quantity)])


def no_network_env() -> dict[str, str]:
    """What keeps every SDK on loopback: no gcloud config, no key file, loopback peers reached directly."""
    return {"CLOUDSDK_CONFIG": tempfile.mkdtemp(prefix="no-gcloud-"), "no_proxy": "127.0.0.1,localhost",
            "NO_PROXY": "127.0.0.1,localhost", "GCE_METADATA_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def metadata():
    with FakeMetadataServer(email=EMAIL, token=TOKEN, project=PROJECT) as server:
        yield server


@pytest.fixture(scope="module")
def secret_manager(tmp_path_factory):
    """Secret Manager over TLS, as secretmanager.googleapis.com, behind a CONNECT tunnel for grpc_proxy."""
    directory = tmp_path_factory.mktemp("secret-manager-tls")
    ca, cert, key = write_tls_files(str(directory), SECRET_MANAGER_HOST)
    peer = FakeSecretManager({SECRET: API_KEY}, tls=(Path(cert).read_bytes(), Path(key).read_bytes()))
    tunnel = ConnectTunnel({f"{SECRET_MANAGER_HOST}:443": peer.address})
    yield peer, {"grpc_proxy": tunnel.proxy_url, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": ca}
    tunnel.stop()
    peer.stop()


@pytest.fixture
def gemini():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def bucket():
    emulator = GcsEmulator(bucket="boutique-cart-images")
    yield emulator
    emulator.stop()


@pytest.fixture
def iam():
    fake = IamSignBlobFake(token=TOKEN)
    yield fake
    fake.close()


def start(tmp_path: Path, env: dict[str, str]) -> ServiceProcess:
    return ServiceProcess({**no_network_env(), **env}, tmp_path)


def assert_no_secret_in(service: ServiceProcess) -> None:
    logs = service.logs()
    for secret in SECRETS:
        assert secret not in logs


# ---------------------------------------------------------------------------------------------------
# The Gemini API key from Secret Manager, read with the pod's Workload Identity token.


def test_the_key_is_read_from_secret_manager_and_sent_to_gemini(tmp_path, devstack, metadata, secret_manager, gemini):
    peer, secret_env = secret_manager
    service = start(tmp_path, {**peer_env(devstack), **metadata.env(), **secret_env, "IMAGE_GENERATOR": "gemini",
                               "GEMINI_API_KEY_SECRET": SECRET, "GOOGLE_GEMINI_BASE_URL": gemini.base_url})
    try:
        service.wait_serving()
        assert SECRET in peer.requests
        assert peer.authorizations[-1] == f"Bearer {TOKEN}"  # the metadata server's token, over TLS
        generation = service.stub.GenerateCartImage(cart(MUG, 3), timeout=10)
        final, _ = service.wait_finished(generation.generation_id)
        assert final.status == "completed", final.error_message
        (call,) = [r for r in gemini.requests if r.model]
        assert call.headers["x-goog-api-key"] == API_KEY
        assert_no_secret_in(service)
    finally:
        service.close()


def test_a_missing_secret_stops_the_start_with_its_name(tmp_path, devstack, metadata, secret_manager, gemini):
    _, secret_env = secret_manager
    missing = f"projects/{PROJECT}/secrets/no-such-secret/versions/latest"
    service = start(tmp_path, {**peer_env(devstack), **metadata.env(), **secret_env, "IMAGE_GENERATOR": "gemini",
                               "GEMINI_API_KEY_SECRET": missing, "GOOGLE_GEMINI_BASE_URL": gemini.base_url})
    try:
        code = service.process.wait(timeout=60)
        assert code == 1
        assert f"service could not start: secret {missing} was not found" in service.logs()
        assert gemini.requests == []
    finally:
        service.close()


# ---------------------------------------------------------------------------------------------------
# Vertex AI with Workload Identity, and V4 signed URLs signed by IAM with the same identity.


def vertex_env(metadata: FakeMetadataServer, gemini: FakeGemini, bucket: GcsEmulator, iam: IamSignBlobFake) -> dict:
    return {**metadata.env(), **bucket.env(), "IMAGE_GENERATOR": "gemini", "GOOGLE_GENAI_USE_VERTEXAI": "true",
            "PROJECT_ID": PROJECT, "LOCATION": "us-central1", "GOOGLE_VERTEX_BASE_URL": gemini.base_url,
            "IMAGE_URL_MODE": "signed", "HTTPS_PROXY": iam.proxy_url, "https_proxy": iam.proxy_url,
            "REQUESTS_CA_BUNDLE": iam.ca_file}


def test_vertex_ai_runs_on_the_metadata_token_and_urls_are_signed_by_iam(tmp_path, devstack, metadata, gemini,
                                                                           bucket, iam):
    service = start(tmp_path, {**peer_env(devstack), **vertex_env(metadata, gemini, bucket, iam)})
    try:
        service.wait_serving()
        generation = service.stub.GenerateCartImage(cart(WATCH, 2), timeout=10)
        final, _ = service.wait_finished(generation.generation_id)
        assert final.status == "completed", final.error_message
        (call,) = [r for r in gemini.requests if r.model]
        assert call.path.startswith(f"/v1beta1/projects/{PROJECT}/locations/us-central1/publishers/google/models/")
        assert call.headers["authorization"] == f"Bearer {TOKEN}"
        assert "x-goog-api-key" not in call.headers
        assert iam.calls and all(c == {"email": EMAIL, "authorized": "True"} for c in iam.calls)
        params = verify_v4_signature(final.image_url, iam.public_key)  # signed by IAM's key for this account
        assert params["X-Goog-Credential"].startswith(f"{EMAIL}/")
        code, _, body = service.http_get(final.image_url)
        assert code == 200 and body == sample_png()  # the picture Vertex AI drew, from the bucket
        assert_no_secret_in(service)
    finally:
        service.close()


def test_vertex_ai_without_a_metadata_server_stops_the_start_plainly(tmp_path, devstack, gemini, bucket):
    closed = f"127.0.0.1:{free_port()}"
    down = {"GCE_METADATA_HOST": closed, "GCE_METADATA_IP": closed}
    service = start(tmp_path, {**peer_env(devstack), **bucket.env(), "IMAGE_GENERATOR": "gemini",
                               "GOOGLE_GENAI_USE_VERTEXAI": "true", "PROJECT_ID": PROJECT,
                               "GOOGLE_VERTEX_BASE_URL": gemini.base_url, **down})
    try:
        code = service.process.wait(timeout=60)
        assert code == 1
        assert "service could not start: Vertex AI mode found no Google credentials" in service.logs()
        assert gemini.requests == []
    finally:
        service.close()


def test_a_denied_sign_blob_fails_the_generation_with_a_clear_status(tmp_path, devstack, metadata, gemini,
                                                                      bucket, iam):
    iam.deny()
    service = start(tmp_path, {**peer_env(devstack), **vertex_env(metadata, gemini, bucket, iam)})
    try:
        service.wait_serving()
        generation = service.stub.GenerateCartImage(cart(MUG, 5), timeout=10)
        final, _ = service.wait_finished(generation.generation_id)
        assert (final.status, final.error_message) == ("failed", "the image could not be saved; please try again in a moment")
        assert iam.calls == [{"email": EMAIL, "authorized": "True"}]
        (line,) = [r for r in service.log_records() if r["message"] == "generation failed: store error"]
        assert line["reason"] == (f"cannot sign URLs for bucket 'boutique-cart-images': IAM signBlob denied for {EMAIL}; "
                                  "grant it roles/iam.serviceAccountTokenCreator on itself")
        assert_no_secret_in(service)
    finally:
        service.close()


def test_vertex_ai_with_tokens_refused_fails_the_generation_plainly(tmp_path, devstack, gemini, bucket, iam):
    with FakeMetadataServer(email=EMAIL, token=TOKEN, project=PROJECT) as unbound:
        unbound.refuse_tokens()
        service = start(tmp_path, {**peer_env(devstack), **vertex_env(unbound, gemini, bucket, iam),
                                   "GEMINI_TIMEOUT_SECONDS": "5", "GEMINI_TOTAL_TIMEOUT_SECONDS": "10"})
        try:
            service.wait_serving()
            generation = service.stub.GenerateCartImage(cart(WATCH, 4), timeout=10)
            final, _ = service.wait_finished(generation.generation_id)
            assert (final.status, final.error_message) == (
                "failed", "The image service is unavailable right now. Please try again later.")
            assert unbound.token_requests
            (line,) = [r for r in service.log_records() if r["message"] == "gemini credentials could not be used"]
            assert "Status: 403" in line["detail"] and "not bound to a Google service account" in line["detail"]
            assert [r for r in gemini.requests if r.model] == []  # no call went out without a token
            assert_no_secret_in(service)
        finally:
            service.close()
