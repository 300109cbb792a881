"""The gRPC server's gate: per-method in-flight limits checked before a request is read, and requests
whose bytes do not parse refused as the caller's fault.

gRPC receives a unary request whole (up to the server's 13 MB receive limit) before any handler runs,
so a limit checked in the servicer comes too late: 60 refused uploads would already hold 800 MB. A
limited method is therefore served as client-streaming, which the wire cannot tell from unary: the
handler takes a slot first and reads the one message only when it has one; without one it refuses
with RESOURCE_EXHAUSTED and the body is never read (HTTP/2 flow control leaves it with the client).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc

log = logging.getLogger(__name__)


class Malformed:
    """Stands for a request whose bytes are not a valid protobuf message."""

    def __init__(self, size: int) -> None:
        self.size = size


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    """The deserializer, returning Malformed instead of raising (gRPC would answer INTERNAL and log a traceback)."""

    def deserialize(data: bytes) -> Any:
        if deserializer is None:
            return data
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 (protobuf raises DecodeError, and others on hostile bytes)
            return Malformed(len(data))

    return deserialize


class Gate(grpc.ServerInterceptor):
    """Limits in-flight calls of some methods (full path -> (limit, refusal message)); guards parsing of all unary ones."""

    def __init__(self, limits: Mapping[str, tuple[int, str]]) -> None:
        self._limits = {method: (threading.BoundedSemaphore(limit), message) for method, (limit, message) in limits.items()}

    def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001 (grpc API)
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        method = handler_call_details.method
        behaviour = _parsed(handler.unary_unary, method)
        deserialize = tolerant(handler.request_deserializer)
        limit = self._limits.get(method)
        if limit is None:
            return grpc.unary_unary_rpc_method_handler(behaviour, deserialize, handler.response_serializer)
        slots, message = limit
        return grpc.stream_unary_rpc_method_handler(
            _admitted(behaviour, slots, message, method), deserialize, handler.response_serializer
        )


def _parsed(behaviour: Callable, method: str) -> Callable:
    """behaviour, refusing a Malformed request with INVALID_ARGUMENT and one short log line."""

    def serve(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            log.info("request refused", extra={"method": _short(method), "code": "INVALID_ARGUMENT",
                                               "reason": f"{request.size} bytes that are not a valid request message"})
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is not a valid protobuf message for this method")
        return behaviour(request, context)

    return serve


def _admitted(behaviour: Callable, slots: threading.BoundedSemaphore, message: str, method: str) -> Callable:
    """A client-streaming behaviour that takes a slot before reading the single request, or refuses unread."""

    def serve(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        if not slots.acquire(blocking=False):
            log.info("request refused", extra={"method": _short(method), "code": "RESOURCE_EXHAUSTED",
                                               "reason": "in-flight limit reached"})
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)
        try:
            request = next(requests, None)
            if request is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request carried no message")
            return behaviour(request, context)
        finally:
            slots.release()

    return serve


def _short(method: str) -> str:
    return method.rsplit("/", 1)[-1]
