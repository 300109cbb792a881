"""A GKE metadata server on loopback: what google-auth asks for under Workload Identity.

google-auth reads GCE_METADATA_HOST (requests for tokens, e-mail, project) and GCE_METADATA_IP (the
"am I on Google Cloud?" ping) when it starts; both point here through env(). Every request must carry
`Metadata-Flavor: Google`, as the real server demands, and every answer carries it back.

    with FakeMetadataServer(email="sa@p.iam.gserviceaccount.com", token="t-1", project="p") as metadata:
        env = metadata.env()              # for a service in a subprocess
        metadata.token_requests           # scopes of every token asked for
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
_ACCOUNT = "/computeMetadata/v1/instance/service-accounts/default/"


class FakeMetadataServer:
    """Serves one service account's token and e-mail, and the project id; records token requests."""

    def __init__(self, *, email: str, token: str, project: str) -> None:
        self.email, self.token, self.project = email, token, project
        self.token_requests: list[str] = []
        self.token_refusal: tuple[int, str] | None = None  # refuse_tokens() sets it
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((HOST, 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self.address = f"{HOST}:{self._httpd.server_address[1]}"
        serve = partial(self._httpd.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name="metadata-server", daemon=True)
        self._thread.start()

    def env(self) -> dict[str, str]:
        """google-auth's own switches to this server (no GOOGLE_APPLICATION_CREDENTIALS: the GKE way)."""
        return {"GCE_METADATA_HOST": self.address, "GCE_METADATA_IP": self.address}

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, str]:
        """(status, content type, body) for a metadata path."""
        if path == "/":
            return 200, "text/plain", ""  # the ping: only the Metadata-Flavor header matters
        if path in (_ACCOUNT, _ACCOUNT.rstrip("/")) and query.get("recursive") == ["true"]:
            info = {"aliases": ["default"], "email": self.email,
                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
            return 200, "application/json", json.dumps(info)
        if path == _ACCOUNT + "email":
            return 200, "text/plain", self.email
        if path == _ACCOUNT + "token":
            with self._lock:
                self.token_requests.append(",".join(query.get("scopes", [])))
                refusal = self.token_refusal
            if refusal is not None:
                return refusal[0], "text/plain", refusal[1]
            body = {"access_token": self.token, "expires_in": 3599, "token_type": "Bearer"}
            return 200, "application/json", json.dumps(body)
        if path == "/computeMetadata/v1/project/project-id":
            return 200, "text/plain", self.project
        return 404, "text/plain", "not found"  # universe-domain and the rest: google-auth's defaults apply

    def refuse_tokens(self, status: int = 403, message: str = "") -> None:
        """Token requests answer this status, as GKE's metadata server does for an unbound Kubernetes account."""
        with self._lock:
            self.token_refusal = (status, message or "The Kubernetes service account is not bound to a Google "
                                                     "service account (iam.gke.io/gcp-service-account)")

    def stop(self) -> None:
        """Stops answering; the port closes (clients then see connection refused)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeMetadataServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        fake: FakeMetadataServer = self.server.fake  # type: ignore[attr-defined]
        parts = urllib.parse.urlsplit(self.path)
        if self.headers.get("Metadata-Flavor") != "Google":
            status, content_type, body = 403, "text/plain", "Missing Metadata-Flavor: Google header"
        else:
            status, content_type, body = fake.answer(parts.path, urllib.parse.parse_qs(parts.query))
        data = body.encode()
        self.send_response(status)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server signature)
        pass
