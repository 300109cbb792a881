"""Cloud Storage on loopback: gcp-storage-emulator in-process, plus an IAM signBlob peer for keyless signing.

Usage:
    emulator = GcsEmulator(bucket="images")        # started, serving http://127.0.0.1:PORT
    client = emulator.client()                      # a real storage.Client pointed at it
    env = emulator.env()                            # STORAGE_EMULATOR_HOST and GCS_BUCKET for a subprocess
    emulator.stop(); emulator.start()               # same port, same objects: for "storage down" tests
    emulator.fail_next(2, status=503)               # the next two object requests answer 503
    emulator.requests                               # (method, path) of every request seen
    emulator.wipe()                                 # drop every object, keep the default bucket
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import os
import re
import socket
import ssl
import tempfile
import threading
import urllib.parse
from functools import partial

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from gcp_storage_emulator.handlers import buckets
from gcp_storage_emulator.server import RequestHandler
from gcp_storage_emulator.storage import Storage
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

HOST = "127.0.0.1"


# Bucket metadata requests (GET /storage/v1/b/BUCKET). google-cloud-storage 3.x fetches the bucket's
# metadata in a background thread on first use; injected faults skip it so tests stay deterministic.
_BUCKET_REQUEST = re.compile(r"^(/storage/v1)?/b/[^/?]+/?(\?.*)?$")


class _FaultyRequestHandler(RequestHandler):
    """The emulator's handler: records every request, answers injected failures first (object requests only)."""

    def _fault(self) -> bool:
        server: _EmulatorServer = self.server  # type: ignore[assignment]
        server.record(self.command, self.path)
        if _BUCKET_REQUEST.match(self.path):
            return False
        status = server.faults.take()
        if status is None:
            return False
        length = int(self.headers.get("Content-Length") or 0)
        if status == "drop":
            # Close without a reply: the client sees a broken connection.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if length:
            self.rfile.read(length)
        if status == "hang":
            # Keep the connection open and never answer: only the client's timeout ends the wait.
            self.close_connection = True
            server.hold(self.connection)
            return True
        body = json.dumps({"error": {"code": status, "message": f"injected failure {status}"}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return True

    def do_GET(self) -> None:
        if not self._fault():
            super().do_GET()

    def do_POST(self) -> None:
        if not self._fault():
            super().do_POST()

    def do_PUT(self) -> None:
        if not self._fault():
            super().do_PUT()

    def do_DELETE(self) -> None:
        if not self._fault():
            super().do_DELETE()

    def do_PATCH(self) -> None:
        if not self._fault():
            super().do_PATCH()


class _Faults:
    """A queue of failures to answer, shared between the test and the server thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[int | str] = []

    def add(self, count: int, status: int | str) -> None:
        with self._lock:
            self._pending.extend([status] * count)

    def take(self) -> int | str | None:
        with self._lock:
            return self._pending.pop(0) if self._pending else None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()


class _EmulatorServer(http.server.HTTPServer):
    """The emulator's single-threaded HTTP server, plus the fault queue, a request log and held connections."""

    def __init__(self, address: tuple[str, int], handler, faults: _Faults, log: list[tuple[str, str]]) -> None:
        super().__init__(address, handler)
        self.faults = faults
        self._log = log
        self._lock = threading.Lock()
        self._held: list[socket.socket] = []

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self._log.append((method, path))

    def hold(self, connection: socket.socket) -> None:
        with self._lock:
            self._held.append(connection)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._lock:
            if any(request is held for held in self._held):
                return
        super().shutdown_request(request)

    def server_close(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for connection in held:
            connection.close()
        super().server_close()


class GcsEmulator:
    """gcp-storage-emulator (in memory) serving one default bucket on 127.0.0.1, restartable on its port.

    Built from the emulator's own storage and request handler rather than create_server(), so the
    serving thread is a daemon and a stopped emulator can start again on the same port with its objects.
    """

    def __init__(self, bucket: str = "imagegen-test", *, start: bool = True) -> None:
        self.bucket = bucket
        self._storage = Storage(use_memory_fs=True)
        buckets.create_bucket(bucket, self._storage)
        self._faults = _Faults()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request answered
        self._port = 0
        self._httpd: _EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self._reserved: socket.socket | None = None  # holds the port while stopped
        if start:
            self.start()

    @property
    def endpoint(self) -> str:
        """http://127.0.0.1:PORT, the value for STORAGE_EMULATOR_HOST."""
        if not self._port:
            raise RuntimeError("the emulator has not been started")
        return f"http://{HOST}:{self._port}"

    @property
    def running(self) -> bool:
        """True while the emulator answers."""
        return self._httpd is not None

    def start(self) -> None:
        """Serves (again): the first start picks a free port, later ones reuse it."""
        if self._httpd is not None:
            return
        handler = partial(_FaultyRequestHandler, self._storage)
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
        httpd = _EmulatorServer((HOST, self._port), handler, self._faults, self.requests)
        self._port = httpd.server_address[1]
        self._httpd = httpd
        serve = partial(httpd.serve_forever, poll_interval=0.05)  # a quick stop()
        self._thread = threading.Thread(target=serve, name="gcs-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops answering, closes the port (clients see connection refused) and any held connection."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        # Bound but not listening: connecting is refused, and no other server of the suite's workers can
        # take the port meanwhile (one did once, and a put read its 404 instead of "unreachable").
        reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.bind((HOST, self._port))
        self._reserved = reserved

    def wipe(self) -> None:
        """Deletes every object and bucket, then recreates the default bucket; clears faults and the log."""
        self._faults.clear()
        self.requests.clear()
        self._storage.wipe(keep_buckets=False)
        buckets.create_bucket(self.bucket, self._storage)

    def fail_next(self, count: int, status: int | str = 503) -> None:
        """The next count object requests answer this HTTP status; "drop" closes, "hang" never answers."""
        self._faults.add(count, status)

    def client(self) -> storage.Client:
        """A real google-cloud-storage client on this emulator, anonymous and without a project."""
        return storage.Client(
            project=None, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint}
        )

    def env(self) -> dict[str, str]:
        """Environment for a service in a subprocess: the SDK's emulator switch and our bucket."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint, "GCS_BUCKET": self.bucket}

    def __enter__(self) -> GcsEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def service_account_key(email: str, project: str = "imagegen-test") -> tuple[dict[str, str], rsa.RSAPublicKey]:
    """A locally generated service-account key as its JSON file holds it (the info), and its public key.

    Signing with it needs no network; its token_uri is a closed loopback port, so a mistake that asked
    for a token could never reach Google.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "test-key-1",
        "private_key": pem.decode(),
        "client_email": email,
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",
    }
    return info, key.public_key()


IAM_HOST = "iamcredentials.googleapis.com"


class IamSignBlobFake:
    """IAM Credentials signBlob over real HTTPS on loopback, reached through an HTTP CONNECT proxy.

    The SDK's signBlob URL is fixed (https://iamcredentials.googleapis.com/...), so the test routes it
    here with HTTPS_PROXY=self.proxy_url and trusts this fake's CA with REQUESTS_CA_BUNDLE=self.ca_file.
    The proxy only ever tunnels to the fake itself; any other host gets 403. signBlob signs with a
    locally generated RSA key (public_key), so a caller can verify the signatures it got back.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.denied = False  # deny() makes signBlob answer 403, as without roles/iam.serviceAccountTokenCreator
        self.calls: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self.private_key.public_key()
        self._dir = tempfile.TemporaryDirectory(prefix="iam-fake-")
        self.ca_file, cert_file, key_file = write_tls_files(self._dir.name, IAM_HOST)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(cert_file, key_file)
        self._httpd = http.server.ThreadingHTTPServer((HOST, 0), _ConnectProxyHandler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self.proxy_url = f"http://{HOST}:{self._httpd.server_address[1]}"
        serve = partial(self._httpd.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name="iam-fake", daemon=True)
        self._thread.start()

    def deny(self) -> None:
        """From now on signBlob answers 403 PERMISSION_DENIED."""
        self.denied = True

    def sign(self, payload: bytes) -> bytes:
        """RSA-SHA256 (PKCS#1 v1.5), what signBlob does with a service account's key."""
        return self.private_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())

    def record(self, call: dict[str, str]) -> None:
        with self._lock:
            self.calls.append(call)

    def close(self) -> None:
        """Stops the proxy and removes the TLS files."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._dir.cleanup()


class _ConnectProxyHandler(http.server.BaseHTTPRequestHandler):
    """CONNECT to the IAM host only; the tunnel ends here in TLS and is served by _SignBlobHandler."""

    def do_CONNECT(self) -> None:
        fake: IamSignBlobFake = self.server.fake  # type: ignore[attr-defined]
        if self.path != f"{IAM_HOST}:443":
            self.send_error(403, "this proxy only reaches the IAM fake")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        tls = fake._tls.wrap_socket(self.connection, server_side=True)
        try:
            _SignBlobHandler(tls, self.client_address, self.server)
        finally:
            tls.close()

    def do_GET(self) -> None:
        self.send_error(403, "this proxy only tunnels to the IAM fake")

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


class _SignBlobHandler(http.server.BaseHTTPRequestHandler):
    """POST /v1/projects/-/serviceAccounts/EMAIL:signBlob with a Bearer token and {"payload": b64}."""

    protocol_version = "HTTP/1.0"  # one request per tunnel, then close

    def do_POST(self) -> None:
        fake: IamSignBlobFake = self.server.fake  # type: ignore[attr-defined]
        path = urllib.parse.urlsplit(self.path).path
        prefix, suffix = "/v1/projects/-/serviceAccounts/", ":signBlob"
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not (path.startswith(prefix) and path.endswith(suffix)):
            return self._json(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
        email = urllib.parse.unquote(path[len(prefix) : -len(suffix)])
        authorized = self.headers.get("Authorization") == f"Bearer {fake.token}"
        fake.record({"email": email, "authorized": str(authorized)})
        if not authorized:
            return self._json(401, {"error": {"code": 401, "message": "bad token", "status": "UNAUTHENTICATED"}})
        if fake.denied:
            message = f"Permission 'iam.serviceAccounts.signBlob' denied on resource {email}"
            return self._json(403, {"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED"}})
        payload = base64.b64decode(json.loads(body)["payload"])
        signed = base64.b64encode(fake.sign(payload)).decode()
        self._json(200, {"keyId": "fake-key-1", "signedBlob": signed})

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def write_tls_files(directory: str, hostname: str) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for hostname signed by it: (ca, cert, key) file paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagegen test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = tuple(os.path.join(directory, name) for name in ("ca.pem", "cert.pem", "key.pem"))
    with open(paths[0], "wb") as handle:
        handle.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return paths  # type: ignore[return-value]
