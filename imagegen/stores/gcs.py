"""The Cloud Storage image store: objects in a bucket, shoppers fetch them by public or V4 signed URL."""

from __future__ import annotations

import base64
import contextlib
import datetime
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TypeVar

import google.auth.exceptions
import google.auth.transport.requests
import google_crc32c
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import storage
from google.cloud.storage import exceptions as storage_exceptions
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from imagegen.errors import NotFound, StoreError
from imagegen.settings import URL_MODES, GcsSettings
from imagegen.stores import OBJECT_NAME

# Cloud Storage bucket naming rules; catches "gs://bucket" and other slips at start, not at the first upload.
_BUCKET = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{1,220})[a-z0-9]$")

# Objects never change once written (random or content-hash names), so browsers may keep them.
PUBLIC_CACHE_CONTROL = "public, max-age=31536000, immutable"
PRIVATE_CACHE_CONTROL = "private, max-age=31536000, immutable"
MAX_SIGNED_URL_TTL = 7 * 24 * 3600  # the V4 signing limit
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_RETRY_DEADLINE_SECONDS = 45.0
_MAX_URL_LENGTH = 8192
T = TypeVar("T")

# Failures of the SDK, its transport or its credentials; anything else is a bug and propagates.
_STORAGE_FAILURES = (
    api_exceptions.GoogleAPIError,
    google.auth.exceptions.GoogleAuthError,
    requests.RequestException,
    storage_exceptions.InvalidResponse,
    storage_exceptions.DataCorruption,
    ConnectionError,
    TimeoutError,
)


class GcsImageStore:
    """Stores images in one Cloud Storage bucket with google-cloud-storage; errors name the bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        project: str = "",
        url_mode: str = "public",
        url_ttl_seconds: int = 3600,
        client: storage.Client | None = None,
        signing_email: str = "",
        credentials: Credentials | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry: Retry | None = None,
    ) -> None:
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise ValueError(
                f"{bucket!r} is not a Cloud Storage bucket name "
                "(lowercase letters, digits, '-', '_' and '.'; no gs:// prefix)"
            )
        if url_mode not in URL_MODES:
            raise ValueError(f"url_mode must be one of {', '.join(URL_MODES)}, got {url_mode!r}")
        if not 1 <= url_ttl_seconds <= MAX_SIGNED_URL_TTL:
            raise ValueError(f"url_ttl_seconds must be from 1 to {MAX_SIGNED_URL_TTL}")
        self.bucket_name = bucket
        self._url_mode = url_mode
        self._ttl = datetime.timedelta(seconds=url_ttl_seconds)
        self._timeout = timeout_seconds
        self._retry = retry if retry is not None else DEFAULT_RETRY.with_timeout(DEFAULT_RETRY_DEADLINE_SECONDS)
        if client is None:
            # Built here, not earlier, so the SDK reads STORAGE_EMULATOR_HOST itself; an empty project
            # is None (no project needed for object calls) rather than a lookup that may fail.
            try:
                client = storage.Client(project=project or None, credentials=credentials)
                if url_mode == "signed" and credentials is None and isinstance(client._credentials, AnonymousCredentials):
                    # STORAGE_EMULATOR_HOST: the SDK talks to the emulator anonymously, but URLs are still
                    # signed, with the application default credentials (GOOGLE_APPLICATION_CREDENTIALS).
                    credentials, _ = google.auth.default()
            except (google.auth.exceptions.GoogleAuthError, ValueError, OSError) as error:
                raise StoreError(f"Cloud Storage client for bucket {bucket!r} could not be created: {error}") from None
        self._client = client
        self._bucket = client.bucket(bucket)
        self._endpoint = urllib.parse.urlsplit(client.api_endpoint)
        # The SDK keeps the client's credentials private; they sign URLs unless others are given.
        self._signing_credentials = credentials if credentials is not None else client._credentials
        self._signing_email = signing_email
        self._refresh_lock = threading.Lock()
        if url_mode == "signed" and isinstance(self._signing_credentials, AnonymousCredentials):
            raise StoreError(
                f"IMAGE_URL_MODE=signed for bucket {bucket!r} needs service account credentials "
                "(a key, or Workload Identity); the client has anonymous credentials"
            )

    @property
    def cache_control(self) -> str:
        """The Cache-Control header stored with every object."""
        return PUBLIC_CACHE_CONTROL if self._url_mode == "public" else PRIVATE_CACHE_CONTROL

    def put(self, name: str, data: bytes, content_type: str) -> None:
        """Uploads data and its metadata under name; GCS makes an object visible only once it is complete."""
        if not OBJECT_NAME.match(name):
            raise StoreError(f"refusing to store {name!r} in bucket {self.bucket_name!r}: not a valid object name")
        blob = self._bucket.blob(name)
        blob.cache_control = self.cache_control
        try:
            with self._failures("store", name):
                # if_generation_match=0 makes the upload safe to retry: a retry after a lost reply
                # answers 412 instead of writing twice.
                self._bounded(lambda timeout: blob.upload_from_string(
                    data, content_type=content_type, if_generation_match=0, timeout=timeout, retry=None
                ))
        except _AlreadyStored:
            self._check_same_content(name, data)

    def get(self, name: str) -> bytes:
        """Downloads the object stored under name, checksum verified."""
        if not OBJECT_NAME.match(name):
            raise NotFound(f"{name!r} is not a valid object name")
        with self._failures("read", name):
            blob = self._bucket.blob(name)
            return self._bounded(lambda timeout: blob.download_as_bytes(timeout=timeout, retry=None))

    def exists(self, name: str) -> bool:
        """True when an object with this name is in the bucket."""
        if not OBJECT_NAME.match(name):
            return False
        with self._failures("look up", name):
            blob = self._bucket.blob(name)
            return self._bounded(lambda timeout: blob.exists(timeout=timeout, retry=None))

    def url_for(self, name: str) -> str:
        """The public URL of the object, or a V4 signed GET URL valid for the configured TTL."""
        if not OBJECT_NAME.match(name):
            raise NotFound(f"{name!r} is not a valid object name")
        blob = self._bucket.blob(name)
        if self._url_mode == "public":
            return blob.public_url
        with self._failures("sign a URL for", name):
            return self._sign(blob)

    def name_from_url(self, url: str) -> str | None:
        """The object name behind our public URL, gs:// URI or signed URL for this bucket; else None."""
        if not isinstance(url, str) or len(url) > _MAX_URL_LENGTH:
            return None
        try:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme == "gs":
                return self._name_from_gs_uri(parts)
            if parts.scheme in ("http", "https"):
                return self._name_from_http_url(parts)
        except ValueError:  # a malformed host or port
            return None
        return None

    def _name_from_gs_uri(self, parts: urllib.parse.SplitResult) -> str | None:
        if parts.netloc != self.bucket_name or parts.query or parts.fragment:
            return None
        return _checked_name(parts.path[1:])

    def _name_from_http_url(self, parts: urllib.parse.SplitResult) -> str | None:
        endpoint = self._endpoint
        if (
            parts.scheme != endpoint.scheme
            or parts.username is not None
            or parts.password is not None
            or parts.hostname != endpoint.hostname
            or _port(parts) != _port(endpoint)
            or parts.fragment
        ):
            return None
        if parts.query and not _is_signed_query(parts.query):
            return None
        prefix = endpoint.path.rstrip("/") + "/" + self.bucket_name + "/"
        if not parts.path.startswith(prefix):
            return None
        # No unquoting: our names need no escapes, so a URL with any is not one we issued.
        return _checked_name(parts.path[len(prefix) :])

    def _sign(self, blob: storage.Blob) -> str:
        credentials = self._signing_credentials
        if isinstance(credentials, service_account.Credentials):
            # A private key is at hand: sign locally, no network.
            return blob.generate_signed_url(
                version="v4", expiration=self._ttl, method="GET", credentials=credentials
            )
        # Workload Identity (or any keyless credentials): IAM signBlob signs as the service account.
        with self._refresh_lock:
            if not credentials.valid:
                credentials.refresh(google.auth.transport.requests.Request())
            token = credentials.token
        email = self._signing_email or getattr(credentials, "service_account_email", "")
        if not email or email == "default" or not token:
            raise StoreError(
                f"cannot sign URLs for bucket {self.bucket_name!r}: the credentials name no service account; "
                "use a service account (Workload Identity) or pass signing_email"
            )
        try:
            return blob.generate_signed_url(
                version="v4",
                expiration=self._ttl,
                method="GET",
                service_account_email=email,
                access_token=token,
            )
        except google.auth.exceptions.TransportError as error:
            if "PERMISSION_DENIED" not in str(error):
                raise
            # The SDK's message is IAM's raw answer; say which grant is missing instead.
            raise StoreError(
                f"cannot sign URLs for bucket {self.bucket_name!r}: IAM signBlob denied for {email}; grant it "
                "roles/iam.serviceAccountTokenCreator on itself"
            ) from None

    def _check_same_content(self, name: str, data: bytes) -> None:
        """Accepts an object already stored under name when it holds these exact bytes."""
        with self._failures("check", name):
            blob = self._bounded(lambda timeout: self._bucket.get_blob(name, timeout=timeout, retry=None))
        if blob is not None and blob.size == len(data) and blob.crc32c == _crc32c(data):
            return
        raise StoreError(f"{name!r} already exists in bucket {self.bucket_name!r} with other content")

    def _bounded(self, call: Callable[[float], T]) -> T:
        """call(timeout) under the retry policy, each attempt's timeout cut to what is left of the
        policy's deadline: the deadline bounds the whole operation, not only when retries may start."""
        deadline = self._retry.timeout
        end = None if deadline is None else time.monotonic() + deadline

        def attempt() -> T:
            timeout = self._timeout if end is None else min(self._timeout, max(0.05, end - time.monotonic()))
            return call(timeout)

        return self._retry(attempt)()

    @contextlib.contextmanager
    def _failures(self, action: str, name: str) -> Iterator[None]:
        """Turns SDK failures into NotFound or a StoreError that names the bucket and the object."""
        try:
            yield
        except api_exceptions.NotFound:
            raise NotFound(f"{name!r} is not in bucket {self.bucket_name!r}") from None
        except api_exceptions.PreconditionFailed:
            raise _AlreadyStored() from None
        except _STORAGE_FAILURES as error:
            raise StoreError(
                f"Cloud Storage bucket {self.bucket_name!r}: could not {action} {name!r}: {_describe(error)}"
            ) from error


class _AlreadyStored(Exception):
    """An upload met an existing object (412 on if_generation_match=0)."""


def build_gcs_store(settings: GcsSettings) -> GcsImageStore:
    """The Cloud Storage store of the settings (GCS_BUCKET, PROJECT_ID, IMAGE_URL_*, STORE_TIMEOUT_SECONDS)."""
    deadline = settings.store_timeout_seconds
    return GcsImageStore(
        settings.gcs_bucket,
        project=settings.project_id,
        url_mode=settings.image_url_mode,
        url_ttl_seconds=settings.image_url_ttl_seconds,
        timeout_seconds=min(DEFAULT_TIMEOUT_SECONDS, deadline),
        retry=DEFAULT_RETRY.with_timeout(deadline),
    )


def _checked_name(name: str) -> str | None:
    return name if OBJECT_NAME.match(name) else None


def _port(parts: urllib.parse.SplitResult) -> int | None:
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _is_signed_query(query: str) -> bool:
    """True for the query of a V4 signed URL: X-Goog-* parameters only, a signature among them."""
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return False
    keys = [key for key, _ in pairs]
    return len(keys) == len(set(keys)) and "X-Goog-Signature" in keys and all(k.startswith("X-Goog-") for k in keys)


def _crc32c(data: bytes) -> str:
    """The CRC32C of data the way GCS reports it: base64 of the big-endian value."""
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode("ascii")


def _describe(error: BaseException) -> str:
    """A short, credential-free account of a storage failure."""
    prefix = ""
    if isinstance(error, api_exceptions.RetryError):
        prefix = "still failing after retries: "
        error = error.cause if error.cause is not None else error
    if isinstance(error, (requests.Timeout, TimeoutError)):
        detail = "Cloud Storage did not answer in time"
    elif isinstance(error, (requests.ConnectionError, ConnectionError)):
        detail = "Cloud Storage is unreachable"
    elif isinstance(error, api_exceptions.GoogleAPICallError):
        detail = f"HTTP {error.code}: {_server_message(error.response) or error.message}"
    elif isinstance(error, storage_exceptions.InvalidResponse) and hasattr(error.response, "status_code"):
        detail = f"HTTP {error.response.status_code}: {_server_message(error.response) or 'unexpected answer'}"
    elif isinstance(error, api_exceptions.RetryError):
        detail = "retry deadline exceeded"
    else:
        detail = f"{type(error).__name__}: {error}"
    return prefix + detail[:300]


def _server_message(response: object) -> str:
    """The message of a JSON API error body ({"error": {"message": ...}}), if the response has one."""
    try:
        return str(response.json()["error"]["message"])  # type: ignore[attr-defined]
    except Exception:  # no response, not JSON, another shape: the caller falls back
        return ""
