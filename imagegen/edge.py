"""The gRPC server's gate: per-method limits applied before a request is read, and requests whose bytes
do not parse refused as the caller's fault.

gRPC receives a unary request whole (up to the server's 13 MB receive limit) before any handler runs,
so a limit checked in the servicer comes too late: 60 refused uploads would already hold 800 MB. A
gated method is therefore served as client-streaming, which the wire cannot tell from unary: the
handler takes an in-flight slot first and reads the one message only when it has one; without one it
refuses with RESOURCE_EXHAUSTED and the body is never read (HTTP/2 flow control leaves it with the
client). Reads themselves can be bounded too (a few at a time, each within READ_TIMEOUT_SECONDS), and
a request larger than its method needs is refused before it is parsed: a flood of 13 MB requests
then holds a few bodies at a time, not one per thread.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc

log = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 10.0  # to wait for a turn to read, and then to read the request; in-cluster it takes ms


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a method admits. None: no limit of that kind."""

    in_flight: int | None = None  # calls handled at once; more wait for a slot, then are refused unread
    in_flight_wait_seconds: float = 0.0  # longest wait for a slot (cut to the call's deadline)
    busy_message: str = "the service is busy; try again shortly"
    reads: int | None = None  # requests being read at once; more wait their turn
    max_bytes: int | None = None  # larger requests are refused without being parsed


class Malformed:
    """Stands for a request whose bytes are not a valid protobuf message."""

    def __init__(self, size: int) -> None:
        self.size = size


class TooLarge(Malformed):
    """Stands for a request larger than its method's max_bytes (never parsed), and its largest field."""

    def __init__(self, size: int, field: str) -> None:
        super().__init__(size)
        self.field = field


def tolerant(deserializer: Callable[[bytes], Any] | None, max_bytes: int | None = None) -> Callable[[bytes], Any]:
    """The deserializer, returning Malformed instead of raising (gRPC would answer INTERNAL and log a traceback)."""
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)

    def deserialize(data: bytes) -> Any:
        if max_bytes is not None and len(data) > max_bytes:
            return TooLarge(len(data), largest_field(data, descriptor))
        if deserializer is None:
            return data
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 (protobuf raises DecodeError, and others on hostile bytes)
            return Malformed(len(data))

    return deserialize


class Gate(grpc.ServerInterceptor):
    """Applies Limits per method (full path); guards the parsing of every unary method."""

    def __init__(self, limits: Mapping[str, Limits], counter: Callable[[str, str], None] | None = None) -> None:
        self._refusals = _Refusals(counter)
        self._limits = dict(limits)
        self._slots = {method: _semaphore(limit.in_flight) for method, limit in limits.items()}
        self._reads = {method: _semaphore(limit.reads) for method, limit in limits.items()}

    def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001 (grpc API)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.request_streaming:  # server reflection: every message it reads is checked
            return _streaming(handler, method, self._refusals)
        if handler.response_streaming:
            return handler
        limits = self._limits.get(method)
        behaviour = _parsed(handler.unary_unary, method, limits.max_bytes if limits else None, self._refusals)
        if limits is None:
            return grpc.unary_unary_rpc_method_handler(
                behaviour, tolerant(handler.request_deserializer), handler.response_serializer)
        admitted = _Admitted(behaviour, method, limits, self._slots[method], self._reads[method], self._refusals)
        return grpc.stream_unary_rpc_method_handler(
            admitted, tolerant(handler.request_deserializer, limits.max_bytes), handler.response_serializer)


def largest_field(data: bytes, descriptor: Any, max_fields: int = 10_000) -> str:
    """The name of the top-level field taking most bytes of a serialized message, read from the wire
    format without parsing or copying it; "" when unknown."""
    sizes: dict[int, int] = {}
    position = 0
    try:
        for _ in range(max_fields):
            if position >= len(data):
                break
            key, position = _varint(data, position)
            wire_type = key & 7
            if wire_type == 0:
                _, position = _varint(data, position)
                size = 1
            elif wire_type in (1, 5):
                size = 8 if wire_type == 1 else 4
            elif wire_type == 2:
                size, position = _varint(data, position)
            else:
                break
            position += size if wire_type != 0 else 0
            sizes[key >> 3] = sizes.get(key >> 3, 0) + size
    except IndexError:
        pass
    if not sizes or descriptor is None:
        return ""
    field = descriptor.fields_by_number.get(max(sizes, key=sizes.__getitem__))
    return field.name if field is not None else ""


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80 or shift > 63:
            return value, position
        shift += 7


def _streaming(handler: grpc.RpcMethodHandler, method: str, refuse: _Refusals) -> grpc.RpcMethodHandler:
    """A client-streaming handler whose requests are parsed tolerantly, a malformed one refused."""

    def checked(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for request in requests:
            if isinstance(request, Malformed):
                refuse(context, method, grpc.StatusCode.INVALID_ARGUMENT,
                        "the request is not a valid protobuf message for this method", f"{request.size} bytes")
            yield request

    deserialize = tolerant(handler.request_deserializer)
    if handler.response_streaming:
        behaviour = handler.stream_stream
        return grpc.stream_stream_rpc_method_handler(
            lambda requests, context: behaviour(checked(requests, context), context),
            deserialize, handler.response_serializer)
    behaviour = handler.stream_unary
    return grpc.stream_unary_rpc_method_handler(
        lambda requests, context: behaviour(checked(requests, context), context),
        deserialize, handler.response_serializer)


def _semaphore(count: int | None) -> threading.BoundedSemaphore | None:
    return None if count is None else threading.BoundedSemaphore(count)


def _parsed(behaviour: Callable, method: str, max_bytes: int | None, refuse: _Refusals) -> Callable:
    """behaviour, refusing a Malformed request with INVALID_ARGUMENT and one short log line."""

    def serve(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, TooLarge):
            refuse(context, method, grpc.StatusCode.INVALID_ARGUMENT,
                    f"{request.field or 'request'}: too long; a request may be at most {max_bytes:,} bytes, "
                    f"got {request.size:,}")
        if isinstance(request, Malformed):
            refuse(context, method, grpc.StatusCode.INVALID_ARGUMENT,
                   "the request is not a valid protobuf message for this method", f"{request.size} bytes")
        return behaviour(request, context)

    return serve


class _Admitted:
    """A client-streaming behaviour that takes an in-flight slot, then a turn to read, then reads the one request."""

    def __init__(self, behaviour: Callable, method: str, limits: Limits, slots: threading.BoundedSemaphore | None,
                 reads: threading.BoundedSemaphore | None, refuse: _Refusals) -> None:
        self._behaviour, self._method, self._limits = behaviour, method, limits
        self._slots, self._reads, self._refuse = slots, reads, refuse

    def __call__(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        if self._slots is not None and not self._slot(context):
            self._refuse(context, self._method, grpc.StatusCode.RESOURCE_EXHAUSTED, self._limits.busy_message,
                    "in-flight limit reached")
        try:
            request = self._read(requests, context)
            return self._behaviour(request, context)
        finally:
            if self._slots is not None:
                self._slots.release()

    def _slot(self, context: grpc.ServicerContext) -> bool:
        """Takes an in-flight slot, waiting briefly for one: a burst is let in, a flood still refused."""
        wait = self._limits.in_flight_wait_seconds
        remaining = context.time_remaining()
        if remaining is not None:
            wait = min(wait, remaining / 2)  # leave the call time to be served
        return self._slots.acquire(timeout=wait) if wait > 0 else self._slots.acquire(blocking=False)

    def _read(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        if self._reads is not None and not self._reads.acquire(timeout=READ_TIMEOUT_SECONDS):
            self._refuse(context, self._method, grpc.StatusCode.RESOURCE_EXHAUSTED, self._limits.busy_message,
                    "no turn to read the request")
        # A peer that sends its request slowly, or not at all, is cut off rather than holding a turn.
        cut_off = threading.Event()

        def cut() -> None:
            cut_off.set()
            context.cancel()

        watchdog = threading.Timer(READ_TIMEOUT_SECONDS, cut)
        watchdog.daemon = True
        watchdog.start()
        late = f"the request was not received within {READ_TIMEOUT_SECONDS:g} s"
        try:
            request = next(requests, None)
        except grpc.RpcError:  # the call was cancelled: by the peer, or by the watchdog
            if cut_off.is_set():
                self._refuse.note(self._method, grpc.StatusCode.CANCELLED, late)
            raise
        finally:
            watchdog.cancel()
            if self._reads is not None:
                self._reads.release()
        if request is None and cut_off.is_set():  # the cancellation may also end the stream
            self._refuse(context, self._method, grpc.StatusCode.CANCELLED, late)
        if request is None:
            self._refuse(context, self._method, grpc.StatusCode.INVALID_ARGUMENT, "the request carried no message")
        return request


class _Refusals:
    """Refuses a call: one short log line, a count, and the abort."""

    def __init__(self, counter: Callable[[str, str], None] | None) -> None:
        self._counter = counter

    def __call__(self, context: grpc.ServicerContext, method: str, code: grpc.StatusCode, message: str,
                 reason: str = "") -> None:
        self.note(method, code, reason or message)
        context.abort(code, message)

    def note(self, method: str, code: grpc.StatusCode, reason: str) -> None:
        """Logs and counts a refusal."""
        name = method.rsplit("/", 1)[-1]
        log.info("request refused", extra={"method": name, "code": code.name, "reason": reason})
        if self._counter is not None:
            self._counter(name, code.name)
