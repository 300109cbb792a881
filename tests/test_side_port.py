"""The HTTP side port under slow and idle clients, over real sockets against the service process."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from genproto import imagegeneration_pb2 as pb


@pytest.fixture(scope="module")
def side_service(tmp_path_factory, devstack):
    from tests.conftest import peer_env
    from tests.service import ServiceProcess

    process = ServiceProcess({**peer_env(devstack), "HTTP_IDLE_TIMEOUT_SECONDS": "2"},
                             tmp_path_factory.mktemp("side"))
    process.wait_serving()
    yield process
    process.close()


def connect(service) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.http_port), timeout=30)


class Slowloris(threading.Thread):
    """Holds connections open, each with a request line and then one header byte a second."""

    def __init__(self, service, idle: int, trickling: int) -> None:
        super().__init__(daemon=True)
        self.idle = [connect(service) for _ in range(idle)]
        self.trickling = [connect(service) for _ in range(trickling)]
        for sock in self.trickling:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):  # pacing of the attack, not synchronisation
            for sock in self.trickling:
                with contextlib.suppress(OSError):
                    sock.send(b"a")

    def close(self) -> None:
        self.stop.set()
        self.join()
        for sock in self.idle + self.trickling:
            sock.close()


def test_health_and_images_answer_while_240_connections_dawdle(side_service):
    answer = side_service.stub.UploadBackground(pb.UploadBackgroundRequest(
        image_data="iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"),
        timeout=30)
    attack = Slowloris(side_service, idle=200, trickling=40)
    attack.start()
    try:
        for _ in range(10):
            assert side_service.http_get(side_service.http_base + "/healthz", timeout=5)[:3:2] == (200, b"ok\n")
            code, headers, _ = side_service.http_get(answer.image_url, timeout=5)
            assert code == 200 and headers["Content-Type"] == "image/jpeg"
    finally:
        attack.close()


def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(side_service):
    with connect(side_service) as sock:
        assert sock.recv(1024) == b"", "the server should close an idle connection"  # 30 s socket timeout


def test_a_request_left_half_sent_is_closed_after_the_idle_timeout(side_service):
    with connect(side_service) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert sock.recv(1024) == b""


def test_a_kept_alive_connection_serves_several_requests_then_idles_out(side_service):
    with connect(side_service) as sock:
        reader = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reader.readline().startswith(b"HTTP/1.1 200")
            while reader.readline() not in (b"\r\n", b""):
                pass
            assert reader.read(3) == b"ok\n"
        assert reader.read() == b""


def test_head_and_unknown_paths_and_methods(side_service):
    with connect(side_service) as sock:
        sock.sendall(b"HEAD /healthz HTTP/1.0\r\n\r\n")
        reply = b"".join(iter(lambda: sock.recv(4096), b""))
    assert reply.startswith(b"HTTP/1.0 200") and reply.endswith(b"\r\n\r\n")  # headers only
    assert side_service.http_get(side_service.http_base + "/nope")[0] == 404
    with connect(side_service) as sock:
        sock.sendall(b"DELETE /healthz HTTP/1.0\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.0 405")
