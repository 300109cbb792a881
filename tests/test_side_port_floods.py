"""The HTTP side port against trickling and body-carrying clients, over real sockets against a fresh service
process; health (GET /healthz and gRPC Check, each with a 1 s deadline) sampled during the flood."""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

CONNECTIONS = 10_000


def connect(service, timeout: float = 30) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.http_port), timeout=timeout)


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (without waiting for it)."""
    sock.setblocking(False)
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def test_a_trickled_request_is_closed_within_the_timeout_of_its_first_byte(make_service):
    service = make_service({"HTTP_IDLE_TIMEOUT_SECONDS": "2"})
    with connect(service) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        deadline = time.monotonic() + 30  # fifteen times the timeout: a trickle must not renew it
        closed = False
        while not closed and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                sock.send(b"a")
            time.sleep(0.5)  # the trickle's pace, not synchronisation
            closed = closed_by_server(sock)
        assert closed, "a connection trickling its header a byte every 0.5 s is still open after 30 s"


@pytest.mark.parametrize("head", [
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 209715200\r\n\r\n",
    b"PUT /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n",
], ids=["post-200MB", "put-1MB"])
def test_a_request_announcing_a_body_is_refused_from_its_head(service, head):
    with connect(service, timeout=10) as sock:
        sock.sendall(head)  # and none of the body: the answer must not wait for it
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]


def test_a_chunked_body_is_refused_after_its_first_chunk(service):
    with connect(service, timeout=10) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"100000\r\n" + b"x" * 0x100000)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]


def test_health_answers_every_probe_through_10000_trickling_connections(make_service, tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CONNECTIONS + 2048:
        pytest.fail(f"the open-file hard limit ({hard}) is too low for {CONNECTIONS} client sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, CONNECTIONS + 2048) if hard == resource.RLIM_INFINITY
                                                else min(hard, CONNECTIONS + 2048), hard))
    service = make_service({"HTTP_IDLE_TIMEOUT_SECONDS": "10", "LOG_LEVEL": "WARNING"})
    trickling: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(1.0):  # the attack's pace: one header byte a second on each connection
            for index, sock in enumerate(trickling):
                if stop.is_set():
                    return
                if closed_by_server(sock):  # the attacker re-opens what the server closed
                    sock.close()
                    with contextlib.suppress(OSError):
                        trickling[index] = open_trickling()
                    continue
                with contextlib.suppress(OSError):
                    sock.send(b"a")

    def open_trickling() -> socket.socket:
        sock = connect(service, timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        return sock

    attacker = threading.Thread(target=trickle, daemon=True)
    channel = grpc.insecure_channel(f"127.0.0.1:{service.port}", options=[("grpc.use_local_subchannel_pool", 1)])
    health = health_pb2_grpc.HealthStub(channel)
    failures: list[str] = []
    probes = 0
    try:
        for _ in range(CONNECTIONS):
            with contextlib.suppress(OSError):
                trickling.append(open_trickling())
        attacker.start()
        end = time.monotonic() + 25  # past the 10 s timeout, so that shed and cut connections are re-opened
        while time.monotonic() < end:
            probes += 1
            try:
                code, _, body = service.http_get(service.http_base + "/healthz", timeout=1)
                if code != 200:
                    failures.append(f"HTTP {code}")
            except OSError as error:
                failures.append(f"HTTP {type(error).__name__}")
            try:
                health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            except grpc.RpcError as error:
                failures.append(f"gRPC {error.code().name}")
            time.sleep(0.2)  # the probes' pace
    finally:
        stop.set()
        if attacker.is_alive():
            attacker.join()
        for sock in trickling:
            sock.close()
        channel.close()
    assert len(trickling) >= CONNECTIONS * 0.9
    assert probes >= 10 and not failures, f"{len(failures)} of {2 * probes} health probes failed: {failures[:10]}\n{service.logs()[-3000:]}"
