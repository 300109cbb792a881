"""The gRPC server's gate: per-method limits applied before a request is read, and requests whose bytes
do not parse refused as the caller's fault.

gRPC receives a unary request whole (up to the server's 13 MB receive limit) before any handler runs,
so a limit checked in the servicer comes too late: 60 refused uploads would already hold 800 MB. A
gated method is therefore served as client-streaming, which the wire cannot tell from unary: the
handler takes an in-flight slot first and reads the one message only when it has one; without one it
refuses with RESOURCE_EXHAUSTED and the body is never read (HTTP/2 flow control leaves it with the
client). Reads themselves can be bounded too (a few at a time, each within READ_TIMEOUT_SECONDS), and
a request larger than its method needs is refused before it is parsed: a flood of 13 MB requests
then holds a few bodies at a time, not one per thread. A method with a read budget reads its request
first and takes its in-flight slot only then, so that slow senders hold read turns, not slots.

Threads are budgeted per class of method (health, status, streaming, admitted): each class has a pool
of its own and a bound on its calls waiting for one, counted as gRPC looks the call up (before any
thread is taken) and refused with RESOURCE_EXHAUSTED beyond it. Silent reflection streams or a flood
of status calls then exhaust their own class, never the threads health needs. Every request, and a
stream's first message, must arrive within its class's deadline, counted from the call's start. A call
whose request is still arriving after SILENT_READER_SECONDS gives up its slot or read turn (it is cut off)
when another call of its method finds none free. An upload cannot be told from a silent one while its body
arrives, so it is never cut early: it waits for a slot in turn, oldest first, and then has a fixed time to
send its body. Slots and turns are shared out between client connections, a connection whose calls were
cut off for silence served after the others, so that silent calls re-opened as fast as they are cut only
delay the shop's frontend.
"""

from __future__ import annotations

import ctypes
import dataclasses
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from typing import Any

import grpc

from imagegen.errors import BUSY_RETRY_SECONDS
from imagegen.status_details import abort, rich_status

log = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 10.0  # to wait for a turn to read, and then to read the request; in-cluster it takes ms
# A request still arriving after this long (in-cluster even 13 MB take a fraction of it) is cut off when
# another call of its method needs the slot or read turn it holds: silent peers cannot keep shoppers out.
SILENT_READER_SECONDS = 1.0
# A connection one of whose calls was cut off for silence is served after every other connection this long.
SILENT_PEER_SECONDS = 10.0
SILENT_PEERS_KEPT = 1024  # connections remembered as silent, the oldest forgotten first

HEALTH, STATUS, STREAMING, ADMITTED, REFUSALS = "health", "status", "streaming", "admitted", "refusals"


@dataclasses.dataclass(frozen=True)
class Budget:
    """A class of methods' own threads, how many more of its calls may wait for one, and its read deadline."""

    threads: int
    waiting: int
    read_seconds: float = READ_TIMEOUT_SECONDS  # for the request (a stream: its first message), from the call's start


# Health and status requests are a few bytes sent with the call: a peer that has not sent one in 2 s is
# not a kubelet or a frontend. Streams (server reflection) are for people with grpcurl: a few at a time.
# Status has 2 threads, and they are its read bound too (no read turns). Its calls are short and hold the
# GIL: with 3 or 4 threads contending for it a status call cost 1.3x the CPU and 0.8x the throughput of 2
# threads, and with 8 more still (benchmarks/bench_hot_path.py); through Redis 2 do as well as 4.
BUDGETS: Mapping[str, Budget] = {
    HEALTH: Budget(threads=4, waiting=60, read_seconds=2.0),
    STATUS: Budget(threads=2, waiting=120, read_seconds=2.0),
    STREAMING: Budget(threads=4, waiting=0),
}
REFUSAL_THREADS = 2  # refusals over a budget are answered here, never behind the calls they refuse
REFUSAL_BACKLOG = 1024  # gRPC's own cap sits this far above the budgets: the last bound on queued refusals


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a method admits. None: no limit of that kind."""

    in_flight: int | None = None  # calls handled at once; more wait for a slot, then are refused unread
    in_flight_wait_seconds: float = 0.0  # longest wait for a slot (cut to the call's deadline)
    busy_message: str = "the service is busy; try again shortly"
    busy_reason: str = "BUSY"  # the ErrorInfo reason of a refusal for want of a slot or a turn to read
    reads: int | None = None  # requests being read at once; more wait their turn
    max_bytes: int | None = None  # larger requests are refused without being parsed
    read_seconds: float | None = None  # the request's deadline from the call's start (None: its class's)
    # Calls that may wait for a slot, served oldest first; each then has read_seconds from its slot to send
    # its request (none: in_flight_wait_seconds alone decides). A waiting call holds no body, only a thread.
    waiting: int | None = None
    # Reads the request's bytes in place of the method's message class (None: the class), for a request whose
    # parsed message would hold a second copy of a large field for as long as the call runs.
    parse: Callable[[bytes], Any] | None = None


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

    def __init__(self, limits: Mapping[str, Limits], counter: Callable[[str, str], None] | None = None,
                 budgets: Mapping[str, Budget] = BUDGETS) -> None:
        self._refusals = _Refusals(counter)
        self._limits = dict(limits)
        silent = {method: _SilentPeers() for method in limits}
        self._slots = {method: None if limit.in_flight is None else _Turns(
            limit.in_flight, limit.waiting, silent=silent[method])
            for method, limit in limits.items()}
        self._reads = {method: None if limit.reads is None else _Turns(limit.reads, silent=silent[method])
                       for method, limit in limits.items()}
        self._readers = {method: _Readers(method, self._refusals, silent=silent[method]) for method in limits}
        self._budgets = dict(budgets)
        self._waiting = {lane: _Count() for lane in (*self._budgets, ADMITTED)}
        self._threads: RpcThreads | None = None
        # Health and status calls reading their request, per class: its threads are their read bound.
        self._lane_readers = {lane: _Readers(lane, self._refusals) for lane in (HEALTH, STATUS) if lane in self._budgets}
        self._sweep = _Sweep([(readers, self._queued(lane)) for lane, readers in self._lane_readers.items()])
        # How the gate serves each method, worked out once: gRPC hands over the same handler per call.
        self._served: dict[str, _Served] = {}

    def threads(self, admitted_threads: int) -> RpcThreads:
        """The server's thread pool: admitted_threads for the methods with Limits, each budget's own beside."""
        self._budgets.setdefault(ADMITTED, Budget(admitted_threads, admitted_threads))
        self._threads = RpcThreads({**{lane: budget.threads for lane, budget in self._budgets.items()},
                                    REFUSALS: REFUSAL_THREADS})
        return self._threads

    @property
    def max_concurrent_rpcs(self) -> int:
        """gRPC's own cap (it refuses every method alike): far enough above the budgets never to be met first."""
        if self._threads is None:
            raise RuntimeError("threads() first: the cap counts the admitted lane's threads")
        return sum(budget.threads + budget.waiting for budget in self._budgets.values()) + REFUSAL_BACKLOG

    def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001 (grpc API)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        served = self._served.get(handler_call_details.method)
        if served is None or served.handler is not handler:
            served = self._served[handler_call_details.method] = self._serve(handler, handler_call_details.method)
        if served.budget is not None and self._threads is not None:
            if not served.waiting.take(served.budget.threads + served.budget.waiting):
                self._threads.route(REFUSALS)
                return served.busy
            self._threads.route(served.lane, served.waiting.give)  # given back when the call's task ends, however it ends
        return served.gated

    def _serve(self, handler: grpc.RpcMethodHandler, method: str) -> _Served:
        """How method is served: its class, that class's budget and count, its gated handler and its refusal."""
        limits = self._limits.get(method)
        lane = _lane(method, handler, limits)
        budget = self._budgets.get(lane)
        busy = _busy(handler, method, lane, self._refusals, limits.busy_message if limits else Limits.busy_message)
        return _Served(handler, lane, budget, self._waiting.get(lane), self._gated(handler, method, lane, limits, budget),
                       busy)

    def _gated(self, handler: grpc.RpcMethodHandler, method: str, lane: str, limits: Limits | None,
               budget: Budget | None) -> grpc.RpcMethodHandler:
        """The handler serving method under its limits and its class's read deadline."""
        read_seconds = budget.read_seconds if budget is not None else READ_TIMEOUT_SECONDS
        if limits is not None and limits.read_seconds is not None:
            read_seconds = limits.read_seconds
        if handler.request_streaming:  # server reflection: every message it reads is checked
            return _streaming(handler, method, self._refusals, read_seconds)
        if handler.response_streaming:
            return handler
        max_bytes = limits.max_bytes if limits else None
        behaviour = _parsed(handler.unary_unary, method, max_bytes, self._refusals)
        deserialize = tolerant((limits and limits.parse) or handler.request_deserializer, max_bytes)
        # Every unary method is served as client-streaming, so that its request is read under a deadline.
        if lane in self._lane_readers and (limits is None or (limits.in_flight is None and limits.reads is None)):
            read = _Read(behaviour, method, self._refusals, read_seconds, self._lane_readers[lane], self._sweep)
            return grpc.stream_unary_rpc_method_handler(read, deserialize, handler.response_serializer)
        admitted = _Admitted(behaviour, method, limits or Limits(), self._slots.get(method), self._reads.get(method),
                             self._refusals, read_seconds, self._readers.get(method))
        return grpc.stream_unary_rpc_method_handler(admitted, deserialize, handler.response_serializer)

    def _queued(self, lane: str) -> Callable[[], bool]:
        """Whether calls of lane wait for one of its threads (never before threads() has made the pools)."""
        waiting, threads = self._waiting[lane], self._budgets[lane].threads
        return lambda: self._threads is not None and waiting.value > threads


@dataclasses.dataclass(frozen=True)
class _Served:
    """How the gate serves one method: the handler gRPC found, its class and budget, the gated handler and the
    refusal for calls past the budget."""

    handler: grpc.RpcMethodHandler
    lane: str
    budget: Budget | None
    waiting: _Count | None
    gated: grpc.RpcMethodHandler
    busy: grpc.RpcMethodHandler


class RpcThreads(futures.Executor):
    """The gRPC server's threads: a pool per class of method, the class named by the Gate as gRPC looks the
    call up, in the same thread that then submits it."""

    def __init__(self, lanes: Mapping[str, int]) -> None:
        self._pools = {lane: futures.ThreadPoolExecutor(count, thread_name_prefix=f"grpc-{lane}")
                       for lane, count in lanes.items()}
        self._next = threading.local()

    def route(self, lane: str, done: Callable[[], None] | None = None) -> None:
        """Names the lane of the next call submitted from this thread, and what to run when its task ends."""
        stale = getattr(self._next, "call", None)
        if stale is not None and stale[1] is not None:  # looked up but never submitted (refused by gRPC itself)
            stale[1]()
        self._next.call = (lane, done)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> futures.Future:
        """Runs fn in the lane route() named (the admitted lane when none was named)."""
        lane, done = getattr(self._next, "call", None) or (ADMITTED, None)
        self._next.call = None
        future = self._pools.get(lane, self._pools[ADMITTED]).submit(fn, *args, **kwargs)
        if done is not None:
            future.add_done_callback(lambda _: done())
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shuts every lane down."""
        for pool in self._pools.values():
            pool.shutdown(wait, cancel_futures=cancel_futures)


def _lane(method: str, handler: grpc.RpcMethodHandler, limits: Limits | None) -> str:
    # Streams first: a health Watch may hold its thread for as long as it watches.
    if handler.request_streaming or handler.response_streaming:
        return STREAMING
    if method.startswith("/grpc.health.v1.Health/"):
        return HEALTH
    if limits is not None and limits.in_flight is not None:
        return ADMITTED
    return STATUS


def _busy(handler: grpc.RpcMethodHandler, method: str, lane: str, refuse: _Refusals,
          message: str) -> grpc.RpcMethodHandler:
    """A handler refusing the call with RESOURCE_EXHAUSTED, its request never read."""

    def busy(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        refuse(context, method, grpc.StatusCode.RESOURCE_EXHAUSTED, message, f"no thread left for {lane} calls",
               error_reason="SERVER_BUSY", retry_after_seconds=BUSY_RETRY_SECONDS)

    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(busy, None, handler.response_serializer)
    return grpc.stream_unary_rpc_method_handler(busy, None, handler.response_serializer)


class _Count:
    """A count of calls that refuses to pass a limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def take(self, limit: int) -> bool:
        with self._lock:
            if self._value >= limit:
                return False
            self._value += 1
            return True

    def give(self) -> None:
        with self._lock:
            self._value -= 1

    @property
    def value(self) -> int:
        """The calls counted now."""
        return self._value


class _Watchdog:
    """One thread that runs callbacks at their deadlines (a Timer per call would start a thread per call)."""

    def __init__(self) -> None:
        self._due: list[list[Any]] = []
        self._changed = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, callback: Callable[[], None]) -> Callable[[], None]:
        """Runs callback in seconds unless the returned function is called first."""
        entry = [time.monotonic() + seconds, next(self._order), callback]
        with self._changed:
            heapq.heappush(self._due, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="grpc-read-deadlines", daemon=True)
                self._thread.start()
            if self._due[0] is entry:  # a later deadline changes nothing the thread waits for: no wake-up per call
                self._changed.notify()

        def disarm() -> None:
            entry[2] = None

        return disarm

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    while self._due and self._due[0][2] is None:
                        heapq.heappop(self._due)
                    now = time.monotonic()
                    if self._due and self._due[0][0] <= now:
                        callback = heapq.heappop(self._due)[2]
                        break
                    self._changed.wait(self._due[0][0] - now if self._due else None)
            if callback is not None:
                try:
                    callback()
                except Exception:  # noqa: BLE001 (one failed cancellation must not stop the others)
                    log.exception("read deadline callback failed")


_WATCHDOG = _Watchdog()

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_large_bodies_to_the_system(threshold_bytes: int = 1024 * 1024) -> bool:
    """Has glibc map every allocation of threshold_bytes or more on its own, so that a request body read
    in turn is given back when freed; False where that cannot be set (not glibc).

    Left to itself glibc raises the threshold after the first large free, and each RPC thread then keeps
    the bodies it read in its own arena: 16 uploads of 13 MB read two at a time left 400 MiB resident.
    """
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError):
        return False


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


def _streaming(handler: grpc.RpcMethodHandler, method: str, refuse: _Refusals,
               first_message_seconds: float = READ_TIMEOUT_SECONDS) -> grpc.RpcMethodHandler:
    """A client-streaming handler whose requests are parsed tolerantly, a malformed one refused, and whose
    first message must arrive within first_message_seconds."""

    def checked(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        # A stream that never speaks would hold its thread until the peer hangs up.
        cut_off = threading.Event()

        def cut() -> None:
            cut_off.set()
            refuse.note(method, grpc.StatusCode.CANCELLED,
                        f"no first message within {first_message_seconds:g} s")
            context.cancel()

        disarm = _WATCHDOG.after(first_message_seconds, cut)
        try:
            for request in requests:
                disarm()
                if isinstance(request, Malformed):
                    refuse(context, method, grpc.StatusCode.INVALID_ARGUMENT,
                            "the request is not a valid protobuf message for this method", f"{request.size} bytes",
                            error_reason="MALFORMED_REQUEST")
                yield request
        except grpc.RpcError:
            if not cut_off.is_set():
                raise
        finally:
            disarm()

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


def _parsed(behaviour: Callable, method: str, max_bytes: int | None, refuse: _Refusals) -> Callable:
    """behaviour, refusing a Malformed request with INVALID_ARGUMENT and one short log line."""

    def serve(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, TooLarge):
            problem = f"too long; a request may be at most {max_bytes:,} bytes, got {request.size:,}"
            refuse(context, method, grpc.StatusCode.INVALID_ARGUMENT, f"{request.field or 'request'}: {problem}",
                   error_reason="REQUEST_TOO_LARGE", violations=[(request.field, problem)] if request.field else [])
        if isinstance(request, Malformed):
            refuse(context, method, grpc.StatusCode.INVALID_ARGUMENT,
                   "the request is not a valid protobuf message for this method", f"{request.size} bytes",
                   error_reason="MALFORMED_REQUEST")
        return behaviour(request, context)

    return serve


class _Admitted:
    """A client-streaming behaviour serving one request: with a read budget it reads the request (a turn to
    read, then the bytes, all within the deadline) and then takes an in-flight slot; without one it takes
    the slot first, so that a flood of bodies beyond the slots is refused unread."""

    def __init__(self, behaviour: Callable, method: str, limits: Limits, slots: _Turns | None,
                 reads: _Turns | None, refuse: _Refusals,
                 read_seconds: float = READ_TIMEOUT_SECONDS, readers: _Readers | None = None) -> None:
        self._behaviour, self._method, self._limits = behaviour, method, limits
        self._slots, self._reads, self._refuse = slots, reads, refuse
        self._read_seconds = read_seconds
        self._readers = readers or _Readers(method, refuse, silent=_SilentPeers())

    def __call__(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        deadline = time.monotonic() + self._read_seconds  # from the call's start: a trickle cannot renew it
        if self._reads is not None:
            request = self._read(requests, context, deadline)
        if self._slots is not None and not self._slot(context):
            self._refuse(context, self._method, grpc.StatusCode.RESOURCE_EXHAUSTED, self._limits.busy_message,
                         "in-flight limit reached", error_reason=self._limits.busy_reason,
                         retry_after_seconds=BUSY_RETRY_SECONDS)
        try:
            if self._reads is None:
                if self._limits.waiting is not None:  # a fixed time from the slot: waiting in turn costs none of it
                    deadline = time.monotonic() + self._read_seconds
                request = self._read(requests, context, deadline)
            return self._behaviour(request, context)
        finally:
            if self._slots is not None:
                self._slots.release()

    def _slot(self, context: grpc.ServicerContext) -> bool:
        """A free slot; else, with in_flight_wait_seconds, one freed within that wait (cut to half the call's
        deadline, or with a waiting room to what leaves the call read_seconds: a burst is let in, a flood still
        refused). Otherwise a flood beyond the slots is refused
        with its bodies unread."""
        if self._slots.take():
            return True
        wait = self._limits.in_flight_wait_seconds
        if wait > 0:
            remaining = context.time_remaining()
            if remaining is not None and self._limits.waiting is not None:
                wait = min(wait, remaining - self._read_seconds)  # leave the call its time to send the request
            elif remaining is not None:
                wait = min(wait, remaining / 2)  # leave the call time to be served
            return wait > 0 and self._slots.acquire(time.monotonic() + wait, lambda: None, context.is_active,
                                                    context.peer())
        # No silent slot holder is cut for an upload: on a loaded machine a 13 MB body being read looks
        # silent too, and each cut lets another body in, so a flood's memory would no longer be bounded.
        return False

    def _read(self, requests: Iterator[Any], context: grpc.ServicerContext, deadline: float) -> Any:
        # Waiting for a turn cuts off a reader silent past SILENT_READER_SECONDS, so the turn comes free.
        if self._reads is not None and not (self._reads.take() or self._reads.acquire(
                deadline, self._readers.cut_oldest, context.is_active, context.peer())):
            self._refuse(context, self._method, grpc.StatusCode.RESOURCE_EXHAUSTED, self._limits.busy_message,
                         "no turn to read the request", error_reason=self._limits.busy_reason,
                         retry_after_seconds=BUSY_RETRY_SECONDS)
        # A peer that sends its request slowly, or not at all, is cut off rather than holding a turn.
        cut_off = threading.Event()

        def cut() -> None:
            cut_off.set()
            self._readers.silent.add(context.peer())
            context.cancel()

        # A call given its turn near its deadline (the holders were cut just before) still gets a silent
        # reader's time to read: its request is in flight, and it is cut off like any other after that.
        disarm = _WATCHDOG.after(max(deadline - time.monotonic(), SILENT_READER_SECONDS), cut)
        arriving = self._readers.enter(context, self._method)
        late = f"the request was not received within {self._read_seconds:g} s"
        try:
            request = next(requests, None)
        except grpc.RpcError:  # the call was cancelled: by the peer, the watchdog or a call that needed its turn
            if cut_off.is_set():
                self._refuse.note(self._method, grpc.StatusCode.CANCELLED, late)
            raise
        finally:
            self._readers.leave(arriving)
            disarm()
            if self._reads is not None:
                self._reads.release()
        if request is None and cut_off.is_set():  # the cancellation may also end the stream
            self._refuse(context, self._method, grpc.StatusCode.CANCELLED, late, error_reason="READ_TIMEOUT")
        if request is None:
            self._refuse(context, self._method, grpc.StatusCode.INVALID_ARGUMENT, "the request carried no message",
                         error_reason="MALFORMED_REQUEST")
        return request


class _Turns:
    """A method's slots or turns to read, shared out fairly between client connections (peers).

    The next free one goes to the connection served longest ago, after every connection one of whose calls
    was cut off for silence lately: silent calls re-opened from one connection as fast as they are cut then
    wait behind the shop's frontend rather than take turns before it. Within a connection it goes to the
    newest waiter, or with a waiting room to the oldest. Newest first, calls that waited longest (a flood
    opened before the shoppers) are served last; oldest first, with each holder given a fixed time to send,
    silent callers only delay a shopper, by about their number x that time / the slots. With a waiting room
    (waiting: how many may wait) a call finding it full is refused at once.
    """

    def __init__(self, count: int, waiting: int | None = None, silent: _SilentPeers | None = None) -> None:
        self._free = count
        self._room = waiting
        self._oldest_first = waiting is not None  # with a waiting room, each holder has a fixed time to send
        self._silent = silent or _SilentPeers()
        self._lock = threading.Lock()
        self._waiters: dict[str, list[threading.Event]] = {}  # per peer, in the order peers are to be served
        self._count = 0

    def take(self) -> bool:
        """Takes a free one without waiting; False when none is."""
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return True
            return False

    def acquire(self, deadline: float, while_waiting: Callable[[], object],
                active: Callable[[], bool] = lambda: True, peer: str = "") -> bool:
        """Takes a turn by the deadline (time.monotonic), calling while_waiting every SILENT_READER_SECONDS/4;
        False at the deadline, once active() turns False (the caller has gone), or when the room is full."""
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return True
            if self._room is not None and self._count >= self._room:
                return False
            given = threading.Event()
            self._waiters.setdefault(peer, []).append(given)
            self._count += 1
        while not given.wait(max(0.0, min(deadline - time.monotonic(), SILENT_READER_SECONDS / 4))):
            if time.monotonic() >= deadline or not active():
                with self._lock:
                    waiting = self._waiters.get(peer, [])
                    if given in waiting:
                        waiting.remove(given)
                        self._count -= 1
                        if not waiting:
                            del self._waiters[peer]
                        return False
                return True  # given just as the deadline came
            while_waiting()
        return True

    def release(self) -> None:
        """Gives the turn to a waiter of the connection served longest ago, or back."""
        with self._lock:
            if not self._waiters:
                self._free += 1
                return
            peer = next((peer for peer in self._waiters if not self._silent.recent(peer)), next(iter(self._waiters)))
            waiting = self._waiters.pop(peer)
            waiting.pop(0 if self._oldest_first else -1).set()
            self._count -= 1
            if waiting:  # served: to the back of the line of connections
                self._waiters[peer] = waiting


class _SilentPeers:
    """Connections one of whose calls was cut off for silence, and when; bounded in count."""

    def __init__(self, seconds: float = SILENT_PEER_SECONDS, kept: int = SILENT_PEERS_KEPT) -> None:
        self._seconds, self._kept = seconds, kept
        self._lock = threading.Lock()
        self._cut: dict[str, float] = {}  # oldest first

    def add(self, peer: str) -> None:
        with self._lock:
            self._cut.pop(peer, None)
            self._cut[peer] = time.monotonic()
            while len(self._cut) > self._kept:
                del self._cut[next(iter(self._cut))]

    def recent(self, peer: str) -> bool:
        """Whether a call of peer was cut off within the last SILENT_PEER_SECONDS."""
        with self._lock:
            since = self._cut.get(peer)
            return since is not None and time.monotonic() - since < self._seconds


class _Readers:
    """The calls (of one method, or one class of methods) whose request is still arriving while they hold a
    slot, a read turn or a thread."""

    def __init__(self, method: str, refuse: _Refusals, silent_seconds: float = SILENT_READER_SECONDS,
                 silent: _SilentPeers | None = None) -> None:
        self._method, self._refuse, self._silent = method, refuse, silent_seconds
        self.silent = silent  # where a cut-off call's connection is noted (None: nothing reads it)
        self._lock = threading.Lock()
        # id(entry) -> entry: [since, context, method, deadline or None, why it was cut (None while it was not)]
        self._calls: dict[int, list[Any]] = {}

    @property
    def reading(self) -> bool:
        """Whether any call is reading its request now."""
        return bool(self._calls)

    def enter(self, context: grpc.ServicerContext, method: str, read_seconds: float | None = None) -> list[Any]:
        """Counts a call of method as reading its request, cut_late() cutting it off after read_seconds."""
        now = time.monotonic()
        entry = [now, context, method, None if read_seconds is None else now + read_seconds, None]
        with self._lock:
            self._calls[id(entry)] = entry
        return entry

    def leave(self, entry: list[Any]) -> str | None:
        """Stops counting the call; why it was cut off (LATE or SILENT), None if it was not."""
        with self._lock:
            self._calls.pop(id(entry), None)
        return entry[4]

    def cut_oldest(self) -> bool:
        """Cuts off the call reading longest, if that is past silent_seconds; True when one was."""
        with self._lock:
            if not self._calls:
                return False
            entry = min(self._calls.values(), key=lambda call: call[0])
            if time.monotonic() - entry[0] < self._silent:
                return False
            del self._calls[id(entry)]
            entry[4] = SILENT
        self._refuse.note(entry[2], grpc.StatusCode.CANCELLED,
                          f"the request was still arriving after {self._silent:g} s while another call waited")
        if self.silent is not None:
            self.silent.add(entry[1].peer())
        entry[1].cancel()
        return True

    def cut_late(self) -> None:
        """Cuts off every call past its read deadline (the call itself tells of it)."""
        now = time.monotonic()
        with self._lock:
            late = [entry for entry in self._calls.values() if entry[3] is not None and entry[3] <= now]
            for entry in late:
                del self._calls[id(entry)]
                entry[4] = LATE
        for entry in late:
            entry[1].cancel()


LATE, SILENT = "late", "silent"
SWEEP_SECONDS = 0.1  # how often calls reading on a class's threads are checked; read deadlines land this late at most


class _Sweep:
    """Every SWEEP_SECONDS while calls read their request on a class's threads: cuts off those past their read
    deadline, and, while other calls of the class wait for a thread, the one silent past SILENT_READER_SECONDS."""

    def __init__(self, lanes: list[tuple[_Readers, Callable[[], bool]]]) -> None:
        self._lanes = lanes  # each class's readers, and whether its calls wait for a thread
        self._armed = False
        self._lock = threading.Lock()

    def arm(self) -> None:
        """Makes sure a sweep is due (a reader calls it once it is counted)."""
        if self._armed:
            return
        with self._lock:
            if self._armed:
                return
            self._armed = True
        _WATCHDOG.after(SWEEP_SECONDS, self._run)

    def _run(self) -> None:
        self._armed = False  # first: a reader counted from now on arms the next sweep itself
        for readers, queued in self._lanes:
            readers.cut_late()
            if queued():
                readers.cut_oldest()
        if any(readers.reading for readers, _ in self._lanes):
            self.arm()


class _Read:
    """A client-streaming behaviour serving one request that holds nothing but its thread while it arrives:
    its class's threads bound the requests read at once, the sweep cuts it off when it is late or silent."""

    def __init__(self, behaviour: Callable, method: str, refuse: _Refusals, read_seconds: float, readers: _Readers,
                 sweep: _Sweep) -> None:
        self._behaviour, self._method, self._refuse = behaviour, method, refuse
        self._read_seconds, self._readers, self._sweep = read_seconds, readers, sweep
        self._late = f"the request was not received within {read_seconds:g} s"

    def __call__(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        entry = self._readers.enter(context, self._method, self._read_seconds)
        self._sweep.arm()
        try:
            request = next(requests, None)
        except grpc.RpcError:  # the call was cancelled: by the peer, or by the sweep
            if self._readers.leave(entry) == LATE:
                self._refuse.note(self._method, grpc.StatusCode.CANCELLED, self._late)
            raise
        if request is None:  # the cancellation may also end the stream
            if self._readers.leave(entry) == LATE:
                self._refuse(context, self._method, grpc.StatusCode.CANCELLED, self._late, error_reason="READ_TIMEOUT")
            self._refuse(context, self._method, grpc.StatusCode.INVALID_ARGUMENT, "the request carried no message",
                         error_reason="MALFORMED_REQUEST")
        self._readers.leave(entry)
        return self._behaviour(request, context)


class _Refusals:
    """Refuses a call: one short log line, a count, and the abort with google.rpc details."""

    def __init__(self, counter: Callable[[str, str], None] | None) -> None:
        self._counter = counter

    def __call__(self, context: grpc.ServicerContext, method: str, code: grpc.StatusCode, message: str,
                 reason: str = "", *, error_reason: str, violations: list[tuple[str, str]] | None = None,
                 retry_after_seconds: float | None = None) -> None:
        self.note(method, code, reason or message)
        abort(context, rich_status(code, message, error_reason, violations=violations or (),
                                   retry_after_seconds=retry_after_seconds))

    def note(self, method: str, code: grpc.StatusCode, reason: str) -> None:
        """Logs and counts a refusal."""
        name = method.rsplit("/", 1)[-1]
        log.info("request refused", extra={"method": name, "code": code.name, "reason": reason})
        if self._counter is not None:
            self._counter(name, code.name)
