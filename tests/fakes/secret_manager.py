"""A Secret Manager peer on loopback: a plain grpc.server speaking AccessSecretVersion with the real messages.

Usage:
    with FakeSecretManager({"projects/p/secrets/gemini/versions/latest": "the-key"}) as peer:
        client = peer.client()          # a real SecretManagerServiceClient on an insecure channel
        read_secret("projects/p/secrets/gemini/versions/latest", client)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent import futures

import google_crc32c
import grpc
from google.cloud.secretmanager_v1 import SecretManagerServiceClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)
from google.cloud.secretmanager_v1.types import resources, service

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"


class FakeSecretManager:
    """Serves secrets by exact version name; unknown names answer NOT_FOUND. Records every name asked for."""

    def __init__(
        self, secrets: Mapping[str, str | bytes] | None = None, *, tls: tuple[bytes, bytes] | None = None
    ) -> None:
        """tls=(certificate chain PEM, private key PEM) serves over TLS, as secretmanager.googleapis.com does."""
        self._lock = threading.Lock()
        self._secrets: dict[str, tuple[bytes, int | None]] = {}
        self._denied: set[str] = set()
        self.requests: list[str] = []
        self.authorizations: list[str] = []  # the authorization metadata of every call ('' when none)
        for name, value in (secrets or {}).items():
            self.set_secret(name, value)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
                    self._access,
                    request_deserializer=service.AccessSecretVersionRequest.deserialize,
                    response_serializer=service.AccessSecretVersionResponse.serialize,
                )
            },
        )
        self._server.add_generic_rpc_handlers((handler,))
        if tls is None:
            port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            port = self._server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(tls[1], tls[0])]))
        self.address = f"127.0.0.1:{port}"
        self._server.start()
        self._channels: list[grpc.Channel] = []

    def set_secret(self, name: str, value: str | bytes, *, crc32c: int | None | bool = True) -> None:
        """Stores a version; crc32c=True sends the right checksum, False none, an int that (wrong) value."""
        data = value.encode() if isinstance(value, str) else value
        checksum = google_crc32c.value(data) if crc32c is True else (None if crc32c is False else int(crc32c))
        with self._lock:
            self._secrets[name] = (data, checksum)

    def deny(self, name: str) -> None:
        """Makes reads of `name` answer PERMISSION_DENIED."""
        with self._lock:
            self._denied.add(name)

    def client(self) -> SecretManagerServiceClient:
        """A real client whose transport dials this peer in plaintext."""
        channel = grpc.insecure_channel(self.address)
        self._channels.append(channel)
        return SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))

    def stop(self) -> None:
        """Closes client channels handed out and stops the server."""
        for channel in self._channels:
            channel.close()
        self._server.stop(grace=None).wait()

    def __enter__(self) -> FakeSecretManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _access(
        self, request: service.AccessSecretVersionRequest, context: grpc.ServicerContext
    ) -> service.AccessSecretVersionResponse:
        with self._lock:
            self.requests.append(request.name)
            self.authorizations.append(dict(context.invocation_metadata()).get("authorization", ""))
            denied = request.name in self._denied
            stored = self._secrets.get(request.name)
        if denied:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"Permission denied on resource {request.name}")
        if stored is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{request.name}] not found.")
        data, checksum = stored
        payload = resources.SecretPayload(data=data)
        if checksum is not None:
            payload.data_crc32c = checksum
        return service.AccessSecretVersionResponse(name=request.name, payload=payload)


def secret_manager_client(address: str) -> SecretManagerServiceClient:
    """A real SecretManagerServiceClient on an insecure channel to `address` (host:port)."""
    channel = grpc.insecure_channel(address)
    return SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))
