"""The Cloud Storage store: the real google-cloud-storage client against gcp-storage-emulator on loopback."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
import threading
import urllib.parse

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account
from hypothesis import given, settings as hypothesis_settings, strategies as st

from imagegen.errors import NotFound, StoreError
from imagegen.settings import Settings
from imagegen.stores.gcs import GcsImageStore, build_gcs_store
from tests.fakes.gcs_emulator import GcsEmulator, IamSignBlobFake, service_account_key

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "imagegen-test"
IMAGE = "generated/" + "A1b2C3d4E5f6G7h8J9k0" + ".png"
BACKGROUND = "backgrounds/" + hashlib.sha256(b"a photo").hexdigest() + ".jpg"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(255, -1, -1)) * 8
SA_EMAIL = "imagegen@imagegen-test.iam.gserviceaccount.com"
# Short retries and timeouts so failure tests end quickly; the policy (what is retried) is the SDK's.
FAST_RETRY = DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.05, multiplier=2).with_timeout(1.0)


@pytest.fixture
def emulator():
    with GcsEmulator(BUCKET) as running:
        yield running


def make_store(emulator: GcsEmulator, **options) -> GcsImageStore:
    options.setdefault("timeout_seconds", 2.0)
    options.setdefault("retry", FAST_RETRY)
    return GcsImageStore(emulator.bucket, client=emulator.client(), **options)


@pytest.fixture
def store(emulator):
    return make_store(emulator)


@pytest.fixture(scope="module")
def sa_key_info():
    """A locally generated service-account key: (its JSON file's content, public key)."""
    return service_account_key(SA_EMAIL)


@pytest.fixture(scope="module")
def sa_key(sa_key_info):
    """The key's credentials and public key."""
    info, public_key = sa_key_info
    return service_account.Credentials.from_service_account_info(info), public_key


@pytest.fixture
def production_store(monkeypatch):
    """A store whose client has the production endpoint; only local operations are used with it."""
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    client = storage.Client(project=None, credentials=AnonymousCredentials())
    return GcsImageStore(BUCKET, client=client)


def stored_blob(emulator: GcsEmulator, name: str) -> storage.Blob:
    blob = emulator.client().bucket(emulator.bucket).get_blob(name)
    assert blob is not None, f"{name} is not in the emulator"
    return blob


def verify_v4_signature(url: str, public_key) -> dict[str, str]:
    """Checks a V4 signed GET URL against the public key, rebuilding the string to sign from the spec."""
    parts = urllib.parse.urlsplit(url)
    params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    signature = bytes.fromhex(params.pop("X-Goog-Signature"))
    quote = lambda text: urllib.parse.quote(text, safe="-_.~")  # noqa: E731
    canonical_query = "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(params.items()))
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        ["GOOG4-RSA-SHA256", params["X-Goog-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    public_key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    return params


# Round trips and metadata.


def test_generated_image_round_trips(store):
    store.put(IMAGE, PNG, "image/png")
    assert store.get(IMAGE) == PNG


def test_background_round_trips(store):
    store.put(BACKGROUND, JPEG, "image/jpeg")
    assert store.get(BACKGROUND) == JPEG


def test_public_mode_stores_content_type_and_long_public_cache(store, emulator):
    store.put(IMAGE, PNG, "image/png")
    blob = stored_blob(emulator, IMAGE)
    assert blob.content_type == "image/png"
    assert blob.cache_control == "public, max-age=31536000, immutable"


def test_signed_mode_stores_private_cache(emulator, sa_key):
    store = make_store(emulator, url_mode="signed", credentials=sa_key[0])
    store.put(BACKGROUND, JPEG, "image/jpeg")
    blob = stored_blob(emulator, BACKGROUND)
    assert blob.content_type == "image/jpeg"
    assert blob.cache_control == "private, max-age=31536000, immutable"


def test_a_large_object_keeps_its_metadata(store, emulator):
    # Above 8 MiB the SDK switches from one multipart request to a resumable upload.
    data = os.urandom(9 * 1024 * 1024)
    store.put(BACKGROUND, data, "image/png")
    assert store.get(BACKGROUND) == data
    blob = stored_blob(emulator, BACKGROUND)
    assert (blob.content_type, blob.cache_control) == ("image/png", "public, max-age=31536000, immutable")


def test_exists_only_after_put(store):
    assert store.exists(IMAGE) is False
    store.put(IMAGE, PNG, "image/png")
    assert store.exists(IMAGE) is True


def test_get_of_a_missing_object_is_not_found(store):
    with pytest.raises(NotFound, match=BUCKET):
        store.get(IMAGE)


def test_putting_the_same_bytes_twice_keeps_one_object(store, emulator):
    store.put(BACKGROUND, JPEG, "image/jpeg")
    store.put(BACKGROUND, JPEG, "image/jpeg")
    assert [blob.name for blob in emulator.client().list_blobs(BUCKET)] == [BACKGROUND]


@pytest.mark.parametrize("name", ["generated/../secret.png", "other/" + "a" * 20 + ".png", "generated/short.png", ""])
def test_invalid_object_names_are_refused(store, name):
    with pytest.raises(StoreError, match="not a valid object name"):
        store.put(name, PNG, "image/png")
    with pytest.raises(NotFound):
        store.get(name)
    assert store.exists(name) is False


# Public URLs.


def test_public_url_is_the_endpoint_bucket_and_object(store, emulator):
    store.put(IMAGE, PNG, "image/png")
    url = store.url_for(IMAGE)
    assert url == f"{emulator.endpoint}/{BUCKET}/{IMAGE}"
    assert requests.get(url, timeout=5).content == PNG


def test_production_public_url_is_on_storage_googleapis_com(production_store):
    assert production_store.url_for(IMAGE) == f"https://storage.googleapis.com/{BUCKET}/{IMAGE}"


# Signed URLs.


def test_signed_url_is_a_v4_url_signed_with_the_service_account_key(emulator, sa_key):
    credentials, public_key = sa_key
    store = make_store(emulator, url_mode="signed", url_ttl_seconds=900, credentials=credentials)
    store.put(IMAGE, PNG, "image/png")
    url = store.url_for(IMAGE)
    assert url.startswith(f"{emulator.endpoint}/{BUCKET}/{IMAGE}?")
    params = verify_v4_signature(url, public_key)
    assert params["X-Goog-Expires"] == "900"
    assert params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert params["X-Goog-Credential"].startswith(SA_EMAIL + "/")
    assert store.name_from_url(url) == IMAGE


def test_signed_url_fetches_the_object_from_the_emulator(emulator, sa_key):
    # The emulator serves signed URLs without checking the signature; the test above checks it.
    store = make_store(emulator, url_mode="signed", credentials=sa_key[0])
    store.put(BACKGROUND, JPEG, "image/jpeg")
    assert requests.get(store.url_for(BACKGROUND), timeout=5).content == JPEG


def test_production_signed_url_is_on_storage_googleapis_com(monkeypatch, sa_key):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    client = storage.Client(project=None, credentials=AnonymousCredentials())
    store = GcsImageStore(BUCKET, url_mode="signed", client=client, credentials=sa_key[0])
    url = store.url_for(IMAGE)
    assert url.startswith(f"https://storage.googleapis.com/{BUCKET}/{IMAGE}?X-Goog-Algorithm=GOOG4-RSA-SHA256")
    verify_v4_signature(url, sa_key[1])
    assert store.name_from_url(url) == IMAGE


def test_signed_mode_on_the_emulator_signs_with_the_application_default_key(emulator, sa_key_info, tmp_path,
                                                                           monkeypatch):
    # Under STORAGE_EMULATOR_HOST the SDK's client is anonymous; the store signs with the key that
    # GOOGLE_APPLICATION_CREDENTIALS names, and uploads still go to the emulator without a token.
    info, public_key = sa_key_info
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(info))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.endpoint)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    store = GcsImageStore(emulator.bucket, url_mode="signed", timeout_seconds=2.0, retry=FAST_RETRY)
    store.put(IMAGE, PNG, "image/png")
    url = store.url_for(IMAGE)
    assert url.startswith(f"{emulator.endpoint}/{BUCKET}/{IMAGE}?")
    assert verify_v4_signature(url, public_key)["X-Goog-Credential"].startswith(SA_EMAIL + "/")
    assert requests.get(url, timeout=5).content == PNG


@pytest.mark.parametrize("bucket", ["", "gs://imagegen-test", "Imagegen", "imagegen/test", "ab"])
def test_an_impossible_bucket_name_is_refused_at_start(emulator, bucket):
    with pytest.raises(ValueError, match="not a Cloud Storage bucket name"):
        GcsImageStore(bucket, client=emulator.client())


def test_signed_mode_without_service_account_credentials_is_refused(emulator):
    with pytest.raises(StoreError, match="signed.*" + BUCKET):
        make_store(emulator, url_mode="signed")


class WorkloadIdentityCredentials(Credentials):
    """Keyless credentials shaped like GKE's: the email is "default" until the first refresh."""

    def __init__(self, token: str, email: str) -> None:
        super().__init__()
        self._token, self._email = token, email
        self.service_account_email = "default"
        self.refreshes = 0

    def refresh(self, request) -> None:
        self.refreshes += 1
        self.token = self._token
        self.expiry = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(hours=1)
        self.service_account_email = self._email


@pytest.fixture
def iam(monkeypatch):
    """The IAM signBlob fake, with this process's HTTPS routed through its proxy and trusting its CA."""
    fake = IamSignBlobFake(token="wi-access-token")
    for name in ("all_proxy", "ALL_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")  # the emulator stays direct
    monkeypatch.setenv("https_proxy", fake.proxy_url)
    monkeypatch.setenv("HTTPS_PROXY", fake.proxy_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_file)
    yield fake
    fake.close()


def test_keyless_credentials_sign_through_iam_sign_blob(emulator, iam):
    credentials = WorkloadIdentityCredentials("wi-access-token", SA_EMAIL)
    store = make_store(emulator, url_mode="signed", credentials=credentials)
    store.put(IMAGE, PNG, "image/png")
    url = store.url_for(IMAGE)
    assert credentials.refreshes == 1
    assert iam.calls == [{"email": SA_EMAIL, "authorized": "True"}]
    params = verify_v4_signature(url, iam.public_key)
    assert params["X-Goog-Credential"].startswith(SA_EMAIL + "/")
    assert store.name_from_url(url) == IMAGE
    assert requests.get(url, timeout=5).content == PNG


def test_keyless_signing_reuses_a_valid_token(emulator, iam):
    credentials = WorkloadIdentityCredentials("wi-access-token", SA_EMAIL)
    store = make_store(emulator, url_mode="signed", credentials=credentials)
    store.url_for(IMAGE)
    store.url_for(BACKGROUND)
    assert credentials.refreshes == 1
    assert len(iam.calls) == 2


def test_signing_email_overrides_the_credentials_email(emulator, iam):
    other = "signer@imagegen-test.iam.gserviceaccount.com"
    credentials = WorkloadIdentityCredentials("wi-access-token", SA_EMAIL)
    store = make_store(emulator, url_mode="signed", credentials=credentials, signing_email=other)
    url = store.url_for(IMAGE)
    assert iam.calls == [{"email": other, "authorized": "True"}]
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Goog-Credential"][0].startswith(other + "/")


def test_keyless_credentials_without_an_email_fail_clearly(emulator, iam):
    credentials = WorkloadIdentityCredentials("wi-access-token", "default")
    store = make_store(emulator, url_mode="signed", credentials=credentials)
    with pytest.raises(StoreError, match="signing_email") as failure:
        store.url_for(IMAGE)
    assert BUCKET in str(failure.value)
    assert iam.calls == []


def test_refused_sign_blob_is_a_store_error_without_the_token(emulator, iam):
    credentials = WorkloadIdentityCredentials("a-token-iam-does-not-know", SA_EMAIL)
    store = make_store(emulator, url_mode="signed", credentials=credentials)
    with pytest.raises(StoreError, match=BUCKET) as failure:
        store.url_for(IMAGE)
    assert "a-token-iam-does-not-know" not in str(failure.value)
    assert iam.calls == [{"email": SA_EMAIL, "authorized": "False"}]


# Recognising our own URLs.


def test_gs_uri_of_our_bucket_is_recognised(production_store):
    assert production_store.name_from_url(f"gs://{BUCKET}/{BACKGROUND}") == BACKGROUND


def test_public_url_is_recognised(production_store):
    assert production_store.name_from_url(production_store.url_for(BACKGROUND)) == BACKGROUND


def test_emulator_public_url_is_recognised(store):
    assert store.name_from_url(store.url_for(IMAGE)) == IMAGE


@pytest.mark.parametrize(
    "url",
    [
        f"https://storage.googleapis.com/other-bucket/{IMAGE}",
        f"gs://other-bucket/{IMAGE}",
        f"https://evil.example.com/{BUCKET}/{IMAGE}",
        f"https://storage.googleapis.com.evil.example.com/{BUCKET}/{IMAGE}",
        f"https://{BUCKET}.storage.googleapis.com/{IMAGE}",
        f"https://storage.cloud.google.com/{BUCKET}/{IMAGE}",
        f"http://storage.googleapis.com/{BUCKET}/{IMAGE}",
        f"https://storage.googleapis.com:8443/{BUCKET}/{IMAGE}",
        f"https://user@storage.googleapis.com/{BUCKET}/{IMAGE}",
        f"https://storage.googleapis.com/{BUCKET}/generated/../backgrounds/{'a' * 20}.png",
        f"https://storage.googleapis.com/{BUCKET}/generated/%2e%2e/{'a' * 20}.png",
        f"https://storage.googleapis.com/{BUCKET}/generated%2F..%2F{'a' * 20}.png",
        f"gs://{BUCKET}/generated/../../{'a' * 20}.png",
        f"https://storage.googleapis.com/{BUCKET}/private/{'a' * 20}.png",
        f"https://storage.googleapis.com/{BUCKET}/{'a' * 20}.png",
        f"https://storage.googleapis.com/{BUCKET}/generated/{'a' * 20}.svg",
        f"https://storage.googleapis.com/{BUCKET}//{IMAGE}",
        f"https://storage.googleapis.com/{BUCKET}/{IMAGE}?alt=media",
        f"https://storage.googleapis.com/{BUCKET}/{IMAGE}?X-Goog-Signature=ab&next=http://x",
        f"https://storage.googleapis.com/{BUCKET}/{IMAGE}#fragment",
        f"https://storage.googleapis.com/download/storage/v1/b/{BUCKET}/o/{IMAGE}?alt=media",
        f"file:///{BUCKET}/{IMAGE}",
        "data:image/png;base64,iVBORw0KGgo=",
        "http://[::1",
        "https://storage.googleapis.com:99999/x",
        "",
        f"https://storage.googleapis.com/{BUCKET}/{IMAGE}?" + "X-Goog-A=1&" * 2000 + "X-Goog-Signature=ab",
    ],
)
def test_urls_that_are_not_ours_are_refused(production_store, url):
    assert production_store.name_from_url(url) is None


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.builds(lambda tail: f"https://storage.googleapis.com/{BUCKET}/{tail}", st.text(max_size=200)),
        st.builds(lambda tail: f"gs://{BUCKET}/{tail}", st.text(max_size=200)),
    )
)
def test_name_from_url_never_raises_and_only_returns_valid_names(url):
    store = GcsImageStore(BUCKET, client=storage.Client(project=None, credentials=AnonymousCredentials()))
    name = store.name_from_url(url)
    assert name is None or (
        name.startswith(("generated/", "backgrounds/")) and ".." not in name and url.endswith(name)
    )


# Failures.


def test_transient_errors_are_retried(store, emulator):
    emulator.fail_next(2, status=503)
    store.put(IMAGE, PNG, "image/png")
    emulator.fail_next(1, status=429)
    emulator.fail_next(1, status="drop")
    assert store.get(IMAGE) == PNG


def test_uploads_are_conditional_on_no_object_existing(store, emulator):
    # ifGenerationMatch=0 is what makes retrying an upload safe; the emulator does not enforce it.
    store.put(IMAGE, PNG, "image/png")
    uploads = [path for method, path in emulator.requests if method == "POST" and "/upload/" in path]
    assert len(uploads) == 1 and "ifGenerationMatch=0" in uploads[0]


def test_a_request_that_is_never_answered_times_out_and_is_retried(emulator):
    store = make_store(emulator, timeout_seconds=0.3)
    emulator.fail_next(1, status="hang")
    store.put(IMAGE, PNG, "image/png")
    emulator.fail_next(1, status="hang")
    assert store.get(IMAGE) == PNG


def test_a_storage_that_never_answers_fails_with_a_clear_error(emulator):
    store = make_store(emulator, timeout_seconds=0.2)
    emulator.fail_next(100, status="hang")
    with pytest.raises(StoreError, match=f"bucket {BUCKET!r}: could not store .*did not answer in time"):
        store.put(IMAGE, PNG, "image/png")


@pytest.mark.parametrize("operation", ["exists", "get", "put"])
def test_the_deadline_bounds_the_whole_operation_when_storage_hangs(emulator, operation):
    # Each request may wait 2 s, the whole operation 2.5 s. Before, a retry started at 2-2.25 s waited its
    # full 2 s, answering after 4-4.25 s (with the production 20 s and 30 s: after 40-41 s).
    retry = DEFAULT_RETRY.with_delay(initial=0.25, maximum=0.25).with_timeout(2.5)
    store = make_store(emulator, timeout_seconds=2.0, retry=retry)
    emulator.fail_next(100, status="hang")
    calls = {"exists": lambda: store.exists(IMAGE), "get": lambda: store.get(IMAGE),
             "put": lambda: store.put(IMAGE, PNG, "image/png")}
    failures: list[Exception] = []
    finished = threading.Event()

    def run() -> None:
        try:
            calls[operation]()
        except StoreError as error:
            failures.append(error)
        finally:
            finished.set()

    threading.Thread(target=run, daemon=True).start()
    assert finished.wait(2.5 + 1.0), f"{operation} outlived its 2.5 s deadline by more than 1 s"
    assert failures and "did not answer in time" in str(failures[0])


def test_a_permanent_error_fails_at_once_and_stores_nothing(store, emulator):
    emulator.fail_next(1, status=403)
    with pytest.raises(StoreError) as failure:
        store.put(IMAGE, PNG, "image/png")
    assert f"bucket {BUCKET!r}" in str(failure.value)
    assert "403" in str(failure.value)
    assert store.exists(IMAGE) is False


def test_stopped_storage_fails_the_put_with_a_clear_error_and_leaves_nothing(store, emulator):
    emulator.stop()
    with pytest.raises(StoreError) as failure:
        store.put(IMAGE, PNG, "image/png")
    message = str(failure.value)
    assert f"Cloud Storage bucket {BUCKET!r}: could not store {IMAGE!r}" in message
    assert "unreachable" in message
    emulator.start()
    assert store.exists(IMAGE) is False


def test_stopped_storage_fails_reads_with_store_error_not_not_found(store, emulator):
    store.put(BACKGROUND, JPEG, "image/jpeg")
    emulator.stop()
    with pytest.raises(StoreError, match=f"could not read {BACKGROUND!r}.*unreachable"):
        store.get(BACKGROUND)
    with pytest.raises(StoreError, match="could not look up"):
        store.exists(BACKGROUND)
    emulator.start()
    assert store.get(BACKGROUND) == JPEG


def test_a_retried_upload_that_meets_its_own_object_succeeds(store, emulator):
    # A 412 answers the retry of an upload whose first attempt landed; the same bytes mean success.
    store.put(IMAGE, PNG, "image/png")
    emulator.fail_next(1, status=412)
    store.put(IMAGE, PNG, "image/png")
    assert store.get(IMAGE) == PNG


def test_an_upload_that_meets_other_content_fails(store, emulator):
    store.put(IMAGE, PNG, "image/png")
    emulator.fail_next(1, status=412)
    with pytest.raises(StoreError, match="already exists"):
        store.put(IMAGE, JPEG, "image/png")
    assert store.get(IMAGE) == PNG


# Wiring: the SDK's own STORAGE_EMULATOR_HOST.


def test_built_from_settings_the_store_follows_storage_emulator_host(emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.endpoint)
    store = build_gcs_store(Settings(gcs_bucket=BUCKET, project_id="imagegen-test").gcs)
    store.put(IMAGE, PNG, "image/png")
    assert stored_blob(emulator, IMAGE).download_as_bytes() == PNG
    assert store.url_for(IMAGE) == f"{emulator.endpoint}/{BUCKET}/{IMAGE}"


def test_a_store_in_another_process_reaches_the_emulator(emulator):
    script = (
        "from imagegen.settings import Settings\n"
        "from imagegen.stores.gcs import build_gcs_store\n"
        "store = build_gcs_store(Settings.from_env().gcs)\n"
        f"store.put({BACKGROUND!r}, b'from a subprocess', 'image/jpeg')\n"
        f"print(store.url_for({BACKGROUND!r}))\n"
    )
    env = {**os.environ, **emulator.env(), "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{emulator.endpoint}/{BUCKET}/{BACKGROUND}"
    assert stored_blob(emulator, BACKGROUND).download_as_bytes() == b"from a subprocess"
